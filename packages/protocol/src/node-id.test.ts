import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { nodeIdFromNum, nodeNumFromId } from './node-id.js'

describe('node ids', () => {
  it('round-trips every node number through its canonical id', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        expect(nodeNumFromId(nodeIdFromNum(n))).toBe(n)
      }),
      { numRuns: 5000 },
    )
  })

  it('reads upper case, short and unprefixed hex, and decimal only when asked', () => {
    expect(nodeNumFromId('!FA75F7C0')).toBe(0xfa75f7c0)
    expect(nodeNumFromId('!aBcD1234')).toBe(0xabcd1234)
    expect(nodeNumFromId('fa75f7c0')).toBe(0xfa75f7c0)
    expect(nodeNumFromId('!1f')).toBe(0x1f)
    expect(nodeNumFromId('4202035136')).toBeUndefined() // 10 digits: not hex, decimal not allowed
    expect(nodeNumFromId('12345678')).toBe(0x12345678) // 8 digits read as hex unless decimal is allowed
    expect(nodeNumFromId('4202035136', true)).toBe(4202035136)
    expect(nodeNumFromId('4294967296', true)).toBeUndefined()
  })

  it('refuses anything that is not a node id', () => {
    const bad = ['', '!', '!fa75f7c0a', '!fa75f7g0', '!fa75f7c\u0660', '!fa75 7c0', 'x!fa75f7c0']
    for (const id of [...bad, '!-1234567', '!\u{1f600}123456']) {
      expect(nodeNumFromId(id), id).toBeUndefined()
    }
    expect(nodeNumFromId('!fa75f7c')).toBe(0xfa75f7c)
  })
})
