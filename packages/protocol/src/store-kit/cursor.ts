import { base64ToBytes, bytesToBase64 } from '../base64.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * Encodes a keyset position as an opaque base64url string tagged with its list, for a page's
 * `nextCursor`.
 *
 * @example
 * const next = encodeCursor('positions', [lastReceivedAt, lastId])
 */
export function encodeCursor(list: string, values: readonly (string | number)[]): string {
  return bytesToBase64(encoder.encode(JSON.stringify([list, ...values])))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')
}

/**
 * Reads a cursor made by {@link encodeCursor} for `list` with `arity` values; `undefined` when it
 * is not one (garbage, another list's cursor, the wrong number or kind of values), so the store can
 * throw its own `INVALID_CURSOR` error.
 *
 * @example
 * const position = readCursor('positions', query.cursor, 2)
 * if (!position) throw new MyStoreError('INVALID_CURSOR', 'not a cursor of positions')
 */
export function readCursor(
  list: string,
  cursor: string,
  arity: number,
): (string | number)[] | undefined {
  const bytes = base64ToBytes(cursor)
  if (!bytes) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(bytes))
  } catch {
    return undefined
  }
  if (
    !Array.isArray(parsed) ||
    parsed[0] !== list ||
    parsed.length !== arity + 1 ||
    !parsed.slice(1).every((v) => typeof v === 'number' || typeof v === 'string')
  ) {
    return undefined
  }
  return parsed.slice(1) as (string | number)[]
}
