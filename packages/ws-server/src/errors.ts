/**
 * What went wrong in the server:
 * - `INVALID_OPTIONS`: `createWsServer` was called with options it cannot use (thrown);
 * - `LISTEN_FAILED`: the server could not listen on `port` (`ready` rejects);
 * - `AUTH_FAILED`: `authenticate` threw (the upgrade was refused with 401);
 * - `STORE_FAILED`: reading nodes from the store for a snapshot failed (the snapshot is sent without them);
 * - `CLIENT_FAILED`: handling a client's message failed (the client got an `INTERNAL` error frame);
 * - `SOURCE_FAILED`: an event from the source could not be serialised (it was skipped).
 *
 * @example
 * createWsServer({ server, source, onError: (e) => console.error(e.code, e.message) })
 */
export type WsServerErrorCode =
  | 'INVALID_OPTIONS'
  | 'LISTEN_FAILED'
  | 'AUTH_FAILED'
  | 'STORE_FAILED'
  | 'CLIENT_FAILED'
  | 'SOURCE_FAILED'

/**
 * The error `@meshtap/ws-server` throws or reports through `onError`.
 *
 * @example
 * try {
 *   createWsServer({ source })
 * } catch (e) {
 *   if (e instanceof WsServerError && e.code === 'INVALID_OPTIONS') console.error(e.message)
 * }
 */
export class WsServerError extends Error {
  readonly code: WsServerErrorCode

  constructor(code: WsServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[ws-server] ${message}`, options)
    this.name = 'WsServerError'
    this.code = code
  }
}
