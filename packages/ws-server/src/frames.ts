/**
 * The WebSocket boundary: messages are framed (and compressed) once, then the same bytes are
 * written to every client that gets them.
 *
 * permessage-deflate is negotiated with `server_no_context_takeover`, so a compressed message does
 * not depend on the messages before it and one compression serves every client. `ws` compresses
 * per client (its `send` has no way to pass bytes already compressed), so compressed frames are
 * written through the connection's own frame writer, the way `ws` writes its frames; when that is
 * not available the plain message is sent instead (always allowed).
 */
import { constants, deflateRawSync } from 'node:zlib'
import type { WebSocket } from 'ws'

/** How messages are compressed. @internal */
export interface DeflateSettings {
  /** Only messages of at least this many bytes are compressed. */
  thresholdBytes: number
  level: number
  memLevel: number
  windowBits: number
}

const encoder = new TextEncoder()

/** An unmasked text frame: FIN, opcode 1, RSV1 when compressed. */
function frameOf(payload: Uint8Array, rsv1: boolean): Uint8Array {
  const len = payload.length
  const headerLen = len < 126 ? 2 : len < 65536 ? 4 : 10
  const out = new Uint8Array(headerLen + len)
  out[0] = rsv1 ? 0xc1 : 0x81
  if (len < 126) {
    out[1] = len
  } else if (len < 65536) {
    out[1] = 126
    out[2] = len >>> 8
    out[3] = len & 0xff
  } else {
    out[1] = 127
    const view = new DataView(out.buffer, out.byteOffset, 10)
    view.setUint32(2, Math.floor(len / 2 ** 32))
    view.setUint32(6, len >>> 0)
  }
  out.set(payload, headerLen)
  return out
}

/**
 * One message ready to send: its UTF-8 payload, the whole plain frame and, the first time a client
 * with compression needs it, the compressed frame.
 * @internal
 */
export class OutMessage {
  readonly payload: Uint8Array
  #plain: Uint8Array | undefined
  #deflated: Uint8Array | null | undefined
  /** Events in the message (batches), for the metrics. */
  readonly events: number

  constructor(text: string, events = 0) {
    this.payload = encoder.encode(text)
    this.events = events
  }

  get plainFrame(): Uint8Array {
    this.#plain ??= frameOf(this.payload, false)
    return this.#plain
  }

  /** The compressed frame, or `null` when the message is below the threshold or does not shrink. */
  deflatedFrame(settings: DeflateSettings): Uint8Array | null {
    if (this.#deflated !== undefined) return this.#deflated
    this.#deflated = null
    if (this.payload.length >= settings.thresholdBytes) {
      const out = deflateRawSync(this.payload, {
        level: settings.level,
        memLevel: settings.memLevel,
        windowBits: settings.windowBits,
        finishFlush: constants.Z_SYNC_FLUSH,
      })
      const n = out.length
      // RFC 7692 §7.2.1: drop the 00 00 ff ff that ends the sync flush.
      const tail = n >= 4 && out[n - 4] === 0 && out[n - 3] === 0 && out[n - 2] === 0xff
      if (tail && out[n - 1] === 0xff && n - 4 < this.payload.length) {
        this.#deflated = frameOf(out.subarray(0, n - 4), true)
      }
    }
    return this.#deflated
  }
}

/** The part of `ws`'s sender used to write a ready frame (its `sendFrame`, what `ws.send` ends in). */
interface FrameWriter {
  _state?: unknown
  sendFrame?: (list: Uint8Array[], cb?: (error?: Error) => void) => void
}

function frameWriter(ws: WebSocket): FrameWriter | undefined {
  const w = (ws as unknown as { _sender?: FrameWriter })._sender
  // `_state` 0 = nothing queued in the sender (it queues only while compressing, which we never ask it to do).
  return w && w._state === 0 && typeof w.sendFrame === 'function' ? w : undefined
}

/** Whether this `ws` build lets ready frames be written (checked once per connection). @internal */
export function canWriteFrames(ws: WebSocket): boolean {
  const w = (ws as unknown as { _sender?: FrameWriter })._sender
  return typeof w?.sendFrame === 'function' && typeof w._state === 'number'
}

/**
 * Sends a message to one client; returns the bytes written to the socket (0 when not open).
 * `compress`: the client negotiated permessage-deflate in a form the shared compression suits.
 * @internal
 */
export function sendMessage(
  ws: WebSocket,
  message: OutMessage,
  compress: DeflateSettings | undefined,
  direct: boolean,
): number {
  if (ws.readyState !== 1) return 0
  const writer = direct ? frameWriter(ws) : undefined
  if (writer?.sendFrame) {
    const frame = (compress && message.deflatedFrame(compress)) || message.plainFrame
    writer.sendFrame([frame])
    return frame.length
  }
  ws.send(message.payload, { binary: false, compress: false })
  const n = message.payload.length
  return n + (n < 126 ? 2 : n < 65536 ? 4 : 10)
}
