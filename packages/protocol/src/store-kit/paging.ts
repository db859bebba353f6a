import type { BoundingBox, NodeRef, Page, TimeQuery } from '../index.js'
import { nodeNumFromId } from '../index.js'
import { encodeCursor } from './cursor.js'

/** The page size when a query names none. @internal */
export const DEFAULT_LIMIT = 100
/** The largest page a store hands out; larger limits are clamped to it. @internal */
export const MAX_LIMIT = 1000

/** A database row as the driver hands it over: column name to value. @internal */
export type Row = Record<string, unknown>

/**
 * How a store refuses a query, with its own error class and codes: the shared checks below word
 * the messages, the store builds (and owns) the errors.
 *
 * @example
 * const checks: QueryChecks = {
 *   invalid: (message) => new MyStoreError('INVALID_OPTIONS', message),
 *   decodeCursor, // throws MyStoreError('INVALID_CURSOR', …)
 * }
 * @internal
 */
export interface QueryChecks {
  /** The store's `INVALID_OPTIONS` error for `message`. */
  invalid(message: string): Error
  /** The store's cursor reader: the cursor's values, or throws its `INVALID_CURSOR` error. */
  decodeCursor(list: string, cursor: string, arity: number): (string | number)[]
}

/**
 * The page size of a query: {@link DEFAULT_LIMIT} when unset, floored and clamped to
 * {@link MAX_LIMIT}; throws the store's error for anything but a positive number.
 *
 * @example
 * const limit = limitOf(q.limit, checks) // fetch limit + 1 rows to know whether more follow
 * @internal
 */
export function limitOf(limit: number | undefined, checks: QueryChecks): number {
  if (limit === undefined) return DEFAULT_LIMIT
  if (!Number.isFinite(limit) || limit < 1) {
    throw checks.invalid(`limit must be a positive number, got ${limit}`)
  }
  return Math.min(Math.floor(limit), MAX_LIMIT)
}

/**
 * A node number (unsigned 32-bit) from a number or a `!xxxxxxxx` id; throws the store's error
 * for anything else.
 *
 * @example
 * nodeNum('!0000002a', checks) // 42
 * @internal
 */
export function nodeNum(node: NodeRef, checks: QueryChecks): number {
  const n = typeof node === 'number' ? node : nodeNumFromId(node, true)
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw checks.invalid(`not a node number or !xxxxxxxx id: ${String(node)}`)
  }
  return n >>> 0
}

/**
 * The port numbers of a `portnum` filter as a non-empty list of integers; throws the store's
 * error otherwise.
 *
 * @example
 * portnums(1, checks) // [1]
 * @internal
 */
export function portnums(p: number | readonly number[], checks: QueryChecks): number[] {
  const list = typeof p === 'number' ? [p] : [...p]
  if (list.length === 0 || !list.every((n) => Number.isInteger(n))) {
    throw checks.invalid('portnum must be an integer or a non-empty list')
  }
  return list
}

/**
 * Checks a bounding box's sides are finite numbers (throws the store's error otherwise) and tells
 * whether it crosses the antimeridian (`west > east`: longitudes `>= west OR <= east`).
 *
 * @example
 * const wraps = bboxWraps(q.bbox, checks)
 * @internal
 */
export function bboxWraps(b: BoundingBox, checks: QueryChecks): boolean {
  for (const v of [b.south, b.west, b.north, b.east]) {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw checks.invalid('bbox needs finite south, west, north and east')
    }
  }
  return b.west > b.east
}

/** Escapes `\`, `%` and `_` for a `LIKE … ESCAPE '\'` pattern. */
function escapeLike(v: string): string {
  return v.replace(/[\\%_]/g, (c) => `\\${c}`)
}

/**
 * The `LIKE` patterns (escape character `\`) of a node search: `name` finds the text anywhere in
 * a long or short name, `id` matches `!xxxxxxxx` ids that start with it (lower case, `!` optional).
 *
 * @example
 * searchPatterns('!AB') // { name: '%!AB%', id: '!ab%' }
 * @internal
 */
export function searchPatterns(search: string): { name: string; id: string } {
  const id = escapeLike(search.toLowerCase())
  return { name: `%${escapeLike(search)}%`, id: id.startsWith('!') ? `${id}%` : `!${id}%` }
}

/** Where a newest-first (or `asc`) keyset list over (time, id) resumes. @internal */
export interface TimeKeyset {
  /** The page size (fetch one row more to know whether a next page follows). */
  limit: number
  /** Newest first (the default), else oldest first. */
  desc: boolean
  /** The (time, id) of the last row handed out, when the query has a cursor. */
  after?: readonly [time: string | number, id: string | number]
}

/**
 * Reads the paging part of a time list's query: its limit, its direction and the cursor's
 * (time, id) position, with the store's errors for a bad limit or cursor.
 *
 * @example
 * const { limit, desc, after } = timeKeyset('positions', q, checks)
 * @internal
 */
export function timeKeyset(list: string, q: TimeQuery, checks: QueryChecks): TimeKeyset {
  const keyset: TimeKeyset = {
    limit: limitOf(q.limit, checks),
    desc: (q.order ?? 'desc') === 'desc',
  }
  if (q.cursor !== undefined) {
    const [t, i] = checks.decodeCursor(list, q.cursor, 2) as [string | number, string | number]
    keyset.after = [t, i]
  }
  return keyset
}

/**
 * The cursor after a row of a time list: its `_t` (time) and `_id` columns, tagged with `list`.
 *
 * @example
 * pageOf(rows, limit, positionRow, timeCursor('positions'))
 * @internal
 */
export function timeCursor(list: string): (last: Row) => string {
  return (last) => encodeCursor(list, [last._t as number, last._id as number])
}

/**
 * Builds a page from up to `limit + 1` fetched rows: the first `limit` mapped by `map`, and a
 * `nextCursor` made by `cursor` from the last of them when a further row shows more follow.
 * Trims `rows` in place.
 *
 * @example
 * const rows = db.all(sql, ...params, limit + 1)
 * return pageOf(rows, limit, nodeRow, timeCursor('nodes'))
 * @internal
 */
export function pageOf<R, T>(
  rows: R[],
  limit: number,
  map: (row: R) => T,
  cursor: (last: R) => string,
): Page<T> {
  const more = rows.length > limit
  if (more) rows.length = limit
  const last = rows[rows.length - 1]
  const page: Page<T> = { items: rows.map((row) => map(row)) }
  if (more && last !== undefined) page.nextCursor = cursor(last)
  return page
}
