import { describe, expect, it } from 'vitest'
import { encodeCursor, readCursor } from './cursor.js'

describe('keyset cursors', () => {
  it('round-trip their values, URL-safe', () => {
    const c = encodeCursor('positions', [1_764_288_000_000, 42])
    expect(c).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(readCursor('positions', c, 2)).toEqual([1_764_288_000_000, 42])
    expect(readCursor('gatewayStats', encodeCursor('gatewayStats', ['!a0c0ffee']), 1)).toEqual([
      '!a0c0ffee',
    ])
  })

  it('refuse garbage, another list, a wrong arity and non-scalar values', () => {
    const c = encodeCursor('positions', [1, 2])
    expect(readCursor('telemetry', c, 2)).toBeUndefined()
    expect(readCursor('positions', c, 3)).toBeUndefined()
    expect(readCursor('positions', '%%%', 2)).toBeUndefined()
    expect(readCursor('positions', encodeCursor('positions', []).slice(0, 3), 2)).toBeUndefined()
    const nested = Buffer.from(JSON.stringify(['positions', [1], 2])).toString('base64url')
    expect(readCursor('positions', nested, 2)).toBeUndefined()
  })
})
