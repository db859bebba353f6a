import type { WireErrorCode } from '@meshtap/protocol'

/**
 * What went wrong, as a stable string to branch on:
 * - `INVALID_OPTIONS`: `createMeshtapClient` or `<MeshtapProvider>` got options it cannot use (thrown);
 * - `NO_WEBSOCKET`: no WebSocket implementation (none global, none in the `WebSocket` option);
 * - `NO_PROVIDER`: a hook was called outside `<MeshtapProvider>` (thrown during render);
 * - `TOKEN_FAILED`: the `token` function threw or rejected (the attempt counts as failed);
 * - `CONNECT_FAILED`: the connection could not be opened (refused, HTTP 401/503, DNS);
 * - `CONNECTION_LOST`: an open connection closed (the client reconnects and resumes);
 * - `TIMEOUT`: the server did not answer pings (the client reconnects);
 * - `UNSUPPORTED_PROTOCOL`: the server speaks another protocol version (the client stops);
 * - `SERVER_ERROR`: the server refused a message of the client (`wireCode` says why);
 * - `BAD_MESSAGE`: the server sent something that is not a protocol message (it was ignored).
 *
 * @example
 * client.on('error', (e) => { if (e.code === 'SERVER_ERROR' && e.wireCode === 'BAD_FILTER') fixFilter() })
 */
export type MeshtapClientErrorCode =
  | 'INVALID_OPTIONS'
  | 'NO_WEBSOCKET'
  | 'NO_PROVIDER'
  | 'TOKEN_FAILED'
  | 'CONNECT_FAILED'
  | 'CONNECTION_LOST'
  | 'TIMEOUT'
  | 'UNSUPPORTED_PROTOCOL'
  | 'SERVER_ERROR'
  | 'BAD_MESSAGE'

/**
 * The one error class of `@meshtap/react-hooks`: thrown for misuse (bad options, a hook outside
 * its provider), and reported as the connection's `error` (see `useConnection`) for everything
 * that happens on the wire.
 *
 * @example
 * const { error } = useConnection()
 * if (error instanceof MeshtapClientError && error.code === 'CONNECT_FAILED') return <Offline />
 */
export class MeshtapClientError extends Error {
  override readonly name = 'MeshtapClientError'
  readonly code: MeshtapClientErrorCode
  /** The WebSocket close code, for `CONNECT_FAILED`, `CONNECTION_LOST` and `UNSUPPORTED_PROTOCOL`. */
  readonly closeCode?: number
  /** The server's error code, for `SERVER_ERROR`. */
  readonly wireCode?: WireErrorCode

  constructor(
    code: MeshtapClientErrorCode,
    message: string,
    options: { cause?: unknown; closeCode?: number; wireCode?: WireErrorCode } = {},
  ) {
    super(
      `[react-hooks] ${message}`,
      options.cause !== undefined ? { cause: options.cause } : undefined,
    )
    this.code = code
    if (options.closeCode !== undefined) this.closeCode = options.closeCode
    if (options.wireCode !== undefined) this.wireCode = options.wireCode
  }
}
