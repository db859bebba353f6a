import {
  type LiveSource,
  PortNum,
  type RawMessage,
  type Store,
  type WriteBatch,
} from '@meshtap/protocol'
import { describe, expect, it, vi } from 'vitest'
import { createCodec } from '../codec/decode.js'
import { type EncodeEnvelopeInput, encodeEnvelope } from '../codec/encode.js'
import type { DropEvent } from '../events.js'
import { createMemoryStore } from '../store/memory-store.js'
import { createIngest } from './ingest.js'

const T0 = 1_764_288_000_000
const gw = (g: number) => `!a0c0${g.toString(16).padStart(4, '0')}`

function msg(
  input: Partial<EncodeEnvelopeInput> & { from: number; id: number },
  g = 1,
  t = T0,
): RawMessage {
  const full: EncodeEnvelopeInput = {
    portnum: PortNum.TEXT_MESSAGE_APP,
    payload: `m${input.id}`,
    hopStart: 3,
    hopLimit: 3 - (g % 3),
    rxSnr: 4 - g,
    rxRssi: -90 - g,
    rxTime: Math.floor(t / 1000),
    bitfield: 1,
    ...input,
    gatewayId: input.gatewayId ?? gw(g),
  }
  return {
    topic: `msh/US/2/e/LongFast/${full.gatewayId}`,
    payload: encodeEnvelope(full),
    receivedAt: t,
  }
}

/** A store whose writes wait until released, to build up a queue. */
function gatedStore() {
  const inner = createMemoryStore()
  let open!: () => void
  let gate = new Promise<void>((r) => {
    open = r
  })
  const writes: WriteBatch[] = []
  const store: Store = {
    ...inner,
    writeBatchSync: undefined,
    name: 'gated',
    async writeBatch(batch) {
      await gate
      writes.push(batch)
      return inner.writeBatch(batch)
    },
  }
  return {
    store,
    inner,
    writes,
    release() {
      open()
    },
    close() {
      gate = new Promise<void>((r) => {
        open = r
      })
    },
  }
}

describe('createIngest', () => {
  it('turns copies from several gateways into one packet with every reception, decrypting once', async () => {
    const codec = createCodec()
    const open = vi.spyOn(codec, 'open')
    const store = createMemoryStore()
    const ingest = createIngest({ store, codec })
    const packets: string[] = []
    ingest.on('packet', (e) => packets.push(e.packet.key))
    await ingest.start()
    for (let g = 1; g <= 4; g++) ingest.push(msg({ from: 0x1234, id: 77 }, g, T0 + g))
    ingest.push(msg({ from: 0x9999, id: 77 }, 1)) // same id, other sender: another packet
    await ingest.stop()
    expect(packets).toEqual(['4660:77', '39321:77'])
    expect(open).toHaveBeenCalledTimes(2)
    expect(await store.counts()).toEqual({ packets: 2, receptions: 5, undecoded: 0 })
    const rx = await store.getReceptions('4660:77')
    expect(rx.map((r) => r.gatewayId)).toEqual([gw(1), gw(2), gw(3), gw(4)])
    expect(rx[1]).toMatchObject({
      rxSnr: 2,
      rxRssi: -92,
      hopLimit: 1,
      hopsAway: 2,
      receptionClass: 'relayed',
    })
    const c = ingest.metrics().counters
    expect(c).toMatchObject({
      received: 5,
      decoded: 2,
      duplicates: 3,
      repeats: 0,
      receptions: 5,
      written: 5,
      packetsWritten: 2,
    })
  })

  it('counts a second uplink of a packet by the same gateway as a repeat, not a reception', async () => {
    const store = createMemoryStore()
    const ingest = createIngest({ store })
    const receptions: string[] = []
    ingest.on('reception', (e) => receptions.push(e.reception.gatewayId ?? ''))
    await ingest.start()
    let acked = 0
    const ack = () => acked++
    ingest.push(msg({ from: 0x1234, id: 5 }, 1), ack)
    ingest.push(msg({ from: 0x1234, id: 5 }, 2), ack)
    ingest.push(msg({ from: 0x1234, id: 5 }, 1, T0 + 500), ack) // gateway 1 again (heard a rebroadcast)
    ingest.push(msg({ from: 0x1234, id: 5 }, 2, T0 + 900), ack)
    await ingest.stop()
    expect(receptions).toEqual([gw(2)])
    expect(acked).toBe(4)
    const c = ingest.metrics().counters
    expect(c).toMatchObject({ received: 4, packets: 1, duplicates: 3, repeats: 2, receptions: 2 })
    // What the store holds is exactly what the counters say was recorded.
    expect(await store.counts()).toEqual({ packets: 1, receptions: c.receptions, undecoded: 0 })
    expect(ingest.prometheus()).toMatch(/repeated_copies_total 2/)
  })

  it('drops the later copies of a packet whose batch could not be stored, under the same reason', async () => {
    let fail = true
    const inner = createMemoryStore()
    const store: Store = {
      ...inner,
      writeBatchSync: undefined,
      async writeBatch(batch) {
        if (fail) throw new Error('constraint failed')
        return inner.writeBatch(batch)
      },
    }
    const ingest = createIngest({
      store,
      batch: { maxDelayMs: 1, retryInitialDelayMs: 1, maxAttempts: 2 },
    })
    ingest.on('error', () => {})
    await ingest.start()
    ingest.push(msg({ from: 7, id: 1 }, 1))
    await ingest.flush()
    fail = false
    ingest.push(msg({ from: 7, id: 1 }, 2)) // a copy of the packet that was not stored
    ingest.push(msg({ from: 7, id: 2 }, 1))
    await ingest.stop()
    const c = ingest.metrics().counters
    expect(c.droppedByReason['store-failed']).toBe(2)
    expect(c.written).toBe(1)
    expect(await inner.getReceptions('7:1')).toEqual([])
    expect(await inner.counts()).toEqual({ packets: 1, receptions: 1, undecoded: 0 })
  })

  it('decodes every copy of a traceroute, since gateways rewrite them', async () => {
    const codec = createCodec()
    const open = vi.spyOn(codec, 'open')
    const store = createMemoryStore()
    const ingest = createIngest({ store, codec })
    await ingest.start()
    for (let g = 1; g <= 3; g++) {
      ingest.push(
        msg(
          {
            from: 0x1234,
            id: 5,
            portnum: PortNum.TRACEROUTE_APP,
            payload: { route: Array.from({ length: g }, (_, i) => 0x100 + i), snrTowards: [] },
            requestId: 1,
          },
          g,
        ),
      )
    }
    await ingest.stop()
    expect(open).toHaveBeenCalledTimes(3)
    const rx = await store.getReceptions('4660:5')
    expect(rx[0]?.app).toBeUndefined() // the first copy is the packet itself
    expect(rx[1]?.app).toMatchObject({
      type: 'traceroute',
      route: [{ num: 0x100 }, { num: 0x101 }],
    })
    expect(rx[2]?.app).toMatchObject({ type: 'traceroute', route: [{}, {}, {}] })
  })

  it('rate-limits a spamming node without touching the others, counting and reporting every drop', async () => {
    let now = T0
    const store = createMemoryStore()
    const ingest = createIngest({
      store,
      rateLimit: { ratePerSecond: 1, burst: 5 },
      now: () => now,
    })
    const drops: DropEvent[] = []
    ingest.on('drop', (d) => drops.push(d))
    await ingest.start()
    for (let i = 1; i <= 100; i++) {
      ingest.push(msg({ from: 0x5a5a, id: i }, 1, now))
      ingest.push(msg({ from: 0x6000 + (i % 50), id: i }, 1, now)) // 50 quiet nodes, 2 packets each
      now += 10 // 100 packets/s from the spammer
    }
    // copies of a rate-limited packet are dropped with it, not stored
    ingest.push(msg({ from: 0x5a5a, id: 100 }, 2, now))
    await ingest.stop()
    const c = ingest.metrics().counters
    const spam = [...store.packets.values()].filter((p) => p.packet.from === 0x5a5a).length
    expect(spam).toBeGreaterThanOrEqual(5) // the burst…
    expect(spam).toBeLessThanOrEqual(6) // …plus what 1/s refills in the ~1 s of the run
    expect(c.rateLimited).toBe(100 - spam)
    // …plus the late copy of packet 100 when packet 100 itself was refused (it goes with it)
    const lateCopyDropped = store.packets.has(`${0x5a5a}:100`) ? 0 : 1
    expect(drops.filter((d) => d.reason === 'rate-limited')).toHaveLength(
      100 - spam + lateCopyDropped,
    )
    expect(c.droppedByReason['rate-limited']).toBe(100 - spam + lateCopyDropped)
    expect(drops.every((d) => d.reason !== 'rate-limited' || d.from === 0x5a5a)).toBe(true)
    expect((await store.counts()).packets).toBe(spam + 100)
    expect(c.duplicates).toBe(1)
  })

  it('sheds the lowest priority first when the queue is full, with exact counts', async () => {
    const gated = gatedStore()
    const ingest = createIngest({
      store: gated.store,
      queueCapacity: 10,
      rateLimit: false,
      batch: { maxRecords: 1000, maxDelayMs: 5 },
    })
    const drops: DropEvent[] = []
    ingest.on('drop', (d) => drops.push(d))
    await ingest.start()
    let id = 1
    // 1 record reaches the (blocked) writer after the first timer; fill with low-priority first.
    const low = () =>
      msg({ from: 0x100, id: id++, portnum: PortNum.PAXCOUNTER_APP, payload: { wifi: 1 } })
    const medium = () =>
      msg({
        from: 0x101,
        id: id++,
        portnum: PortNum.TELEMETRY_APP,
        payload: { time: 1, deviceMetrics: { batteryLevel: 50 } },
      })
    const critical = () => msg({ from: 0x102, id: id++ })
    for (let i = 0; i < 6; i++) ingest.push(low())
    for (let i = 0; i < 4; i++) ingest.push(medium())
    // Queue full (10). Each critical evicts the oldest low first…
    for (let i = 0; i < 8; i++) ingest.push(critical())
    // …6 lows gone, then 2 mediums. Now a low is refused outright (nothing lower to evict).
    ingest.push(low())
    const snapshot = ingest.metrics()
    expect(snapshot.gauges.queueDepth).toBe(10)
    expect(snapshot.gauges.queueDepthByPriority).toEqual({
      critical: 8,
      high: 0,
      medium: 2,
      low: 0,
    })
    expect(snapshot.counters.droppedByPriority).toEqual({ critical: 0, high: 0, medium: 2, low: 7 })
    expect(snapshot.counters.droppedByReason['queue-full']).toBe(9)
    expect(drops.filter((d) => d.reason === 'queue-full')).toHaveLength(9)
    gated.release()
    await ingest.stop()
    expect((await gated.inner.counts()).packets).toBe(10)
    expect(ingest.metrics().counters.written).toBe(10)
  })

  it('sheds the copies of a packet whose first record was shed: no reception without its packet', async () => {
    const gated = gatedStore()
    const ingest = createIngest({
      store: gated.store,
      queueCapacity: 4,
      rateLimit: false,
      batch: { maxDelayMs: 5 },
    })
    const drops: DropEvent[] = []
    ingest.on('drop', (d) => drops.push(d))
    await ingest.start()
    const pax = (id: number, g: number) =>
      msg({ from: 0x100, id, portnum: PortNum.PAXCOUNTER_APP, payload: { wifi: 1 } }, g)
    ingest.push(pax(1, 1)) // low: first record of packet 1
    ingest.push(pax(1, 2)) // its copy
    ingest.push(pax(2, 1))
    ingest.push(pax(2, 2)) // queue full (4)
    ingest.push(msg({ from: 0x200, id: 9 })) // critical: evicts packet 1's first record…
    ingest.push(pax(1, 3)) // …so a later copy of packet 1 goes with it (counted, not stored)
    gated.release()
    await ingest.stop()
    const keys = [...gated.inner.packets.keys()]
    expect(keys.sort()).toEqual(['256:2', '512:9'])
    expect(await gated.inner.getReceptions('256:1')).toEqual([]) // the queued copy was shed at write time
    // shed: the first record (evicted), the later copy (refused with it), the queued copy (at write time)
    expect(drops.filter((d) => d.reason === 'queue-full').map((d) => d.key)).toEqual([
      '256:1',
      '256:1',
      '256:1',
    ])
    expect(ingest.metrics().counters.duplicates).toBe(3)
  })

  it('writes a store that commits synchronously even during an uninterrupted burst', async () => {
    const store = createMemoryStore()
    const ingest = createIngest({
      store,
      queueCapacity: 2000,
      rateLimit: false,
      batch: { maxRecords: 500, maxDelayMs: 1000 },
    })
    await ingest.start()
    // 20,000 messages in one synchronous run: no timer, immediate or promise can fire meanwhile.
    for (let i = 1; i <= 20_000; i++) ingest.push(msg({ from: 0x300 + (i % 100), id: i }))
    expect(ingest.metrics().counters.dropped).toBe(0)
    expect(ingest.metrics().counters.written).toBeGreaterThanOrEqual(19_500)
    await ingest.stop()
    expect((await store.counts()).packets).toBe(20_000)
  })

  it('keys map reports by the gateway time when there is one, so a fast replay keeps them apart', async () => {
    const store = createMemoryStore()
    const ingest = createIngest({ store })
    await ingest.start()
    const report = (rxTime: number) => ({
      topic: 'msh/US/2/map/',
      payload: encodeEnvelope({
        from: 0xa0c0ffee,
        id: 0,
        rxTime,
        gatewayId: '!a0c0ffee',
        encrypt: false,
        portnum: PortNum.MAP_REPORT_APP,
        payload: { longName: 'GW' },
      }),
      receivedAt: T0, // replayed: all at once
    })
    ingest.push(report(1_764_288_000))
    ingest.push(report(1_764_291_600)) // an hour later by the gateway's clock
    await ingest.stop()
    expect((await store.counts()).packets).toBe(2)
  })

  it('acknowledges a message only after its batch is committed', async () => {
    const gated = gatedStore()
    const ingest = createIngest({ store: gated.store, batch: { maxDelayMs: 1 } })
    await ingest.start()
    const acks: number[] = []
    for (let i = 1; i <= 5; i++) ingest.push(msg({ from: 0x42, id: i }), () => acks.push(i))
    ingest.push(msg({ from: 0x42, id: 1 }, 2), () => acks.push(100)) // a duplicate is acked with its reception
    await new Promise((r) => setTimeout(r, 30))
    expect(acks).toEqual([])
    gated.release()
    await ingest.flush()
    expect(acks.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 100])
    await ingest.stop()
  })

  it('stop() drains and flushes everything accepted, in several batches', async () => {
    const store = createMemoryStore()
    const ingest = createIngest({
      store,
      rateLimit: false,
      batch: { maxRecords: 300, maxDelayMs: 10_000 },
    })
    await ingest.start()
    let acked = 0
    for (let i = 1; i <= 2500; i++)
      ingest.push(msg({ from: 0x1000 + (i % 50), id: i }, 1 + (i % 3)), () => acked++)
    await ingest.stop()
    expect(await store.counts()).toEqual({ packets: 2500, receptions: 2500, undecoded: 0 })
    expect(acked).toBe(2500)
    expect(ingest.metrics().counters.batches).toBe(9)
    // after stop: refused, counted, not acknowledged
    ingest.push(msg({ from: 1, id: 1 }), () => acked++)
    expect(acked).toBe(2500)
    expect(ingest.metrics().counters.droppedByReason.stopped).toBe(1)
  })

  it('retries transient store errors and keeps the data', async () => {
    const inner = createMemoryStore()
    let failures = 2
    const store: Store = {
      ...inner,
      writeBatchSync: undefined,
      async writeBatch(b) {
        if (failures-- > 0)
          throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })
        return inner.writeBatch(b)
      },
    }
    const ingest = createIngest({ store, batch: { maxDelayMs: 1, retryInitialDelayMs: 1 } })
    const errors: string[] = []
    ingest.on('error', (e) => errors.push(`${e.code}:${e.transient}`))
    await ingest.start()
    ingest.push(msg({ from: 1, id: 1 }))
    await ingest.stop()
    expect(errors).toEqual(['STORE_WRITE_FAILED:true', 'STORE_WRITE_FAILED:true'])
    expect(await inner.counts()).toMatchObject({ packets: 1 })
    expect(ingest.metrics().counters).toMatchObject({ writeErrors: 2, written: 1, dropped: 0 })
  })

  it('isolates a record the store refuses: the rest of its batch is stored, the copies of the bad packet go with it', async () => {
    const inner = createMemoryStore()
    let attempts = 0
    const store: Store = {
      ...inner,
      writeBatchSync: undefined,
      async writeBatch(batch) {
        attempts++
        // A store that refuses one packet for good (a constraint, a value it cannot hold).
        if (batch.receptions.some((r) => r.packetKey === '9:13')) {
          throw Object.assign(new Error('NOT NULL constraint failed'), { code: 'CONSTRAINT' })
        }
        return inner.writeBatch(batch)
      },
    }
    const ingest = createIngest({
      store,
      rateLimit: false,
      batch: { maxRecords: 64, maxDelayMs: 1, retryInitialDelayMs: 1, maxAttempts: 10 },
    })
    const errors: string[] = []
    ingest.on('error', (e) => errors.push(e.message))
    await ingest.start()
    let acked = 0
    for (let id = 1; id <= 40; id++) {
      ingest.push(msg({ from: 9, id }, 1), () => acked++)
      ingest.push(msg({ from: 9, id }, 2), () => acked++)
    }
    await ingest.stop()
    const c = ingest.metrics().counters
    expect(acked).toBe(80)
    expect(c.dropped).toBe(2)
    expect(c.droppedByReason['store-failed']).toBe(2) // packet 9:13 and its copy
    expect(c.written).toBe(78)
    expect(await inner.counts()).toEqual({ packets: 39, receptions: 78, undecoded: 0 })
    expect(await inner.getReceptions('9:13')).toEqual([])
    // Bisection, not a retry per record: a handful of attempts for a batch of 64.
    expect(attempts).toBeLessThan(30)
    expect(errors.some((e) => /splitting it to isolate/.test(e))).toBe(true)
  })

  it('pauses sources that can keep their messages when the queue is nearly full, instead of shedding', async () => {
    const gated = gatedStore()
    const calls: string[] = []
    // A source holding a backlog it keeps safely (as a broker keeps a persistent session's queue).
    const backlog = Array.from({ length: 500 }, (_, i) => msg({ from: 3, id: i + 1 }, 1))
    let handler: ((m: RawMessage, ack: () => void) => void) | undefined
    let paused = false
    let acked = 0
    const pump = () => {
      while (!paused && backlog.length > 0) handler?.(backlog.shift() as RawMessage, () => acked++)
    }
    const source = {
      name: 'backlog',
      async start(h: typeof handler) {
        handler = h
        queueMicrotask(pump)
      },
      async stop() {},
      pause() {
        calls.push('pause')
        paused = true
      },
      resume() {
        calls.push('resume')
        paused = false
        queueMicrotask(pump)
      },
    }
    const ingest = createIngest({
      sources: [source],
      store: gated.store,
      rateLimit: false,
      queueCapacity: 100,
      batch: { maxRecords: 40, maxDelayMs: 1 },
    })
    await ingest.start()
    await vi.waitFor(() => expect(calls).toEqual(['pause']))
    // Paused at the high-water mark (80 of 100), with one message at most on its way.
    expect(ingest.metrics().gauges.queueDepth).toBeLessThanOrEqual(81)
    expect(ingest.metrics().gauges.sourcesPaused).toBe(1)
    gated.release()
    await vi.waitFor(() => expect(backlog).toHaveLength(0))
    await ingest.stop()
    const c = ingest.metrics().counters
    expect(calls.filter((x) => x === 'pause').length).toBe(c.pauses)
    expect(c.pauses).toBeGreaterThan(1)
    expect(c.dropped).toBe(0)
    expect(c.written).toBe(500)
    expect(acked).toBe(500)
    expect(await gated.inner.counts()).toMatchObject({ packets: 500, receptions: 500 })
  })

  it('adds and removes sources at run time, with their statuses and backpressure', async () => {
    const gated = gatedStore()
    const log: string[] = []
    function fakeSource(name: string) {
      let handler: ((m: RawMessage, ack: () => void) => void) | undefined
      let listener: ((s: { source: string; state: 'connected'; at: number }) => void) | undefined
      return {
        name,
        deliver: (m: RawMessage) => handler?.(m, () => {}),
        async start(h: typeof handler) {
          log.push(`${name} start`)
          handler = h
          listener?.({ source: name, state: 'connected', at: T0 })
        },
        async stop() {
          log.push(`${name} stop`)
          handler = undefined
        },
        onStatus(l: typeof listener) {
          listener = l
          return () => {
            listener = undefined
          }
        },
        pause: () => log.push(`${name} pause`),
        resume: () => log.push(`${name} resume`),
      }
    }
    const a = fakeSource('a')
    const ingest = createIngest({
      sources: [a],
      store: gated.store,
      rateLimit: false,
      queueCapacity: 10,
      batch: { maxRecords: 5, maxDelayMs: 1 },
    })
    const statuses: string[] = []
    ingest.on('sourceStatus', (s) => statuses.push(s.source))
    await ingest.start()
    const b = fakeSource('b')
    await ingest.addSource(b)
    expect(ingest.sources.map((s) => s.name)).toEqual(['a', 'b'])
    expect(statuses).toEqual(['a', 'b'])
    expect(ingest.metrics().gauges.sourcesConnected).toBe(2)
    await expect(ingest.addSource(fakeSource('a'))).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    })
    // The added source is paused with the others when the queue fills (8 of 10).
    for (let id = 1; id <= 8; id++) b.deliver(msg({ from: 5, id }, 1))
    expect(log).toEqual(['a start', 'b start', 'a pause', 'b pause'])
    gated.release()
    await vi.waitFor(() => expect(log).toContain('b resume'))
    expect(await ingest.removeSource('b')).toBe(true)
    expect(await ingest.removeSource('b')).toBe(false)
    expect(log.at(-1)).toBe('b stop')
    expect(ingest.sources.map((s) => s.name)).toEqual(['a'])
    expect(ingest.metrics().gauges.sourcesConnected).toBe(1)
    a.deliver(msg({ from: 5, id: 9 }, 1))
    await ingest.stop()
    expect(ingest.metrics().counters).toMatchObject({ written: 9, dropped: 0 })
    await expect(ingest.addSource(fakeSource('c'))).rejects.toMatchObject({ code: 'STOPPED' })
  })

  it('drops (counted, acked) a batch whose error persists after maxAttempts', async () => {
    const store: Store = {
      ...createMemoryStore(),
      writeBatchSync: undefined,
      async writeBatch() {
        throw new Error('constraint failed')
      },
    }
    const ingest = createIngest({
      store,
      batch: { maxDelayMs: 1, retryInitialDelayMs: 1, maxAttempts: 3 },
    })
    ingest.on('error', () => {})
    await ingest.start()
    let acked = 0
    ingest.push(msg({ from: 1, id: 1 }), () => acked++)
    ingest.push(msg({ from: 1, id: 2 }), () => acked++)
    await ingest.flush()
    await ingest.stop()
    expect(ingest.metrics().counters).toMatchObject({ writeErrors: 3, dropped: 2, written: 0 })
    expect(ingest.metrics().counters.droppedByReason['store-failed']).toBe(2)
    expect(acked).toBe(2)
  })

  it('keeps undecodable packets with their receptions, and counts decode failures by code', async () => {
    const store = createMemoryStore()
    const ingest = createIngest({ store })
    const drops: DropEvent[] = []
    ingest.on('drop', (d) => drops.push(d))
    await ingest.start()
    const secret = { name: 'Secret', psk: 'c2VjcmV0LXNlY3JldC1rZXk=' }
    ingest.push(msg({ from: 7, id: 70, channel: secret }, 1))
    ingest.push(msg({ from: 7, id: 70, channel: secret }, 2))
    ingest.push({ topic: 'msh/US/2/e/LongFast/!a0c00001', payload: new Uint8Array([1, 2, 3]) })
    ingest.push({ topic: 'not/a/meshtastic/topic', payload: new Uint8Array([1]) })
    await ingest.stop()
    expect(await store.counts()).toEqual({ packets: 0, receptions: 2, undecoded: 1 })
    const c = ingest.metrics().counters
    expect(c.failedByCode).toMatchObject({
      NO_MATCHING_KEY: 1,
      MALFORMED_ENVELOPE: 1,
      UNKNOWN_TOPIC: 1,
    })
    expect(c.failed).toBe(3)
    expect(drops.map((d) => d.code)).toEqual(['MALFORMED_ENVELOPE', 'UNKNOWN_TOPIC'])
  })

  it('keys map reports (id 0) by sender and time bucket', async () => {
    const store = createMemoryStore()
    const ingest = createIngest({ store, dedup: { mapReportBucketMs: 60_000 } })
    await ingest.start()
    const report = (t: number) => ({
      topic: 'msh/US/2/map/',
      payload: encodeEnvelope({
        from: 0xa0c0ffee,
        id: 0,
        gatewayId: '!a0c0ffee',
        encrypt: false,
        portnum: PortNum.MAP_REPORT_APP,
        payload: { longName: 'GW' },
      }),
      receivedAt: t,
    })
    ingest.push(report(T0))
    ingest.push(report(T0 + 1000)) // same bucket: a copy
    ingest.push(report(T0 + 3600_000)) // an hour later: a new report
    await ingest.stop()
    expect((await store.counts()).packets).toBe(2)
  })

  it('keeps the latest state per node in the hot cache and reports changes', async () => {
    const ingest = createIngest({ store: createMemoryStore() })
    const changed: string[][] = []
    ingest.on('nodeUpdate', (u) => changed.push(u.changed))
    await ingest.start()
    ingest.push(
      msg(
        {
          from: 0xabc,
          id: 1,
          portnum: PortNum.NODEINFO_APP,
          payload: { id: '!00000abc', longName: 'Alpha', shortName: 'A' },
        },
        1,
      ),
    )
    ingest.push(
      msg(
        {
          from: 0xabc,
          id: 2,
          portnum: PortNum.POSITION_APP,
          payload: { latitudeI: 377749000, longitudeI: -1224194000, precisionBits: 14 },
        },
        2,
      ),
    )
    ingest.push(
      msg(
        {
          from: 0xabc,
          id: 3,
          portnum: PortNum.TELEMETRY_APP,
          payload: { time: 1, environmentMetrics: { temperature: 20.5 } },
        },
        1,
      ),
    )
    await ingest.stop()
    const n = ingest.cache.get('!00000abc')
    expect(n).toMatchObject({
      user: { longName: 'Alpha' },
      position: { latitude: 37.7749, longitude: -122.4194, precisionBits: 14 },
      telemetry: { environment: { metrics: { temperature: 20.5 } } },
      packets: 3,
    })
    expect(Object.keys(n?.gateways ?? {}).sort()).toEqual([gw(1), gw(2)])
    expect(changed.flat()).toContain('position')
  })

  it('exposes metrics as a snapshot and as Prometheus text', async () => {
    const ingest = createIngest({ store: createMemoryStore() })
    await ingest.start()
    ingest.push(msg({ from: 1, id: 1 }))
    await ingest.stop()
    const text = ingest.prometheus()
    expect(text).toContain('# TYPE meshtap_messages_received_total counter')
    expect(text).toMatch(/^meshtap_messages_received_total 1$/m)
    expect(text).toMatch(/^meshtap_decode_failures_total\{code="NO_MATCHING_KEY"\} 0$/m)
    expect(text).toMatch(/^meshtap_commit_latency_seconds_count 1$/m)
    expect(ingest.metrics().histograms.commitLatencyMs.count).toBe(1)
  })

  it('reports a bad option clearly', () => {
    expect(() => createIngest({} as never)).toThrow(/store.*required/)
  })
})

describe('Ingest as a LiveSource', () => {
  it('is what servers and UIs consume (structurally, no dependency on core)', () => {
    const ingest = createIngest({ store: createMemoryStore() })
    const live: LiveSource = ingest
    expect(typeof live.on).toBe('function')
    expect(live.cache.list()).toEqual([])
  })
})

/**
 * A memory store that declares `writeConcurrency` and holds each write until the test settles it
 * (in any order), recording how many writes it had at once.
 */
function overlappingStore(writeConcurrency: number | undefined) {
  const inner = createMemoryStore()
  const held: { batch: WriteBatch; settle: (error?: Error) => void }[] = []
  let now = 0
  let most = 0
  const store: Store = {
    ...inner,
    writeBatchSync: undefined,
    name: 'overlapping',
    ...(writeConcurrency !== undefined ? { writeConcurrency } : {}),
    writeBatch(batch) {
      now++
      most = Math.max(most, now)
      return new Promise<void>((resolve, reject) => {
        held.push({
          batch,
          settle(error) {
            now--
            if (error) reject(error)
            else inner.writeBatch(batch).then(resolve, reject)
          },
        })
      })
    },
  }
  return {
    store,
    inner,
    held,
    get most() {
      return most
    },
  }
}

/** Resolves once `check` holds (polling the event loop). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 1))
  expect(check()).toBe(true)
}

describe('createIngest with a store that takes several batches at once', () => {
  const batchOf = (n: number, from: number) =>
    Array.from({ length: n }, (_, i) => msg({ from, id: i + 1 }))

  it('hands over the next batch before the last one is committed, and settles them in order', async () => {
    const s = overlappingStore(2)
    const ingest = createIngest({
      store: s.store,
      rateLimit: false,
      batch: { maxRecords: 10, maxDelayMs: 1 },
    })
    const flushed: number[] = []
    ingest.on('flush', (f) => flushed.push(f.packets))
    await ingest.start()
    const acked: number[] = []
    // Three full batches: the first two go to the store at once, the third waits for a free slot.
    for (const [b, from] of [
      [0, 0x10],
      [1, 0x20],
      [2, 0x30],
    ] as const) {
      for (const m of batchOf(10, from)) ingest.push(m, () => acked.push(b))
    }
    await until(() => s.held.length === 2)
    expect(s.most).toBe(2)
    // The store answers the second batch first: nothing of it is acknowledged before the first.
    s.held[1]?.settle()
    await new Promise((r) => setTimeout(r, 5))
    expect(acked).toEqual([])
    expect(s.held).toHaveLength(2) // the third batch still waits for a free slot
    s.held[0]?.settle()
    await until(() => s.held.length === 3)
    expect(acked).toEqual([...Array(10).fill(0), ...Array(10).fill(1)])
    s.held[2]?.settle()
    await ingest.stop()
    expect(acked).toHaveLength(30)
    expect(acked.slice(20)).toEqual(Array(10).fill(2))
    expect(flushed).toEqual([10, 10, 10])
    expect(s.most).toBe(2)
    expect(await s.inner.counts()).toEqual({ packets: 30, receptions: 30, undecoded: 0 })
  })

  it('retries a batch that failed after the one handed over behind it committed, and loses nothing', async () => {
    const s = overlappingStore(2)
    const ingest = createIngest({
      store: s.store,
      rateLimit: false,
      batch: { maxRecords: 10, maxDelayMs: 1, retryInitialDelayMs: 1 },
    })
    const errors: string[] = []
    ingest.on('error', (e) => errors.push(`${e.code}:${e.transient}`))
    await ingest.start()
    let acked = 0
    for (const m of [...batchOf(10, 0x10), ...batchOf(10, 0x20)]) ingest.push(m, () => acked++)
    // The copies of the first batch's packets, heard by another gateway, in a third batch.
    for (let id = 1; id <= 10; id++) ingest.push(msg({ from: 0x10, id }, 2), () => acked++)
    await until(() => s.held.length === 2)
    s.held[0]?.settle(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }))
    s.held[1]?.settle()
    // Settled in order: the retry of the first batch goes out before the third batch.
    await until(() => s.held.length === 3)
    expect(s.held[2]?.batch.packets.map((p) => p.key)).toEqual(
      s.held[0]?.batch.packets.map((p) => p.key),
    )
    s.held[2]?.settle()
    await until(() => s.held.length === 4)
    s.held[3]?.settle()
    await ingest.stop()
    expect(errors).toEqual(['STORE_WRITE_FAILED:true'])
    expect(acked).toBe(30)
    expect(ingest.metrics().counters).toMatchObject({
      written: 30,
      writeErrors: 1,
      dropped: 0,
      batches: 3,
    })
    expect(await s.inner.counts()).toEqual({ packets: 20, receptions: 30, undecoded: 0 })
  })

  it('writes one batch at a time with batch.inFlight 1, or for a store that does not declare more', async () => {
    for (const [declared, inFlight] of [
      [2, 1],
      [undefined, 4],
    ] as const) {
      const s = overlappingStore(declared)
      const ingest = createIngest({
        store: s.store,
        rateLimit: false,
        batch: { maxRecords: 10, maxDelayMs: 1, inFlight },
      })
      await ingest.start()
      for (const m of [...batchOf(10, 0x10), ...batchOf(10, 0x20)]) ingest.push(m)
      await until(() => s.held.length === 1)
      await new Promise((r) => setTimeout(r, 5))
      expect(s.held).toHaveLength(1)
      s.held[0]?.settle()
      await until(() => s.held.length === 2)
      s.held[1]?.settle()
      await ingest.stop()
      expect(s.most).toBe(1)
      expect(await s.inner.counts()).toMatchObject({ packets: 20 })
    }
  })
})
