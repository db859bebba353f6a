import { describe, expect, it } from 'vitest'
import { Aggregates } from './aggregates.js'

describe('Aggregates links', () => {
  const pairs: [number, number][] = [
    [1, 2],
    [2, 1],
    [0xffffffff, 2 ** 21 - 1],
    [0, 2 ** 21],
    [5, 2 ** 21],
    [-1, 3],
    [0xffffffff, 3],
    [1.5, 3],
    [1, 3],
    [2 ** 32, 0],
    [0, 1],
  ]

  it('keeps one link per node and gateway, whatever the numbers, in first-seen order', () => {
    const a = new Aggregates()
    for (const [i, [node, gw]] of pairs.entries()) a.link(node, gw, 100 + i, i, -i)
    for (const [node, gw] of pairs) a.link(node, gw, 50, 0, 0)
    expect([...a.links.values()]).toEqual(
      pairs.map(([node, gw], i) => ({
        node,
        gw,
        first: 50,
        last: 100 + i,
        count: 2,
        snr: i,
        rssi: -i,
      })),
    )
  })

  it('merges links of two batches into the same entries', () => {
    const a = new Aggregates()
    const b = new Aggregates()
    for (const [node, gw] of pairs) a.link(node, gw, 10, 1, 1)
    for (const [node, gw] of [...pairs].reverse()) b.link(node, gw, 20, 2, 2, 3, 5)
    a.mergeFrom(b)
    expect(a.links.size).toBe(pairs.length)
    for (const l of a.links.values()) {
      expect([l.first, l.last, l.count, l.snr, l.rssi]).toEqual([5, 20, 4, 2, 2])
    }
  })
})
