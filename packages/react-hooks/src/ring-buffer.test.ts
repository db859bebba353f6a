import { describe, expect, it } from 'vitest'
import { KeyedRings, RingBuffer } from './ring-buffer.js'

describe('RingBuffer', () => {
  it('keeps the newest items, oldest first, and the same array until the next push', () => {
    const r = new RingBuffer<number>(3)
    for (let i = 1; i <= 5; i++) r.push(i)
    const a = r.toArray()
    expect(a).toEqual([3, 4, 5])
    expect(r.toArray()).toBe(a)
    expect(Object.isFrozen(a)).toBe(true)
    r.push(6)
    expect(r.toArray()).toEqual([4, 5, 6])
    expect(a).toEqual([3, 4, 5])
    r.clear()
    expect(r.toArray()).toEqual([])
  })
})

describe('KeyedRings', () => {
  it('bounds keys (least recently pushed first) and shares unchanged arrays', () => {
    const k = new KeyedRings<string, number>(2, 2)
    k.push('a', 1)
    k.push('b', 1)
    const m1 = k.publish(new Map())
    expect(k.publish(m1)).toBe(m1)
    k.push('a', 2)
    const m2 = k.publish(m1)
    expect(m2.get('b')).toBe(m1.get('b'))
    expect(m2.get('a')).toEqual([1, 2])
    k.push('c', 1) // evicts b, the least recently pushed
    const m3 = k.publish(m2)
    expect([...m3.keys()].sort()).toEqual(['a', 'c'])
    expect(m3.get('a')).toBe(m2.get('a'))
  })
})
