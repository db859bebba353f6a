/**
 * Issue 9, overload: 10× the sustainable rate for a minute against a pipeline with a deliberately
 * slow store, then back to half the rate; and one node spamming 500 packets/s among quiet ones.
 *
 * The store sleeps for every batch (a timer, not CPU), so its capacity does not depend on how busy
 * the machine is; the test measures that capacity first, then offers ten times it. Checked:
 * memory stays under a stated bound (heap and RSS sampled every 500 ms), drops are counted by
 * priority, no critical message is dropped (critical traffic is below capacity) and no record is
 * shed while a lower-priority one is still queued, every message is accounted for, and after the
 * burst the written rate returns to the offered rate with nothing more dropped.
 *
 * HOSTILE_OVERLOAD_BURST_MS shortens the burst (default 60000, as the issue asks).
 */

import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createIngest, encodeEnvelope, type Ingest, type PriorityLevel } from '@meshtap/core'
import { PortNum, type RawMessage, type Store, type WriteBatch } from '@meshtap/protocol'
import { afterAll, describe, expect, it } from 'vitest'
import { accountingOf } from '../lib/hostile-accounting.js'
import { createResultList } from '../lib/report.js'

const BURST_MS = Number(process.env.HOSTILE_OVERLOAD_BURST_MS ?? 60_000)
const BATCH = 100
const BATCH_DELAY_MS = 200 // → about 500 records/s
const QUEUE = 2000
const DEDUP = 50_000
const HEAP_BOUND_MB = 150
const RSS_BOUND_MB = 300

// A full garbage collection on demand, so the heap samples measure what is retained.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const rows = createResultList('hostile overload')
afterAll(() => rows.print())

/** A store that takes `delayMs` per batch and keeps only counts (so memory measures the pipeline). */
function slowSink(delayMs: number): Store & { records: number } {
  const sink = {
    name: 'slow-sink',
    records: 0,
    async writeBatch(batch: WriteBatch) {
      await new Promise<void>((r) => setTimeout(r, delayMs))
      sink.records += batch.receptions.length
    },
    async getPacket() {
      return undefined
    },
    async getReceptions() {
      return []
    },
    async counts() {
      return { packets: 0, receptions: sink.records, undecoded: 0 }
    },
  }
  return sink
}

/** Priority mix of the offered traffic: critical well below the store's capacity. */
const MIX: [PriorityLevel, number, number][] = [
  ['critical', 0.03, PortNum.TEXT_MESSAGE_APP],
  ['high', 0.27, PortNum.POSITION_APP],
  ['medium', 0.3, PortNum.TELEMETRY_APP],
  ['low', 0.4, 256], // a private app port: opaque payload, lowest priority
]
const PAYLOADS: Record<number, Uint8Array | string | Record<string, unknown>> = {
  [PortNum.TEXT_MESSAGE_APP]: 'overload test',
  [PortNum.POSITION_APP]: { latitudeI: 377749000, longitudeI: -1224194000, precisionBits: 32 },
  [PortNum.TELEMETRY_APP]: { deviceMetrics: { batteryLevel: 80, voltage: 4.1 } },
  256: new Uint8Array([1, 2, 3, 4]),
}

/** Unique plaintext envelopes (as a gateway with MQTT encryption off publishes them). */
function createTraffic(seed: number) {
  let id = seed * 10_000_000
  let k = 0
  const offered: Record<PriorityLevel, number> = { critical: 0, high: 0, medium: 0, low: 0 }
  return {
    offered,
    next(): RawMessage {
      const r = (((k++ * 0.6180339887) % 1) + 1) % 1
      let acc = 0
      let pick = MIX[MIX.length - 1] as (typeof MIX)[number]
      for (const m of MIX) {
        acc += m[1]
        if (r < acc) {
          pick = m
          break
        }
      }
      offered[pick[0]]++
      const from = 0x10000 + (id % 4000)
      const gatewayId = '!a0b0c0d0'
      return {
        topic: `msh/US/2/e/LongFast/${gatewayId}`,
        payload: encodeEnvelope({
          from,
          id: ++id,
          portnum: pick[2],
          payload: PAYLOADS[pick[2]] as Uint8Array,
          encrypt: false,
          gatewayId,
          hopStart: 3,
          hopLimit: 3,
          rxSnr: 4,
          rxRssi: -80,
        }),
        receivedAt: Date.now(),
      }
    },
  }
}

/** Offers `rate` messages/s for `ms`, in 20 ms steps; returns how many were offered. */
async function offer(
  ingest: Ingest,
  traffic: ReturnType<typeof createTraffic>,
  rate: number,
  ms: number,
  onTick?: () => void,
): Promise<number> {
  const start = Date.now()
  let sent = 0
  while (Date.now() - start < ms) {
    const due = Math.floor(((Date.now() - start) / 1000) * rate)
    while (sent < due) {
      ingest.push(traffic.next())
      sent++
    }
    onTick?.()
    await new Promise((r) => setTimeout(r, 20))
  }
  return sent
}

class Drained extends Error {}

const mb = (n: number) => Math.round(n / 2 ** 20)

describe('overload', () => {
  it(
    `10× the sustainable rate for ${BURST_MS / 1000} s: bounded memory, drops by priority, no critical drop, recovery`,
    async () => {
      const store = slowSink(BATCH_DELAY_MS)
      const ingest = createIngest({
        store,
        rateLimit: false,
        queueCapacity: QUEUE,
        dedup: { maxEntries: DEDUP },
        batch: { maxRecords: BATCH, maxDelayMs: 50 },
      })
      await ingest.start()
      const traffic = createTraffic(1)

      // 1. Measure the sustainable rate: offer more than the store takes for 3 s.
      const w0 = ingest.metrics().counters.written
      const t0 = Date.now()
      await offer(ingest, traffic, 2000, 3000)
      const sustainable = ((ingest.metrics().counters.written - w0) * 1000) / (Date.now() - t0)
      expect(sustainable).toBeGreaterThan(100)

      // 2. The burst: 10× that, with memory sampled and every non-low drop checked.
      gc()
      const base = process.memoryUsage()
      let heapMax = base.heapUsed
      let rssMax = base.rss
      /** Heap after a full GC, every 5 s: [seconds into the burst, MB]. */
      const live: [number, number][] = []
      let lastGc = Date.now()
      let depthMax = 0
      let lastSample = 0
      let violations = 0
      const dropsAtStart = ingest.metrics().counters.droppedByPriority
      const offDrop = ingest.on('drop', (e) => {
        if (e.reason !== 'queue-full' || !e.priority || e.priority === 'low') return
        // Shedding a record while a lower-priority one is still queued is a violation.
        const depth = ingest.metrics().gauges.queueDepthByPriority
        const order: PriorityLevel[] = ['critical', 'high', 'medium', 'low']
        for (const lower of order.slice(order.indexOf(e.priority) + 1)) {
          if (depth[lower] > 0) violations++
        }
      })
      const burstRate = Math.round(10 * sustainable)
      const burstStart = Date.now()
      const offeredBurst = await offer(ingest, traffic, burstRate, BURST_MS, () => {
        const now = Date.now()
        if (now - lastSample < 500) return
        lastSample = now
        if (now - lastGc >= 5000) {
          lastGc = now
          gc()
          live.push([Math.round((now - burstStart) / 1000), mb(process.memoryUsage().heapUsed)])
        }
        const mem = process.memoryUsage()
        heapMax = Math.max(heapMax, mem.heapUsed)
        rssMax = Math.max(rssMax, mem.rss)
        depthMax = Math.max(depthMax, ingest.metrics().gauges.queueDepth)
      })
      const burstSecs = (Date.now() - burstStart) / 1000
      offDrop()
      const afterBurst = ingest.metrics().counters
      const drops = Object.fromEntries(
        (Object.keys(dropsAtStart) as PriorityLevel[]).map((p) => [
          p,
          afterBurst.droppedByPriority[p] - dropsAtStart[p],
        ]),
      ) as Record<PriorityLevel, number>

      // 3. Recovery: half the sustainable rate; the queue drains, then nothing more is dropped and
      // everything offered is written.
      const drainStart = Date.now()
      await offer(ingest, traffic, sustainable / 2, 20_000, () => {
        if (ingest.metrics().gauges.queueDepth < 50) throw new Drained()
      }).catch((e) => {
        if (!(e instanceof Drained)) throw e
      })
      const drainSecs = (Date.now() - drainStart) / 1000
      const droppedBefore = ingest.metrics().counters.dropped
      const w1 = ingest.metrics().counters.written
      const r0 = Date.now()
      const offeredRecovery = await offer(ingest, traffic, sustainable / 2, 4000)
      const recoverySecs = (Date.now() - r0) / 1000
      const writtenRecovery = ingest.metrics().counters.written - w1
      const droppedRecovery = ingest.metrics().counters.dropped - droppedBefore
      await ingest.stop()
      const a = accountingOf(ingest.metrics())

      rows.add({
        input: `sustainable rate (store: ${BATCH} records per ${BATCH_DELAY_MS} ms)`,
        result: `${Math.round(sustainable)} records/s measured`,
      })
      rows.add({
        input: 'burst offered',
        result: `${offeredBurst} messages in ${burstSecs.toFixed(1)} s = ${Math.round(offeredBurst / burstSecs)}/s (${(offeredBurst / burstSecs / sustainable).toFixed(1)}× sustainable)`,
      })
      rows.add({
        input: 'drops by priority during the burst',
        result: `critical ${drops.critical}, high ${drops.high}, medium ${drops.medium}, low ${drops.low}`,
      })
      rows.add({
        input: 'offered by priority (whole run)',
        result: `critical ${traffic.offered.critical}, high ${traffic.offered.high}, medium ${traffic.offered.medium}, low ${traffic.offered.low}`,
      })
      rows.add({ input: 'shed while a lower priority was queued', result: `${violations}` })
      rows.add({
        input: 'memory',
        result: `heap after GC ${mb(base.heapUsed)} MB at the start, then every 5 s: ${live.map(([, v]) => v).join(', ')} MB (bound +${HEAP_BOUND_MB}; dedup capped at ${DEDUP} entries); heap max before GC ${mb(heapMax)} MB; RSS ${mb(base.rss)} → max ${mb(rssMax)} MB (bound +${RSS_BOUND_MB}), queue depth max ${depthMax} (capacity ${QUEUE})`,
      })
      rows.add({
        input: `recovery at ${Math.round(sustainable / 2)}/s`,
        result: `queue drained in ${drainSecs.toFixed(1)} s; then offered ${offeredRecovery}, written ${writtenRecovery} in ${recoverySecs.toFixed(1)} s, dropped ${droppedRecovery}`,
      })
      rows.add({
        input: 'accounting',
        result: `received ${a.received} = written ${a.written} + dropped ${a.dropped} + failed ${a.failedNotKept}`,
      })

      // The burst really was about 10× (at least 5× on a starved machine) and did shed load.
      expect(offeredBurst / burstSecs).toBeGreaterThan(5 * sustainable)
      expect(drops.low).toBeGreaterThan(0)
      expect(drops.medium).toBeGreaterThan(0)
      // Critical traffic (3 % of 10× = 0.3× capacity) is never dropped; nothing is shed out of order.
      expect(drops.critical).toBe(0)
      expect(violations).toBe(0)
      // Memory and the queue stayed bounded.
      expect(depthMax).toBeLessThanOrEqual(QUEUE)
      const liveMax = Math.max(...live.map(([, v]) => v))
      expect(liveMax - mb(base.heapUsed)).toBeLessThan(HEAP_BOUND_MB)
      expect(mb(rssMax - base.rss)).toBeLessThan(RSS_BOUND_MB)
      // No upward trend once the bounded structures are full: the second half of the burst
      // retains no more than the first half did (plus a margin for the batches in flight).
      if (live.length >= 4) {
        const half = Math.floor(live.length / 2)
        const first = Math.max(...live.slice(0, half).map(([, v]) => v))
        const second = Math.max(...live.slice(half).map(([, v]) => v))
        expect(second).toBeLessThanOrEqual(first * 1.2 + 16)
      }
      // Recovery: everything offered after the burst was written, nothing dropped.
      expect(drainSecs).toBeLessThan(19)
      expect(droppedRecovery).toBe(0)
      expect(writtenRecovery).toBeGreaterThanOrEqual(offeredRecovery * 0.8)
      expect(writtenRecovery).toBeLessThanOrEqual(offeredRecovery + 100)
      // Every message accounted for.
      expect(a.accounted).toBe(a.received)
    },
    BURST_MS + 60_000,
  )

  it('one node spamming 500 packets/s is held to its token bucket; the others are all stored', async () => {
    const { createMemoryStore } = await import('@meshtap/core')
    const store = createMemoryStore()
    const rate = 2
    const burst = 20
    const ingest = createIngest({ store, rateLimit: { ratePerSecond: rate, burst } })
    await ingest.start()
    const SPAMMER = 0x5badbad5
    const others = Array.from({ length: 40 }, (_, i) => 0x20000 + i)
    const gatewayId = '!a0b0c0d1'
    let id = 1
    const message = (from: number): RawMessage => ({
      topic: `msh/US/2/e/LongFast/${gatewayId}`,
      payload: encodeEnvelope({
        from,
        id: id++,
        portnum: PortNum.POSITION_APP,
        payload: PAYLOADS[PortNum.POSITION_APP] as Record<string, unknown>,
        gatewayId,
        hopStart: 3,
        hopLimit: 2,
        rxSnr: 3,
        rxRssi: -90,
      }),
    })
    const othersKeys: string[] = []
    let spam = 0
    const start = Date.now()
    let firstSpam = 0
    let lastSpam = 0
    let tick = 0
    while (Date.now() - start < 6000) {
      const due = Math.floor(((Date.now() - start) / 1000) * 500)
      while (spam < due) {
        if (spam === 0) firstSpam = Date.now()
        ingest.push(message(SPAMMER))
        lastSpam = Date.now()
        spam++
      }
      // Each other node sends one packet a second (half its allowance).
      if (tick++ % 50 === 0) {
        for (const o of others) {
          othersKeys.push(`${o}:${id}`)
          ingest.push(message(o))
        }
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    await ingest.stop()
    const spamSecs = (lastSpam - firstSpam) / 1000
    const spamStored = [...store.packets.values()].filter((p) => p.packet.from === SPAMMER).length
    const missing = othersKeys.filter((k) => !store.packets.has(k))
    const c = ingest.metrics().counters
    rows.add({
      input: `one node at ${Math.round(spam / spamSecs)} packets/s for ${spamSecs.toFixed(1)} s (bucket ${rate}/s, burst ${burst})`,
      result: `${spamStored} of ${spam} stored, ${c.rateLimited} rate-limited; ${othersKeys.length - missing.length} of ${othersKeys.length} packets of the 40 other nodes stored`,
    })
    expect(missing).toEqual([])
    expect(spamStored).toBeLessThanOrEqual(burst + Math.ceil(rate * spamSecs) + 1)
    expect(spamStored).toBeGreaterThanOrEqual(burst + Math.floor(rate * spamSecs) - 1)
    expect(c.rateLimited).toBe(spam - spamStored)
    expect(c.droppedByReason['rate-limited']).toBe(spam - spamStored)
    expect(accountingOf(ingest.metrics()).accounted).toBe(c.received)
  }, 30_000)
})
