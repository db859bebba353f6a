// The same as @meshtap/sqlite-store's cursor.ts (a copy: packages do not depend on each other).
// Keep the two in step; both are candidates for @meshtap/protocol.
import { base64ToBytes, bytesToBase64 } from '@meshtap/protocol'
import { PgStoreError } from './errors.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Encodes a keyset position as an opaque base64url string tagged with its list. @internal */
export function encodeCursor(list: string, values: readonly (string | number)[]): string {
  return bytesToBase64(encoder.encode(JSON.stringify([list, ...values])))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')
}

/** Decodes a cursor of `list` with `arity` values; throws `INVALID_CURSOR` otherwise. @internal */
export function decodeCursor(list: string, cursor: string, arity: number): (string | number)[] {
  const fail = () =>
    new PgStoreError('INVALID_CURSOR', `not a cursor of ${list}: ${cursor.slice(0, 64)}`)
  const bytes = base64ToBytes(cursor)
  if (!bytes) throw fail()
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(bytes))
  } catch {
    throw fail()
  }
  if (
    !Array.isArray(parsed) ||
    parsed[0] !== list ||
    parsed.length !== arity + 1 ||
    !parsed.slice(1).every((v) => typeof v === 'number' || typeof v === 'string')
  ) {
    throw fail()
  }
  return parsed.slice(1) as (string | number)[]
}
