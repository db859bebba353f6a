import { createIngest, createMemoryStore, type Ingest } from '@meshtap/core'
import { SECRET_CHANNEL, workload } from '@meshtap/core/testing'
import type { RawMessage } from '@meshtap/protocol'
import { describe, expect, it } from 'vitest'
import { createSqliteStore } from '../src/index.js'
import { tmpFile } from './helpers.js'

/** Copies of different packets interleave on the wire: shuffle within a sliding window. */
function interleave(messages: RawMessage[], window: number, seed: number): RawMessage[] {
  const out = [...messages]
  let s = seed
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0
    const j = Math.min(out.length - 1, i + (s % window))
    ;[out[i], out[j]] = [out[j] as RawMessage, out[i] as RawMessage]
  }
  return out
}

/** Pushes every message, letting the batch writer run every 1000 (as a broker's pace would). */
async function feed(ingest: Ingest, messages: RawMessage[]): Promise<void> {
  let i = 0
  for (const m of messages) {
    ingest.push({ ...m })
    if (++i % 1000 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
}

describe.each([
  ['on the pipeline thread', false],
  ['on a writer thread', true],
])('a realistic stream through createIngest into SQLite, written %s', (_, writerThread) => {
  it('stores every distinct packet once and every copy as a reception', async () => {
    const records = [
      ...workload({ packets: 6000, nodes: 400, gateways: 40, secretShare: 0.05, seed: 17 }),
    ]
    const messages = interleave(
      records.flatMap((r) => r.messages),
      20,
      5,
    )
    expect(messages.length).toBeGreaterThan(12_000)
    const file = tmpFile()
    const sqlite = createSqliteStore({ path: file, writerThread })
    expect(sqlite.writeConcurrency).toBe(writerThread ? 2 : 1)
    // How many batches the pipeline hands the store at once: the thread takes the next while it
    // commits the last.
    const write = sqlite.writeBatch.bind(sqlite)
    let writes = 0
    let mostWrites = 0
    sqlite.writeBatch = async (batch) => {
      mostWrites = Math.max(mostWrites, ++writes)
      try {
        await write(batch)
      } finally {
        writes--
      }
    }
    const memory = createMemoryStore()
    const runs = [sqlite, memory].map((store) =>
      createIngest({
        store,
        rateLimit: false,
        keys: [],
        batch: { maxRecords: 500, maxDelayMs: 5 },
        closeStore: false,
      }),
    )
    for (const ingest of runs) await ingest.start()
    let i = 0
    for (const m of messages) {
      for (const ingest of runs) ingest.push({ ...m })
      if (++i % 1000 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    for (const ingest of runs) await ingest.stop()
    const metrics = runs[0]?.metrics().counters
    expect(mostWrites).toBe(writerThread ? 2 : 1)
    expect(metrics?.dropped).toBe(0)
    expect(metrics?.writeErrors).toBe(0)

    const decoded = records.filter((r) => r.packet)
    const undecoded = records.filter((r) => r.undecoded)
    expect(await sqlite.counts()).toEqual({
      packets: decoded.length,
      receptions: messages.length,
      undecoded: undecoded.length,
    })
    expect(await sqlite.counts()).toEqual(await memory.counts())

    // Exactly once, identical to the reference store, copies in arrival order.
    const keys = new Set<string>()
    let page = await sqlite.listPackets({ limit: 1000 })
    for (;;) {
      for (const p of page.items) {
        expect(keys.has(p.key)).toBe(false)
        keys.add(p.key)
      }
      if (!page.nextCursor) break
      page = await sqlite.listPackets({ limit: 1000, cursor: page.nextCursor })
    }
    expect(keys.size).toBe(decoded.length)
    for (const key of [...memory.packets.keys()].slice(0, 1500)) {
      expect(await sqlite.getPacket(key)).toEqual(
        JSON.parse(JSON.stringify(await memory.getPacket(key))),
      )
      expect(await sqlite.getReceptions(key)).toEqual(
        JSON.parse(JSON.stringify(await memory.getReceptions(key))),
      )
    }
    // The derived tables agree with the stream.
    const nodes = await sqlite.listNodes({ limit: 1000 })
    expect(nodes.items.length).toBe(400)
    const gateways = await sqlite.gatewayStats({ since: 0, limit: 1000 })
    expect(gateways.items.reduce((s, g) => s + g.packets, 0)).toBe(messages.length)
    await sqlite.close()

    // Replaying the whole capture into the same file adds nothing…
    const expected = {
      packets: decoded.length,
      receptions: messages.length,
      undecoded: undecoded.length,
    }
    const again = createSqliteStore({ path: file, writerThread })
    const replay = createIngest({ store: again, rateLimit: false })
    await replay.start()
    await feed(replay, messages)
    await replay.stop()
    expect(replay.metrics().counters.dropped).toBe(0)
    const reopened = createSqliteStore({ path: file, readonly: true })
    expect(await reopened.counts()).toEqual(expected)
    // …but with the missing key it recovers the undecoded packets through the normal path.
    const keyed = createIngest({
      store: createSqliteStore({ path: file, writerThread }),
      rateLimit: false,
      keys: [SECRET_CHANNEL],
    })
    await keyed.start()
    await feed(keyed, messages)
    await keyed.stop()
    expect(keyed.metrics().counters.dropped).toBe(0)
    expect(await reopened.counts()).toEqual({
      packets: records.length,
      receptions: messages.length,
      undecoded: 0,
    })
    await reopened.close()
  }, 60_000) // 12 000 messages through two pipelines: seconds on a busy 2-core machine
})
