import { describe, expect, it, vi } from 'vitest'
import { encodeCursor, readCursor } from './cursor.js'
import {
  bboxWraps,
  DEFAULT_LIMIT,
  limitOf,
  MAX_LIMIT,
  nodeNum,
  pageOf,
  portnums,
  type QueryChecks,
  type Row,
  searchPatterns,
  timeCursor,
  timeKeyset,
} from './paging.js'

class TestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

const checks: QueryChecks = {
  invalid: (message) => new TestError('INVALID_OPTIONS', message),
  decodeCursor(list, cursor, arity) {
    const values = readCursor(list, cursor, arity)
    if (!values) throw new TestError('INVALID_CURSOR', `not a cursor of ${list}`)
    return values
  },
}

describe('query checks', () => {
  it('limitOf: defaults, floors and clamps, and refuses what is not a positive number', () => {
    expect(limitOf(undefined, checks)).toBe(DEFAULT_LIMIT)
    expect(limitOf(1, checks)).toBe(1)
    expect(limitOf(7.9, checks)).toBe(7)
    expect(limitOf(MAX_LIMIT + 1, checks)).toBe(MAX_LIMIT)
    for (const bad of [0, 0.5, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => limitOf(bad, checks)).toThrow(
        new TestError('INVALID_OPTIONS', `limit must be a positive number, got ${bad}`),
      )
    }
  })

  it('nodeNum: numbers, !xxxxxxxx ids and decimal strings, nothing else', () => {
    expect(nodeNum(42, checks)).toBe(42)
    expect(nodeNum(0xffffffff, checks)).toBe(0xffffffff)
    expect(nodeNum('!0000002a', checks)).toBe(42)
    expect(nodeNum('!A0C0FFEE', checks)).toBe(0xa0c0ffee)
    expect(nodeNum('42', checks)).toBe(42)
    for (const bad of [-1, 1.5, 2 ** 32, 'nonsense', '!zz', '', '99999999999']) {
      expect(() => nodeNum(bad, checks)).toThrow(
        new TestError('INVALID_OPTIONS', `not a node number or !xxxxxxxx id: ${String(bad)}`),
      )
    }
  })

  it('portnums: one integer or a non-empty list of them, as a new list', () => {
    expect(portnums(1, checks)).toEqual([1])
    const list = [1, 3]
    expect(portnums(list, checks)).toEqual([1, 3])
    expect(portnums(list, checks)).not.toBe(list)
    for (const bad of [[], [1.5], [1, Number.NaN], 2.5]) {
      expect(() => portnums(bad, checks)).toThrow('portnum must be an integer or a non-empty list')
    }
  })

  it('bboxWraps: finite sides only; true when the box crosses the antimeridian', () => {
    expect(bboxWraps({ south: 37, west: -122, north: 39, east: -119 }, checks)).toBe(false)
    expect(bboxWraps({ south: 37, west: 170, north: 40, east: -119 }, checks)).toBe(true)
    expect(bboxWraps({ south: 0, west: 5, north: 0, east: 5 }, checks)).toBe(false)
    const bad = { south: 0, west: 0, north: 0, east: Number.NaN }
    expect(() => bboxWraps(bad, checks)).toThrow('bbox needs finite south, west, north and east')
    const text = { south: 0, west: 0, north: '1', east: 0 } as unknown as typeof bad
    expect(() => bboxWraps(text, checks)).toThrow(TestError)
  })

  it('searchPatterns: escapes LIKE wildcards, matches ids by prefix with or without !', () => {
    expect(searchPatterns('Node')).toEqual({ name: '%Node%', id: '!node%' })
    expect(searchPatterns('!A0')).toEqual({ name: '%!A0%', id: '!a0%' })
    expect(searchPatterns('50%_\\')).toEqual({ name: '%50\\%\\_\\\\%', id: '!50\\%\\_\\\\%' })
  })
})

describe('keyset paging', () => {
  it('timeKeyset: limit, newest first by default, and the position of a cursor', () => {
    expect(timeKeyset('positions', {}, checks)).toEqual({ limit: DEFAULT_LIMIT, desc: true })
    expect(timeKeyset('positions', { order: 'asc', limit: 5 }, checks)).toEqual({
      limit: 5,
      desc: false,
    })
    const cursor = encodeCursor('positions', [1_764_288_000_000, 42])
    expect(timeKeyset('positions', { cursor }, checks).after).toEqual([1_764_288_000_000, 42])
  })

  it('timeKeyset: refuses a bad limit before a bad cursor, and another list’s cursor', () => {
    const other = encodeCursor('telemetry', [1, 2])
    expect(() => timeKeyset('positions', { cursor: other }, checks)).toThrow(
      new TestError('INVALID_CURSOR', 'not a cursor of positions'),
    )
    expect(() => timeKeyset('positions', { cursor: 'nope', limit: 0 }, checks)).toThrow(
      /limit must be a positive number/,
    )
  })

  it('timeCursor: the same bytes as ever (clients keep cursors across versions)', () => {
    const row: Row = { _t: 1_764_288_000_000, _id: 42, other: 'x' }
    expect(timeCursor('positions')(row)).toBe('WyJwb3NpdGlvbnMiLDE3NjQyODgwMDAwMDAsNDJd')
    expect(timeCursor('positions')(row)).toBe(encodeCursor('positions', [1_764_288_000_000, 42]))
  })

  it('pageOf: maps at most limit rows; a next cursor only when one more row was fetched', () => {
    const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ n: i }))
    const map = vi.fn((r: { n: number }) => r.n * 10)
    const cursor = (last: { n: number }) => `after ${last.n}`
    expect(pageOf([], 3, map, cursor)).toEqual({ items: [] })
    expect(pageOf(rows(2), 3, map, cursor)).toEqual({ items: [0, 10] })
    expect(pageOf(rows(3), 3, map, cursor)).toEqual({ items: [0, 10, 20] })
    const fetched = rows(4)
    expect(pageOf(fetched, 3, map, cursor)).toEqual({ items: [0, 10, 20], nextCursor: 'after 2' })
    expect(fetched).toHaveLength(3)
    // The mapper sees the row alone (not map()'s index and array).
    expect(map.mock.calls.every((args) => args.length === 1)).toBe(true)
  })
})
