import { base64ToBytes, bytesToBase64 } from './base64.js'
import type { RawMessage } from './raw-message.js'

/**
 * One line of a meshtap capture file (NDJSON): the raw traffic exactly as received, so it can be
 * replayed later. Written by `meshtap tail --raw-out` and `meshtap simulate --out`, read by
 * `createReplaySource`. The same shape is accepted by `meshtap decode` (it ignores `receivedAt`).
 */
export interface CaptureRecord {
  topic: string
  /** The payload, base64. */
  payload: string
  /** When it was received, Unix milliseconds. */
  receivedAt: number
}

/** Formats a raw message as one capture line (without the newline). */
export function toCaptureLine(message: RawMessage & { topic: string }): string {
  const rec: CaptureRecord = {
    topic: message.topic,
    payload: bytesToBase64(message.payload),
    receivedAt: message.receivedAt ?? Date.now(),
  }
  return JSON.stringify(rec)
}

/**
 * Parses one capture line; `undefined` when it is not a capture record.
 *
 * `decodeBase64` replaces {@link base64ToBytes} for the payload (a runtime's native decoder, say);
 * it must accept and refuse exactly what `base64ToBytes` does and return the same bytes.
 *
 * @example
 * parseCaptureLine('{"topic":"msh/US/2/e/LongFast/!abcd1234","payload":"AQ==","receivedAt":1}')
 * // { topic: 'msh/US/2/e/LongFast/!abcd1234', payload: Uint8Array [1], receivedAt: 1 }
 */
export function parseCaptureLine(
  line: string,
  decodeBase64: (text: string) => Uint8Array | undefined = base64ToBytes,
): (RawMessage & { topic: string; receivedAt: number }) | undefined {
  let rec: unknown
  try {
    rec = JSON.parse(line)
  } catch {
    return undefined
  }
  if (rec === null || typeof rec !== 'object') return undefined
  const { topic, payload, receivedAt } = rec as Record<string, unknown>
  if (typeof topic !== 'string' || typeof payload !== 'string') return undefined
  const bytes = decodeBase64(payload)
  if (!bytes) return undefined
  return {
    topic,
    payload: bytes,
    receivedAt: typeof receivedAt === 'number' && Number.isFinite(receivedAt) ? receivedAt : 0,
  }
}
