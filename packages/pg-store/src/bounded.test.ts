import { describe, expect, it } from 'vitest'
import { FifoMap, LruMap } from './bounded.js'

describe('FifoMap', () => {
  it('keeps the last `max` keys inserted; setting a known key neither moves nor duplicates it', () => {
    const m = new FifoMap<string, number>(3)
    for (const [i, k] of ['a', 'b', 'c'].entries()) m.set(k, i)
    m.set('a', 10) // already there: stays the oldest
    m.set('d', 3)
    expect(m.has('a')).toBe(false)
    expect([m.get('b'), m.get('c'), m.get('d')]).toEqual([1, 2, 3])
    expect(m.size).toBe(3)
    m.clear()
    expect(m.size).toBe(0)
    m.set('e', 4)
    expect(m.get('e')).toBe(4)
  })

  it('agrees with a reference model over a long random sequence', () => {
    const max = 50
    const m = new FifoMap<number, number>(max)
    const order: number[] = []
    const model = new Map<number, number>()
    let seed = 7
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0
      const k = seed % 200
      if (!model.has(k)) {
        order.push(k)
        if (order.length > max) model.delete(order.shift() as number)
      }
      model.set(k, i)
      m.set(k, i)
    }
    expect(m.size).toBe(model.size)
    for (const [k, v] of model) expect(m.get(k)).toBe(v)
  })
})

describe('LruMap', () => {
  it('evicts the least recently used entry and lists the most recent first', () => {
    const m = new LruMap<number, string>(3)
    m.set(1, 'a')
    m.set(2, 'b')
    m.set(3, 'c')
    expect(m.touch(1)).toBe('a') // 2 is now the least recent
    expect(m.peek(2)).toBe('b') // peeking does not change that
    m.set(4, 'd')
    expect(m.peek(2)).toBeUndefined()
    expect(m.values()).toEqual(['d', 'a', 'c'])
    m.set(3, 'C')
    expect(m.values()).toEqual(['C', 'd', 'a'])
    expect(m.size).toBe(3)
    m.clear()
    expect(m.values()).toEqual([])
  })
})
