/**
 * Issue 9, hostile input: at least 1,000,000 fuzzed inputs through the codec and the ingest
 * pipeline. fast-check arbitraries (random bytes, protobuf-shaped bytes, envelopes with random
 * fields and names, random topics and kinds) plus a seeded mutator over real envelopes (the shared
 * captured vectors and the simulator): bit flips, truncation, extension, splices, varint bombs,
 * random topics, wrong channel hashes, oversized payloads, UTF-8 garbage and HTML in names and
 * texts, kind confusion, hostile JSON uplinks, non-byte payloads.
 *
 * What must hold: the codec never throws and always returns a typed result; the pipeline never
 * throws, reports no codec error, acknowledges every message exactly once, and accounts for every
 * message with its own counters: written + dropped + failed-and-not-kept = received (checked
 * against the store and the drop/flush events too).
 *
 * Scale with HOSTILE_FUZZ_SCALE (1 = the full million; 0.1 for a quick local run).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createCodec,
  createIngest,
  createMemoryStore,
  type DecodeResult,
  encodeEnvelope,
  type IngestOptions,
  type MeshtasticCodec,
} from '@meshtap/core'
import { DECODE_ERROR_CODES, type RawMessage, type Store, type WriteBatch } from '@meshtap/protocol'
import { createSqliteStore } from '@meshtap/sqlite-store'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { accountingOf, createArraySource, ledgerOf } from '../lib/hostile-accounting.js'
import {
  createMutator,
  createRng,
  type HostileClass,
  loadVectorMessages,
  NASTY_STRINGS,
  simulatorMessages,
} from '../lib/hostile-inputs.js'
import { createResultList } from '../lib/report.js'

const SCALE = Number(process.env.HOSTILE_FUZZ_SCALE ?? 1)
const FC_RUNS = Math.round(60_000 * SCALE)
const CODEC_MUTATED = Math.round(640_000 * SCALE)
const PIPELINE_RUNS = 16
const PIPELINE_PER_RUN = Math.round(25_000 * SCALE)
const PIPELINE_TOTAL = PIPELINE_RUNS * PIPELINE_PER_RUN
const TOTAL = FC_RUNS + CODEC_MUTATED + PIPELINE_TOTAL

const CHANNELS = [
  { name: 'LongFast', psk: 'AQ==' },
  { name: 'Private', psk: 'q2J5c2VjcmV0a2V5MTIzNA==' },
]
const codes = new Set<string>(DECODE_ERROR_CODES)
const vectors = loadVectorMessages() ?? []
const sim = simulatorMessages(12_000)
const pool: RawMessage[] = [...vectors, ...sim]

/** Rows for the report, printed at the end. */
const report = createResultList(`hostile fuzz (${TOTAL.toLocaleString('en')} inputs)`)
afterAll(() => report.print())

/** Why a decode result is not a well-formed, serialisable typed result (or undefined if fine). */
function badResult(r: DecodeResult, deep: boolean): string | undefined {
  if (r === null || typeof r !== 'object' || typeof r.ok !== 'boolean') return 'not a Result'
  if (!r.ok) {
    const e = r.error?.error
    if (!e || !codes.has(e.code)) return `unknown error code ${String(e?.code)}`
    if (typeof e.message !== 'string' || e.message.length === 0) return 'no error message'
    if (typeof r.error.packet !== 'object') return 'failure without its packet'
  } else {
    const p = r.value
    if (p.from !== p.from >>> 0 || p.id !== p.id >>> 0) return 'from/id not uint32'
    if (typeof p.app !== 'object' || p.app === null) return 'no app payload'
  }
  if (deep) {
    let json: string
    try {
      json = JSON.stringify(r)
    } catch (e) {
      return `not serialisable: ${String(e)}`
    }
    if (!(json as unknown as { isWellFormed(): boolean }).isWellFormed())
      return 'strings with lone surrogates'
  }
  return undefined
}

interface CodecFailure {
  cls: string
  problem: string
  topic: unknown
  payloadHex: string
}

function tryDecode(
  codec: MeshtasticCodec,
  m: RawMessage,
  cls: string,
  deep: boolean,
  failures: CodecFailure[],
): DecodeResult | undefined {
  let r: DecodeResult
  try {
    r = codec.decode(m)
  } catch (e) {
    failures.push({
      cls,
      problem: `threw ${String(e)}`,
      topic: m.topic,
      payloadHex: m.payload instanceof Uint8Array ? Buffer.from(m.payload).toString('hex') : '',
    })
    return undefined
  }
  const bad = badResult(r, deep)
  if (bad) {
    failures.push({
      cls,
      problem: bad,
      topic: m.topic,
      payloadHex:
        m.payload instanceof Uint8Array
          ? Buffer.from(m.payload.subarray(0, 64)).toString('hex')
          : '',
    })
  }
  return r
}

// ---- fast-check arbitraries ---------------------------------------------------------------------

const topicArb = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc
    .array(
      fc.oneof(
        fc.constantFrom('msh', 'US', '2', 'e', 'c', 'map', 'json', 'LongFast', 'PKI', '#', '+', ''),
        fc.string({ unit: 'grapheme', maxLength: 12 }),
        fc.nat(0xffffffff).map((n) => `!${n.toString(16).padStart(8, '0')}`),
      ),
      { minLength: 1, maxLength: 8 },
    )
    .map((parts) => parts.join('/')),
)

/** Bytes shaped like protobuf: a run of fields with random numbers, wire types and contents. */
const protobufish = fc
  .array(
    fc.record({
      no: fc.integer({ min: 1, max: 20 }),
      wire: fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7),
      body: fc.uint8Array({ maxLength: 48 }),
      lie: fc.integer({ min: -3, max: 3 }),
    }),
    { maxLength: 10 },
  )
  .map((fields) => {
    const out: number[] = []
    for (const f of fields) {
      out.push((f.no << 3) | f.wire)
      if (f.wire === 2) out.push(Math.max(0, f.body.length + f.lie) & 0x7f)
      out.push(...f.body)
    }
    return Uint8Array.from(out)
  })

const utf8Garbage = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom(...NASTY_STRINGS),
  fc.uint8Array({ maxLength: 60 }),
)
const nameBytes = (v: string | Uint8Array) =>
  typeof v === 'string' ? new TextEncoder().encode(v) : v

/** Whole envelopes with random header fields, ports, channel hashes and garbage payloads. */
const envelopeArb = fc
  .record({
    from: fc.nat(0xffffffff),
    to: fc.oneof(fc.constant(0xffffffff), fc.nat(0xffffffff)),
    id: fc.nat(0xffffffff),
    portnum: fc.oneof(fc.constantFrom(1, 3, 4, 67, 70, 71, 73), fc.nat(1024)),
    body: fc.oneof(fc.uint8Array({ maxLength: 120 }), protobufish, utf8Garbage.map(nameBytes)),
    encrypt: fc.boolean(),
    channelField: fc.option(fc.nat(255), { nil: undefined }),
    channelId: fc.oneof(
      fc.constantFrom('LongFast', 'Private', 'PKI'),
      fc.string({ maxLength: 20 }),
    ),
    hopStart: fc.nat(15),
    hopLimit: fc.nat(15),
    pki: fc.boolean(),
  })
  .map((e) => {
    const gatewayId = `!${(e.from ^ 0x5a5a5a5a).toString(16).padStart(8, '0')}`
    const payload = encodeEnvelope({
      from: e.from,
      to: e.to,
      id: e.id,
      portnum: e.portnum,
      payload: e.body,
      encrypt: e.encrypt,
      ...(e.channelField !== undefined ? { channelField: e.channelField } : {}),
      channelId: e.channelId,
      gatewayId,
      hopStart: e.hopStart,
      hopLimit: e.hopLimit,
      pkiEncrypted: e.pki,
    })
    return { topic: `msh/US/2/e/${e.channelId}/${gatewayId}`, payload } as RawMessage
  })

const messageArb = fc.oneof(
  { weight: 3, arbitrary: envelopeArb },
  {
    weight: 3,
    arbitrary: fc
      .record({
        topic: topicArb,
        payload: fc.oneof(fc.uint8Array({ maxLength: 400 }), protobufish),
        kind: fc.option(
          fc.constantFrom('envelope', 'mapreport', 'meshpacket', 'json-uplink', 'data'),
          { nil: undefined },
        ),
      })
      .map(({ topic, payload, kind }) => {
        // A null topic breaks the type on purpose: JavaScript sources can pass one.
        const m = { topic: topic ?? null, payload } as unknown as RawMessage
        if (kind !== undefined) m.kind = kind as RawMessage['kind']
        return m
      }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      topic: fc.constant('msh/US/2/json/LongFast/!abcdef01'),
      payload: fc
        .oneof(
          fc.json({ maxDepth: 4 }),
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc
            .record({
              type: fc.constantFrom('text', 'nodeinfo', 'position', 'telemetry', 'bogus'),
              from: fc.oneof(fc.nat(0xffffffff), fc.double(), fc.string()),
              payload: fc.oneof(
                fc.object({ maxDepth: 2 }),
                utf8Garbage.filter((x) => typeof x === 'string'),
              ),
            })
            .map((o) => JSON.stringify(o)),
        )
        .map((s) => new TextEncoder().encode(s)),
    }),
  },
)

describe('hostile input: fuzz', () => {
  it(`codec: ${FC_RUNS.toLocaleString('en')} fast-check inputs never throw and always give a typed result`, () => {
    const codec = createCodec({ keys: CHANNELS })
    const failures: CodecFailure[] = []
    let n = 0
    const started = performance.now()
    fc.assert(
      fc.property(messageArb, (m) => {
        n++
        tryDecode(codec, m, 'fast-check', true, failures)
        return failures.length === 0
      }),
      { numRuns: FC_RUNS, seed: 0x5eed, endOnFailure: true },
    )
    const s = (performance.now() - started) / 1000
    report.add({
      input: 'codec, fast-check',
      result: `${n} inputs in ${s.toFixed(1)} s, ${failures.length} failures`,
    })
    expect(failures.slice(0, 5)).toEqual([])
    expect(n).toBe(FC_RUNS)
  })

  it(`codec: ${CODEC_MUTATED.toLocaleString('en')} mutated real envelopes never throw and always give a typed result`, () => {
    expect(pool.length).toBeGreaterThan(1000)
    const codec = createCodec({ keys: CHANNELS })
    const mutator = createMutator(pool, 0xc0dec)
    const failures: CodecFailure[] = []
    const outcomes = new Map<string, Map<string, number>>()
    let slowest = { ms: 0, cls: '' }
    const started = performance.now()
    for (let i = 0; i < CODEC_MUTATED; i++) {
      const { cls, message } = mutator.next()
      const deep = cls === 'utf8-garbage' || cls === 'json-garbage' || (i & 15) === 0
      const t0 = performance.now()
      const r = tryDecode(codec, message, cls, deep, failures)
      const ms = performance.now() - t0
      if (ms > slowest.ms) slowest = { ms, cls }
      const outcome = r === undefined ? 'THREW' : r.ok ? 'ok' : r.error.error.code
      const byOutcome = outcomes.get(cls) ?? new Map<string, number>()
      outcomes.set(cls, byOutcome)
      byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1)
      if (failures.length > 20) break
    }
    const s = (performance.now() - started) / 1000
    report.add({
      input: `codec, mutated real envelopes (${vectors.length} captured vectors + ${sim.length} simulated)`,
      result: `${CODEC_MUTATED} inputs in ${s.toFixed(1)} s, ${failures.length} failures, slowest input ${slowest.ms.toFixed(1)} ms (${slowest.cls})`,
    })
    for (const [cls, byOutcome] of [...outcomes].sort()) {
      const parts = [...byOutcome].sort((a, b) => b[1] - a[1]).map(([o, k]) => `${o} ${k}`)
      report.add({ input: `codec, mutated: ${cls}`, result: parts.join(', ') })
    }
    expect(failures.slice(0, 5)).toEqual([])
    // Every class was produced, and the garbage names and texts were mostly still decoded.
    for (const [cls, count] of Object.entries(mutator.counts)) {
      expect(count, cls).toBeGreaterThan(0)
    }
    expect(outcomes.get('utf8-garbage')?.get('ok') ?? 0).toBeGreaterThan(
      (mutator.counts['utf8-garbage'] as number) / 3,
    )
  })

  it(`pipeline: ${PIPELINE_TOTAL.toLocaleString('en')} mixed real and hostile messages in ${PIPELINE_RUNS} runs, every one accounted for`, async () => {
    const started = performance.now()
    const dir = mkdtempSync(join(tmpdir(), 'meshtap-hostile-'))
    try {
      for (let run = 0; run < PIPELINE_RUNS; run++) {
        // Four stores in turn, then two that take several batches at once (writeConcurrency).
        const variant = run < 12 ? run % 4 : 4 + (run % 2)
        const rng = createRng(1000 + run)
        const mutator = createMutator(pool, 77 + run)
        // Half real traffic (with its gateway copies, so duplicates), half hostile, interleaved.
        const offset = rng.int(sim.length)
        const messages: RawMessage[] = []
        const classes: HostileClass[] = []
        for (let i = 0; i < PIPELINE_PER_RUN; i++) {
          if (rng.next() < 0.5) {
            messages.push(sim[(offset + i) % sim.length] as RawMessage)
          } else {
            const h = mutator.next()
            messages.push(h.message)
            classes.push(h.cls)
          }
        }
        let store: Store
        let name: string
        const options: Partial<IngestOptions> = {}
        const memory = createMemoryStore()
        if (variant === 0) {
          store = memory
          name = 'memory store, default rate limit'
        } else if (variant === 1) {
          // A slow store and a small queue: the queue sheds by priority.
          store = slowStore(memory)
          options.queueCapacity = 300
          options.rateLimit = false
          options.batch = { maxRecords: 100, maxDelayMs: 5 }
          name = 'slow store, queue of 300 (shedding)'
        } else if (variant === 2) {
          // A store that refuses some packets for good: only their records are dropped
          // (store-failed), the rest of each batch is stored.
          store = flakyStore(memory, 50)
          options.batch = { maxRecords: 200, maxAttempts: 2, retryInitialDelayMs: 1 }
          name = 'store refusing 1 packet in 50 for good, maxAttempts 2'
        } else if (variant === 3) {
          store = createSqliteStore({ path: join(dir, `run-${run}.db`) })
          name = 'SQLite store, rate limit 1/s burst 5'
          options.rateLimit = { ratePerSecond: 1, burst: 5 }
        } else if (variant === 4) {
          // Two batches in the store's hands at once, one packet in 50 refused for good: the
          // failed batches are split and retried after the batches handed over behind them.
          store = overlapping(flakyStore(slowStore(memory), 50))
          options.rateLimit = false
          options.batch = { maxRecords: 100, maxDelayMs: 5, maxAttempts: 2, retryInitialDelayMs: 1 }
          name = 'slow store taking 2 batches at once, refusing 1 packet in 50 for good'
        } else {
          store = overlapping(
            createSqliteStore({ path: join(dir, `run-${run}.db`), writerThread: true }),
          )
          options.rateLimit = false
          options.batch = { maxRecords: 200, maxDelayMs: 5 }
          name = 'SQLite store on a writer thread (2 batches at once)'
        }
        const ingest = createIngest({ store, keys: CHANNELS, closeStore: false, ...options })
        const ledger = ledgerOf(ingest)
        // Stores taking two batches at once get larger chunks between yields: each chunk then
        // holds several batches, so two are ready for the store however fast it commits.
        const source = createArraySource(messages, { yieldEvery: variant >= 4 ? 2048 : 512 })
        await ingest.start()
        await source.start((m, ack) => ingest.push(m, ack))
        await source.done
        await ingest.stop()
        ledger.off()
        const metrics = ingest.metrics()
        const a = accountingOf(metrics)
        const c = metrics.counters
        const acks = source.ackProblems()
        const stored = (await store.counts()).receptions
        await store.close?.()
        report.add({
          input: `pipeline run ${run + 1} (${name})`,
          result: `received ${a.received} = written ${a.written} + dropped ${a.dropped}${reasonsOf(c.droppedByReason)} + repeats ${a.repeats} + failed-not-kept ${a.failedNotKept}; duplicates ${c.duplicates}; thrown ${source.thrown.length}; unacked ${acks.unacked}; errors ${ledger.errors.length}`,
        })
        const context = `run ${run + 1} (${name})`
        expect(source.thrown, context).toEqual([])
        expect(a.received, context).toBe(messages.length)
        expect(a.accounted, context).toBe(a.received)
        expect(acks, context).toEqual({ unacked: 0, ackedTwice: 0 })
        // The counters agree with the events and the store.
        expect(ledger.dropped, context).toBe(c.dropped)
        expect(ledger.decodeFailed, context).toBe(a.failedNotKept)
        expect(ledger.flushedReceptions, context).toBe(c.written)
        expect(metrics.gauges.queueDepth, context).toBe(0)
        // The store keeps one reception per packet and gateway (a mutated copy may repeat one).
        expect(stored, context).toBeLessThanOrEqual(c.written)
        // (SQLite loses whole batches to one poisoned record: see hostile-store-poison.test.ts.)
        if (variant !== 3) expect(stored, context).toBeGreaterThan(0)
        // The codec never threw (that is reported as an error event); store failures were expected.
        expect(
          ledger.errors.filter((e) => !e.includes('writing a batch')),
          context,
        ).toEqual([])
        if (variant === 1) expect(c.droppedByReason['queue-full'], context).toBeGreaterThan(0)
        if (variant === 2) expect(c.droppedByReason['store-failed'], context).toBeGreaterThan(0)
        if (variant === 3) expect(c.droppedByReason['rate-limited'], context).toBeGreaterThan(0)
        if (variant === 4) expect(c.droppedByReason['store-failed'], context).toBeGreaterThan(0)
        if (variant >= 4) expect(mostAtOnce.get(store), context).toBe(2)
        expect(classes.length, context).toBeGreaterThan(PIPELINE_PER_RUN / 3)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    report.add({
      input: 'pipeline total',
      result: `${PIPELINE_TOTAL} messages in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    })
  }, 180_000)
})

/** ` (queue-full 3, store-failed 1)`: the reasons of the drops, if any. */
function reasonsOf(byReason: Record<string, number>): string {
  const parts = Object.entries(byReason)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v}`)
  return parts.length > 0 ? ` (${parts.join(', ')})` : ''
}

/** The most `writeBatch` calls each {@link overlapping} store had at once. */
const mostAtOnce = new WeakMap<Store, number>()

/**
 * `inner` declaring `writeConcurrency: 2` (it commits in call order: the memory store commits when
 * called, the threaded SQLite store posts to its thread in order), counting the calls at once.
 */
function overlapping(inner: Store): Store {
  let now = 0
  const store: Store = {
    getPacket: (key) => inner.getPacket(key),
    getReceptions: (key) => inner.getReceptions(key),
    counts: () => inner.counts(),
    close: async () => inner.close?.(),
    name: inner.name,
    writeConcurrency: 2,
    async writeBatch(batch: WriteBatch) {
      now++
      mostAtOnce.set(store, Math.max(mostAtOnce.get(store) ?? 0, now))
      try {
        await inner.writeBatch(batch)
      } finally {
        now--
      }
    },
  }
  if (inner.init) store.init = () => (inner.init as () => Promise<void>)()
  return store
}

/** The memory store behind a writer that waits 2 ms for every batch (like slow async I/O). */
function slowStore(inner: Store): Store {
  const { writeBatchSync: _sync, ...rest } = inner
  return {
    ...rest,
    name: 'slow',
    async writeBatch(batch: WriteBatch) {
      await new Promise<void>((r) => setTimeout(r, 2))
      await inner.writeBatch(batch)
    },
  }
}

/** The memory store behind a writer that fails every `every`-th batch for good (not transient). */
function flakyStore(inner: Store, every: number): Store {
  const { writeBatchSync: _sync, ...rest } = inner
  // About one packet in `every`, by a hash of its key, is refused for good: every batch holding
  // one of its records fails (the ingest splits the batch until only those records are dropped).
  const poisoned = (key: string) => {
    let h = 0
    for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0
    return (h >>> 0) % every === 0
  }
  return {
    ...rest,
    name: 'flaky',
    async writeBatch(batch: WriteBatch) {
      if (batch.receptions.some((r) => poisoned(r.packetKey))) {
        throw new Error('injected write failure')
      }
      await inner.writeBatch(batch)
    },
  }
}
