import { describe, expect, it } from 'vitest'
import { BoundedMap } from './writer.js'

describe('BoundedMap (the writer caches)', () => {
  it('keeps the newest entries and forgets the oldest first', () => {
    const m = new BoundedMap<number>(3)
    for (const [i, k] of ['a', 'b', 'c', 'd', 'e'].entries()) m.set(k, i)
    expect(m.size).toBe(3)
    expect(['a', 'b', 'c', 'd', 'e'].map((k) => m.get(k))).toEqual([undefined, undefined, 2, 3, 4])
  })

  it('updates a key it holds without evicting anything or renewing its age', () => {
    const m = new BoundedMap<number>(2)
    m.set('a', 1).set('b', 2).set('a', 10)
    expect([m.size, m.get('a'), m.get('b')]).toEqual([2, 10, 2])
    m.set('c', 3) // 'a' is still the oldest insertion
    expect([m.get('a'), m.get('b'), m.get('c')]).toEqual([undefined, 2, 3])
  })

  it('stays exact over many evictions, and starts over after clear()', () => {
    const max = 1000
    const m = new BoundedMap<number>(max)
    for (let i = 0; i < 25 * max + 7; i++) m.set(`k${i}`, i)
    expect(m.size).toBe(max)
    const last = 25 * max + 6
    expect(m.get(`k${last}`)).toBe(last)
    expect(m.get(`k${last - max + 1}`)).toBe(last - max + 1)
    expect(m.get(`k${last - max}`)).toBeUndefined()
    m.clear()
    expect(m.size).toBe(0)
    m.set('x', 1)
    expect([m.size, m.get('x'), m.get(`k${last}`)]).toEqual([1, 1, undefined])
  })

  it('holds at least one entry whatever the size asked for', () => {
    for (const max of [0, -5, Number.NaN]) {
      const m = new BoundedMap<string>(max)
      m.set('a', 'A').set('b', 'B')
      expect([m.size, m.get('a'), m.get('b')]).toEqual([1, undefined, 'B'])
    }
  })
})
