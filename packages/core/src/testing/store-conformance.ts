import type { Store } from '@meshtap/protocol'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { samplePacket, sampleReception, sampleUndecoded } from './fixtures.js'

/** Options of {@link describeStoreConformance}. */
export interface StoreConformanceOptions {
  /** Records in the large-batch case. @default 5000 */
  largeBatch?: number
}

/**
 * The Store contract as a vitest suite: every store must pass it. Call it first in a store's tests,
 * with a factory that returns a fresh, empty store (not yet initialised).
 *
 * @example
 * import { describeStoreConformance } from '@meshtap/core/testing'
 * describeStoreConformance('sqlite', () => createSqliteStore({ database: new Database(tmpFile()) }))
 */
export function describeStoreConformance(
  name: string,
  factory: () => Store | Promise<Store>,
  options: StoreConformanceOptions = {},
): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store
    beforeEach(async () => {
      store = await factory()
      await store.init?.()
    })
    afterEach(async () => {
      await store.close?.()
    })

    it('starts empty', async () => {
      expect(await store.counts()).toEqual({ packets: 0, receptions: 0, undecoded: 0 })
      expect(await store.getPacket('1:2')).toBeUndefined()
      expect(await store.getReceptions('1:2')).toEqual([])
    })

    it('stores packets and receptions as written (JSON round trip)', async () => {
      const kinds = ['position', 'text', 'telemetry', 'nodeinfo', 'mapreport'] as const
      const packets = kinds.map((k, i) => samplePacket(i + 1, k))
      const receptions = packets.flatMap((p) => [sampleReception(p, 1), sampleReception(p, 2, 20)])
      await store.writeBatch({ packets, receptions, undecoded: [] })
      for (const p of packets) {
        expect(await store.getPacket(p.key)).toEqual(JSON.parse(JSON.stringify(p)))
        expect(await store.getReceptions(p.key)).toEqual(
          JSON.parse(JSON.stringify(receptions.filter((r) => r.packetKey === p.key))),
        )
      }
      expect(await store.counts()).toEqual({ packets: 5, receptions: 10, undecoded: 0 })
    })

    it('is idempotent: writing a batch again changes nothing', async () => {
      const p = samplePacket(7)
      const batch = {
        packets: [p],
        receptions: [sampleReception(p, 1), sampleReception(p, 2)],
        undecoded: [sampleUndecoded(1)],
      }
      await store.writeBatch(batch)
      await store.writeBatch(batch)
      expect(await store.counts()).toEqual({ packets: 1, receptions: 2, undecoded: 1 })
      expect(await store.getReceptions(p.key)).toHaveLength(2)
    })

    it('keeps the first copy of a packet written twice with different content', async () => {
      const p = samplePacket(8)
      await store.writeBatch({ packets: [p], receptions: [], undecoded: [] })
      const later = { ...p, receivedAt: p.receivedAt + 5000 }
      await store.writeBatch({ packets: [later], receptions: [], undecoded: [] })
      expect((await store.getPacket(p.key))?.receivedAt).toBe(p.receivedAt)
    })

    it('attaches receptions to a packet written in an earlier batch, in arrival order', async () => {
      const p = samplePacket(9)
      await store.writeBatch({ packets: [p], receptions: [sampleReception(p, 1)], undecoded: [] })
      await store.writeBatch({
        packets: [],
        receptions: [sampleReception(p, 3, 30)],
        undecoded: [],
      })
      await store.writeBatch({
        packets: [],
        receptions: [sampleReception(p, 2, 40)],
        undecoded: [],
      })
      const got = await store.getReceptions(p.key)
      expect(got.map((r) => r.gatewayId)).toEqual(['!a0c00001', '!a0c00003', '!a0c00002'])
    })

    it('commits batches handed over at once in call order, as many as its writeConcurrency', async () => {
      const n = store.writeConcurrency ?? 1
      expect(Number.isInteger(n) && n >= 1).toBe(true)
      const p = samplePacket(11)
      const q = samplePacket(12)
      const later = { ...p, receivedAt: p.receivedAt + 5000 }
      // Batch k writes a copy heard by gateway k; the second writes the packet again (changed), and
      // the first a reception of a packet that only a later batch writes.
      const batches = Array.from({ length: Math.max(n, 3) }, (_, k) => ({
        packets: k === 0 ? [p] : k === 1 ? [later] : k === 2 ? [q] : [],
        receptions: [sampleReception(p, k + 1, 10 * (k + 1)), sampleReception(q, k + 1)],
        undecoded: [],
      }))
      const settled: number[] = []
      for (let from = 0; from < batches.length; from += n) {
        await Promise.all(
          batches
            .slice(from, from + n)
            .map((b, i) => store.writeBatch(b).then(() => settled.push(from + i))),
        )
      }
      expect(settled).toEqual(batches.map((_, k) => k))
      expect((await store.getPacket(p.key))?.receivedAt).toBe(p.receivedAt)
      expect(await store.getPacket(q.key)).toEqual(JSON.parse(JSON.stringify(q)))
      const gateways = batches.map((_, k) => sampleReception(p, k + 1).gatewayId)
      expect((await store.getReceptions(p.key)).map((r) => r.gatewayId)).toEqual(gateways)
      expect((await store.getReceptions(q.key)).map((r) => r.gatewayId)).toEqual(gateways)
    })

    it('keeps a reception whose packet is not stored', async () => {
      const p = samplePacket(10)
      await store.writeBatch({ packets: [], receptions: [sampleReception(p, 1)], undecoded: [] })
      expect(await store.getReceptions(p.key)).toHaveLength(1)
      expect((await store.counts()).receptions).toBe(1)
    })

    it('keeps undecoded packets with their ciphertext', async () => {
      const u = sampleUndecoded(2)
      await store.writeBatch({ packets: [], receptions: [], undecoded: [u] })
      expect((await store.counts()).undecoded).toBe(1)
      expect(u.failure.packet.ciphertext).toBeTruthy()
    })

    it('writes a large batch in one call', async () => {
      const n = options.largeBatch ?? 5000
      const packets = Array.from({ length: n / 2 }, (_, i) =>
        samplePacket(1000 + i, i % 2 ? 'text' : 'position'),
      )
      const receptions = packets.map((p) => sampleReception(p, 1))
      await store.writeBatch({ packets, receptions, undecoded: [] })
      expect(await store.counts()).toEqual({ packets: n / 2, receptions: n / 2, undecoded: 0 })
    })

    it('rejects writes after close, and close twice is harmless', async () => {
      await store.close?.()
      await expect(
        store.writeBatch({ packets: [samplePacket(11)], receptions: [], undecoded: [] }),
      ).rejects.toThrow()
      await store.close?.()
    })
  })
}
