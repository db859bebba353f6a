/**
 * The processes of the ingest benchmark (started by `bench/ingest.bench.ts` through
 * {@link startChild}, one role per process, driven over the IPC channel):
 * - `publish`: publishes pre-generated envelopes to a broker, flat out or paced;
 * - `subscribe`: a subscriber, either the meshtap pipeline (`createMqttSource` → `createIngest` →
 *   memory store) or a bare mqtt.js client that only counts;
 * - `replay`: a capture file through `createReplaySource`, into the pipeline or into a counter.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { Session } from 'node:inspector'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  createIngest,
  createMemoryStore,
  createReplaySource,
  type MemoryStore,
  type MetricsSnapshot,
} from '@meshtap/core'
import { createMqttSource } from '@meshtap/core/mqtt'
import type { Ack, MessageHandler, RawMessage, Source } from '@meshtap/protocol'
import { createSqliteStore, type SqliteStore } from '@meshtap/sqlite-store'
import mqtt, { type MqttClient } from 'mqtt'
import { type CpuProfile, type ProfileSummary, summarizeCpuProfile } from './cpu-profile.js'
import { readBinFixture } from './ingest-fixture.js'
import { wallNow } from './processes.js'

// ---------------------------------------------------------------------------------------------
// Messages

export interface PublishJob {
  cmd: 'publish'
  url: string
  /** Prepended to the fixture's topics. */
  root: string
  fixture: string
  count: number
  /** Envelopes per second; 0 = as fast as the broker accepts. */
  rate: number
}

export interface SubscribeJob {
  cmd: 'subscribe'
  kind: 'meshtap' | 'bare'
  url: string
  topic: string
  /** meshtap only: time each message from receipt to commit (its ack). */
  latency: boolean
  /**
   * meshtap only: where the pipeline writes. `sqlite`: `createSqliteStore({ path })` on a file in a
   * fresh temp dir, with ingest batches of 5,000 records. @default 'memory'
   */
  store?: 'memory' | 'sqlite'
  /**
   * meshtap only: a file of packet keys, one a line; the receptions stored under each are sent back
   * as `packetKey|gatewayId`.
   */
  keysFile?: string
}

export interface ReplayJob {
  cmd: 'replay'
  kind: 'meshtap' | 'count'
  file: string
  /** As in {@link SubscribeJob}. */
  keysFile?: string
  /** Take a V8 CPU profile of the replay (start to everything committed) and summarise it. */
  profile: boolean
}

export type ChildIn =
  | PublishJob
  | SubscribeJob
  | ReplayJob
  /** To a subscriber: the publisher is done, `published` envelopes went out. */
  | { cmd: 'publisherDone'; published: number }
  | { cmd: 'exit' }

/** What a meshtap pipeline ended with. */
export interface PipelineOutcome {
  metrics: MetricsSnapshot
  store: { packets: number; receptions: number; undecoded: number }
  /** Map-report packets (key `from:0:bucket`) and their receptions in the store. */
  mapReports: { packets: number; receptions: number }
  /** Stored receptions whose packet (decoded or undecoded) is not in the store. */
  orphanReceptions: number
  /** `packetKey|gatewayId` of every reception stored under the keys of `keysFile`. */
  receptions?: string[]
  /** Keys of `keysFile` with receptions but no stored packet. */
  orphanKeys?: number
  errors: string[]
  /** From the first arrival until everything was committed and the store closed, ms. */
  untilCommittedMs: number
  /** SQLite store only: what the file holds beyond `counts()`. */
  sqlite?: {
    /** Rows of `packets` (decoded, undecodable and placeholders for receptions without packet). */
    packetRows: number
    /** Distinct packets among the `undecoded` rows (`counts().undecoded` counts one row a copy). */
    undecodedPackets: number
    /** Size of the database file and its WAL after `ingest.stop()`, bytes. */
    fileBytes: number
  }
}

export interface Latency {
  /** Receipt → commit of every committed message, ms, in arrival order. */
  ms: number[]
  /** Messages acknowledged because they were dropped (not committed). */
  dropped: number
  /** Messages never acknowledged. */
  unacked: number
}

export type ChildOut =
  | { type: 'started'; pid: number }
  | {
      type: 'published'
      published: number
      startAt: number
      endAt: number
      cpuMs: number
      error?: string
    }
  | { type: 'ready' }
  | {
      type: 'subscribed'
      received: number
      firstAt: number
      lastAt: number
      cpuMs: number
      stall: LoopStall
      pipeline?: PipelineOutcome
      latency?: Latency
    }
  | {
      type: 'replayed'
      delivered: number
      invalid: number
      startAt: number
      endAt: number
      cpuMs: number
      pipeline?: PipelineOutcome
      profile?: ProfileSummary
    }
  | { type: 'failed'; error: string }

function send(m: ChildOut): void {
  process.send?.(m)
}

const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000

// ---------------------------------------------------------------------------------------------
// Publisher

let fixtureCache:
  | { file: string; size: number; data: ReturnType<typeof readBinFixture> }
  | undefined

function connectClient(url: string, prefix: string): Promise<MqttClient> {
  const client = mqtt.connect(url, {
    clientId: `${prefix}-${randomBytes(4).toString('hex')}`,
    clean: true,
    reconnectPeriod: 0,
    protocolVersion: 4,
    connectTimeout: 10_000,
  })
  return new Promise((ok, fail) => {
    client.once('connect', () => ok(client))
    client.once('error', (e) => {
      client.end(true)
      fail(e)
    })
  })
}

function endClient(client: MqttClient): Promise<void> {
  return new Promise((ok) => {
    const timer = setTimeout(() => {
      client.end(true)
      ok()
    }, 2000)
    client.end(false, {}, () => {
      clearTimeout(timer)
      ok()
    })
  })
}

async function publish(job: PublishJob): Promise<ChildOut> {
  const { statSync } = await import('node:fs')
  const size = statSync(job.fixture).size
  if (!fixtureCache || fixtureCache.file !== job.fixture || fixtureCache.size !== size) {
    fixtureCache = { file: job.fixture, size, data: readBinFixture(job.fixture) }
  }
  const { topics, payloads } = fixtureCache.data
  const count = Math.min(job.count, topics.length)
  const full = topics.map((t) => job.root + t)
  const client = await connectClient(job.url, 'meshtap-bench-pub')
  // Like `meshtap simulate`: at most 500 QoS 0 publishes waiting for the socket.
  const maxInflight = 500
  let inflight = 0
  let error: Error | undefined
  let wake: (() => void) | undefined
  const release = () => {
    const w = wake
    wake = undefined
    w?.()
  }
  const waitBelow = (limit: number) =>
    new Promise<void>((ok) => {
      wake = ok
      if (inflight < limit || error) release()
    })
  const done = (e?: Error) => {
    inflight--
    if (e && !error) error = e
    release()
  }
  const cpu0 = process.cpuUsage()
  const startAt = wallNow()
  let i = 0
  for (; i < count && !error; i++) {
    if (job.rate > 0) {
      const wait = startAt + (i * 1000) / job.rate - wallNow()
      if (wait >= 1) await sleep(wait)
    } else if ((i & 1023) === 1023) {
      await new Promise<void>((ok) => setImmediate(ok))
    }
    if (inflight >= maxInflight) await waitBelow(maxInflight)
    inflight++
    client.publish(full[i]!, payloads[i]!, { qos: 0 }, done)
  }
  while (inflight > 0 && !error) await waitBelow(1)
  const endAt = wallNow()
  const cpu = cpuMs(process.cpuUsage(cpu0))
  await endClient(client)
  return {
    type: 'published',
    published: i,
    startAt,
    endAt,
    cpuMs: cpu,
    ...(error ? { error: error.message } : {}),
  }
}

// ---------------------------------------------------------------------------------------------
// Subscribers

/** How long the event loop went without running timers while messages arrived. */
export interface LoopStall {
  /** Longest gap between two ticks of a 20 ms interval timer, ms. */
  maxGapMs: number
  /** Most messages delivered between two ticks. */
  maxMessages: number
}

/** Counts arrivals (and, with `latency`, times each message until its ack) around a source. */
class Counter {
  received = 0
  firstAt = 0
  lastAt = 0
  recvAt: number[] = []
  commitAt: number[] = []
  droppedAt = new Set<number>()
  /**
   * Acks still to come from drops: the pipeline emits `drop` and then calls the dropped messages'
   * acks at once, so the next acks after a drop event are those (not commits).
   */
  dropAcksPending = 0
  readonly stall: LoopStall = { maxGapMs: 0, maxMessages: 0 }
  #timer: ReturnType<typeof setInterval> | undefined

  /** Watches the event loop: a timer that cannot run means nothing else scheduled can either. */
  watchLoop(): void {
    let last = performance.now()
    let seen = this.received
    this.#timer = setInterval(() => {
      const now = performance.now()
      const n = this.received - seen
      if (n > 0) {
        this.stall.maxGapMs = Math.max(this.stall.maxGapMs, now - last)
        this.stall.maxMessages = Math.max(this.stall.maxMessages, n)
      }
      last = now
      seen = this.received
    }, 20)
  }

  unwatchLoop(): void {
    clearInterval(this.#timer)
  }

  arrive(): number {
    const t = wallNow()
    if (this.received === 0) this.firstAt = t
    this.lastAt = t
    return this.received++
  }

  wrap(source: Source, latency: boolean): Source {
    const wrapped: Source = {
      name: source.name,
      start: (handler: MessageHandler) =>
        source.start((message: RawMessage, ack: Ack) => {
          const i = this.arrive()
          if (!latency) return handler(message, ack)
          this.recvAt[i] = this.lastAt
          return handler(message, () => {
            if (this.dropAcksPending > 0) {
              this.dropAcksPending--
              this.droppedAt.add(i)
            } else {
              this.commitAt[i] = wallNow()
            }
            ack()
          })
        }),
      stop: () => source.stop(),
    }
    if (source.onStatus) wrapped.onStatus = source.onStatus.bind(source)
    return wrapped
  }

  latency(): Latency {
    const ms: number[] = []
    let unacked = 0
    for (let i = 0; i < this.received; i++) {
      const c = this.commitAt[i]
      if (c !== undefined) ms.push(c - this.recvAt[i]!)
      else if (!this.droppedAt.has(i)) unacked++
    }
    return { ms, dropped: this.droppedAt.size, unacked }
  }
}

async function pipelineOutcome(
  store: MemoryStore,
  metrics: MetricsSnapshot,
  errors: string[],
  keysFile: string | undefined,
  firstAt: number,
): Promise<PipelineOutcome> {
  const untilCommittedMs = wallNow() - firstAt
  const counts = await store.counts()
  const mapReports = { packets: 0, receptions: 0 }
  const keys = new Set<string>(store.packets.keys())
  for (const u of store.undecoded) keys.add(u.key)
  let attached = 0
  for (const key of keys) {
    const n = (await store.getReceptions(key)).length
    attached += n
    if (key.includes(':0:')) {
      mapReports.packets++
      mapReports.receptions += n
    }
  }
  const out: PipelineOutcome = {
    metrics,
    store: counts,
    mapReports,
    orphanReceptions: counts.receptions - attached,
    errors,
    untilCommittedMs,
  }
  if (keysFile !== undefined) {
    const receptions: string[] = []
    let orphanKeys = 0
    for (const key of readFileSync(keysFile, 'utf8').split('\n')) {
      if (key === '') continue
      const list = await store.getReceptions(key)
      if (list.length > 0 && !keys.has(key)) orphanKeys++
      for (const r of list) receptions.push(`${key}|${r.gatewayId ?? ''}`)
    }
    out.receptions = receptions
    out.orphanKeys = orphanKeys
  }
  return out
}

/** {@link pipelineOutcome} for the SQLite store, from its public reads and its file. */
async function sqliteOutcome(
  store: SqliteStore,
  path: string,
  metrics: MetricsSnapshot,
  errors: string[],
  keysFile: string | undefined,
  firstAt: number,
): Promise<PipelineOutcome> {
  const untilCommittedMs = wallNow() - firstAt
  const counts = await store.counts()
  const db = store.database
  const n = (sql: string) => (db.prepare(sql).get() as { n: number | null }).n ?? 0
  const stored =
    'p.portnum IS NOT NULL OR EXISTS (SELECT 1 FROM undecoded u WHERE u.packet_ref = p.id)'
  const mapReports = {
    packets: n(`SELECT count(*) AS n FROM packets p WHERE p.key LIKE '%:0:%' AND (${stored})`),
    receptions: n(
      `SELECT count(*) AS n FROM receptions r JOIN packets p ON p.id = r.packet_ref WHERE p.key LIKE '%:0:%'`,
    ),
  }
  const orphanReceptions = n(
    `SELECT count(*) AS n FROM receptions r JOIN packets p ON p.id = r.packet_ref WHERE NOT (${stored})`,
  )
  let fileBytes = 0
  for (const f of [path, `${path}-wal`]) {
    try {
      fileBytes += statSync(f).size
    } catch {
      // no WAL
    }
  }
  const out: PipelineOutcome = {
    metrics,
    store: counts,
    mapReports,
    orphanReceptions,
    errors,
    untilCommittedMs,
    sqlite: {
      packetRows: n('SELECT count(*) AS n FROM packets'),
      undecodedPackets: n('SELECT count(DISTINCT packet_ref) AS n FROM undecoded'),
      fileBytes,
    },
  }
  if (keysFile !== undefined) {
    const keys = new Set(
      (
        db.prepare(`SELECT p.key AS key FROM packets p WHERE ${stored}`).all() as { key: string }[]
      ).map((r) => r.key),
    )
    const receptions: string[] = []
    let orphanKeys = 0
    for (const key of readFileSync(keysFile, 'utf8').split('\n')) {
      if (key === '') continue
      const list = await store.getReceptions(key)
      if (list.length > 0 && !keys.has(key)) orphanKeys++
      for (const r of list) receptions.push(`${key}|${r.gatewayId ?? ''}`)
    }
    out.receptions = receptions
    out.orphanKeys = orphanKeys
  }
  return out
}

/**
 * Waits until the publisher is done and either everything it published arrived or nothing
 * arrived for `quietMs` (the broker dropped the rest).
 */
async function waitForEnd(counter: Counter, publisherDone: Promise<number>, quietMs = 1500) {
  const published = await publisherDone
  for (;;) {
    if (counter.received >= published) return
    const idle = wallNow() - Math.max(counter.lastAt, 0)
    if (counter.received > 0 && idle >= quietMs) return
    if (counter.received === 0 && idle >= 10_000 + quietMs) return
    await sleep(50)
  }
}

let publisherDoneResolve: ((n: number) => void) | undefined

async function subscribe(job: SubscribeJob): Promise<ChildOut> {
  const counter = new Counter()
  const publisherDone = new Promise<number>((ok) => {
    publisherDoneResolve = ok
  })
  if (job.kind === 'bare') {
    const client = mqtt.connect(job.url, {
      clientId: `meshtap-bench-bare-${randomBytes(4).toString('hex')}`,
      clean: true,
      reconnectPeriod: 0,
      protocolVersion: 4,
      keepalive: 60,
    })
    client.on('message', () => {
      counter.arrive()
    })
    await new Promise<void>((ok, fail) => {
      client.once('connect', () => {
        client.subscribe(job.topic, { qos: 0 }, (err) => (err ? fail(err) : ok()))
      })
      client.once('error', fail)
    })
    const cpu0 = process.cpuUsage()
    counter.watchLoop()
    send({ type: 'ready' })
    await waitForEnd(counter, publisherDone)
    counter.unwatchLoop()
    const cpu = cpuMs(process.cpuUsage(cpu0))
    await endClient(client)
    return {
      type: 'subscribed',
      received: counter.received,
      firstAt: counter.firstAt,
      lastAt: counter.lastAt,
      cpuMs: cpu,
      stall: counter.stall,
    }
  }

  const source = createMqttSource({ brokers: [{ url: job.url, topics: [job.topic], qos: 0 }] })
  const connected = new Promise<void>((ok, fail) => {
    const off = source.onStatus((s) => {
      if (s.state === 'connected') {
        off()
        if (s.error) fail(new Error(s.error))
        else ok()
      }
    })
  })
  const sqlite = job.store === 'sqlite'
  const dir = sqlite ? mkdtempSync(join(tmpdir(), 'meshtap-ingest-bench-')) : undefined
  const path = dir === undefined ? '' : join(dir, 'meshtap.db')
  const memory = sqlite ? undefined : createMemoryStore()
  const file = sqlite
    ? createSqliteStore({ path, writerThread: process.env.INGEST_BENCH_WRITER_THREAD === '1' })
    : undefined
  const ingest = createIngest({
    sources: [counter.wrap(source, job.latency)],
    store: (file ?? memory)!,
    rateLimit: false,
    closeStore: false,
    // The SQLite store's author recommends batches of 5,000 records (fewer, larger transactions).
    ...(sqlite ? { batch: { maxRecords: 5000 } } : {}),
  })
  const errors: string[] = []
  ingest.on('error', (e) => {
    if (errors.length < 20) errors.push(e.message)
  })
  if (job.latency) {
    ingest.on('drop', (e) => {
      // Every drop but `stopped` acknowledges the dropped messages right after the event.
      if (e.reason !== 'stopped') counter.dropAcksPending += e.count
    })
  }
  await ingest.start()
  await connected
  const cpu0 = process.cpuUsage()
  counter.watchLoop()
  send({ type: 'ready' })
  await waitForEnd(counter, publisherDone)
  counter.unwatchLoop()
  await ingest.stop()
  const cpu = cpuMs(process.cpuUsage(cpu0))
  let pipeline: PipelineOutcome
  if (file) {
    try {
      pipeline = await sqliteOutcome(
        file,
        path,
        ingest.metrics(),
        errors,
        job.keysFile,
        counter.firstAt,
      )
    } finally {
      await file.close()
      rmSync(dir!, { recursive: true, force: true })
    }
  } else {
    pipeline = await pipelineOutcome(
      memory!,
      ingest.metrics(),
      errors,
      job.keysFile,
      counter.firstAt,
    )
  }
  return {
    type: 'subscribed',
    received: counter.received,
    firstAt: counter.firstAt,
    lastAt: counter.lastAt,
    cpuMs: cpu,
    stall: counter.stall,
    pipeline,
    ...(job.latency ? { latency: counter.latency() } : {}),
  }
}

// ---------------------------------------------------------------------------------------------
// Replay

/** Starts the V8 sampling profiler in this process; the returned function stops it. */
async function startProfiler(): Promise<() => Promise<CpuProfile>> {
  const session = new Session()
  session.connect()
  const post = <T>(method: string, params?: object) =>
    new Promise<T>((ok, fail) =>
      session.post(method, params ?? {}, (err, res) => (err ? fail(err) : ok(res as T))),
    )
  await post('Profiler.enable')
  await post('Profiler.setSamplingInterval', { interval: 200 })
  await post('Profiler.start')
  return async () => {
    const { profile } = await post<{ profile: CpuProfile }>('Profiler.stop')
    session.disconnect()
    return profile
  }
}

async function replay(job: ReplayJob): Promise<ChildOut> {
  const source = createReplaySource({ file: job.file, pace: 'max' })
  if (job.kind === 'count') {
    let n = 0
    const cpu0 = process.cpuUsage()
    const startAt = wallNow()
    await source.start((_m, ack) => {
      n++
      ack()
    })
    const stats = await source.done
    const endAt = wallNow()
    return {
      type: 'replayed',
      delivered: n === stats.delivered ? n : -1,
      invalid: stats.invalid,
      startAt,
      endAt,
      cpuMs: cpuMs(process.cpuUsage(cpu0)),
    }
  }
  const store = createMemoryStore()
  const ingest = createIngest({ sources: [source], store, rateLimit: false, closeStore: false })
  const errors: string[] = []
  ingest.on('error', (e) => {
    if (errors.length < 20) errors.push(e.message)
  })
  const stopProfiler = job.profile ? await startProfiler() : undefined
  const cpu0 = process.cpuUsage()
  const startAt = wallNow()
  await ingest.start()
  const stats = await source.done
  // Everything delivered is committed once stop() resolves (it drains and flushes).
  await ingest.stop()
  const endAt = wallNow()
  const cpu = cpuMs(process.cpuUsage(cpu0))
  const profile = stopProfiler ? summarizeCpuProfile(await stopProfiler(), 8) : undefined
  const pipeline = await pipelineOutcome(store, ingest.metrics(), errors, job.keysFile, startAt)
  return {
    type: 'replayed',
    delivered: stats.delivered,
    invalid: stats.invalid,
    startAt,
    endAt,
    cpuMs: cpu,
    pipeline,
    ...(profile ? { profile } : {}),
  }
}

// ---------------------------------------------------------------------------------------------

process.on('message', (m: ChildIn) => {
  const run = async (): Promise<ChildOut | undefined> => {
    switch (m.cmd) {
      case 'publish':
        return publish(m)
      case 'subscribe':
        return subscribe(m)
      case 'replay':
        return replay(m)
      case 'publisherDone':
        publisherDoneResolve?.(m.published)
        return undefined
      case 'exit':
        process.disconnect?.()
        setImmediate(() => process.exit(0))
        return undefined
    }
  }
  run().then(
    (out) => {
      if (out) send(out)
    },
    (e: unknown) => send({ type: 'failed', error: e instanceof Error ? e.message : String(e) }),
  )
})

send({ type: 'started', pid: process.pid })
