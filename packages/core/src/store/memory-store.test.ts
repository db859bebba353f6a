import type { Reception } from '@meshtap/protocol'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { describeStoreConformance } from '../testing/store-conformance.js'
import { createMemoryStore } from './memory-store.js'

describeStoreConformance('memory', () => createMemoryStore())

describe('memory store receptions', () => {
  const r = (
    gatewayId: string | undefined,
    topic: string | undefined,
    rxSnr: number,
  ): Reception => ({
    packetKey: '1:2',
    rxTime: 0,
    receivedAt: 1,
    rxSnr,
    rxRssi: 0,
    hopLimit: 0,
    hopStart: 0,
    receptionClass: 'unknown',
    ...(gatewayId !== undefined ? { gatewayId } : {}),
    ...(topic !== undefined ? { topic } : {}),
  })
  /** One reception per `gateway NUL topic-if-no-gateway`, the first one kept. */
  const expected = (rs: Reception[]) => {
    const seen = new Map<string, Reception>()
    for (const x of rs) {
      const id = `${x.gatewayId ?? ''}\u0000${x.gatewayId === undefined ? (x.topic ?? '') : ''}`
      if (!seen.has(id)) seen.set(id, x)
    }
    return [...seen.values()]
  }

  it('keeps one reception per gateway (or per topic without one), whatever the ids look like', async () => {
    // Odd ids, and enough distinct gateways to pass the small-array stage of a packet's list.
    const ids = fc.oneof(
      fc.constantFrom(undefined, '', '!a', '\u0000', '\u0000!a', '!a\u0000', 'a'),
      fc.nat(30).map((n) => `!g${n}`),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(ids, ids), { maxLength: 60 }), async (pairs) => {
        const store = createMemoryStore()
        const rs = pairs.map(([g, t], i) => r(g, t, i))
        for (const x of rs) store.writeBatchSync?.({ packets: [], receptions: [x], undecoded: [] })
        const want = expected(rs)
        expect((await store.getReceptions('1:2')).map((x) => x.rxSnr)).toEqual(
          want.map((x) => x.rxSnr),
        )
        expect((await store.counts()).receptions).toBe(want.length)
      }),
      { numRuns: 500 },
    )
  })
})
