import { readCursor } from '@meshtap/protocol/store-kit'
import { PgStoreError } from './errors.js'

export { encodeCursor } from '@meshtap/protocol/store-kit'

/** Decodes a cursor of `list` with `arity` values; throws `INVALID_CURSOR` otherwise. @internal */
export function decodeCursor(list: string, cursor: string, arity: number): (string | number)[] {
  const values = readCursor(list, cursor, arity)
  if (!values) {
    throw new PgStoreError('INVALID_CURSOR', `not a cursor of ${list}: ${cursor.slice(0, 64)}`)
  }
  return values
}
