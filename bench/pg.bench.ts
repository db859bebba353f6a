import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { batches, type WorkloadRecord, workload } from '@meshtap/core/testing'
import { createPgStore, type PgPool } from '@meshtap/pg-store'
import type { StoredPacket, WriteBatch } from '@meshtap/protocol'
import { describeMachine, describeRevision, NOISY_THRESHOLD, waitForQuiet } from './lib/machine.js'
import { CpuSampler, startChild, wallNow } from './lib/processes.js'
import {
  type Benchmark,
  type BenchOptions,
  type BenchReport,
  type BusySummary,
  formatPercent,
  formatRange,
  formatRate,
  formatRatio,
  type Table,
} from './lib/report.js'
import { median, spread } from './lib/timing.js'

/**
 * `pnpm bench pg`: the write rate of `@meshtap/pg-store` per batch size against plain multi-row
 * INSERTs of the same rows, in the same run, on the PostgreSQL server the tests use.
 */

const PG_URL = process.env.MESHTAP_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const SIZES = [100, 1000, 10_000] as const

// `pg` is the store's peer dependency; the benchmark borrows the store package's copy.
const requirePg = createRequire(new URL('../packages/pg-store/package.json', import.meta.url))
const pg = requirePg('pg') as {
  Pool: new (options: {
    connectionString: string
    max: number
    application_name?: string
  }) => PgPool
}

const log = (s: string) => process.stderr.write(`pg: ${s}\n`)

async function reachable(): Promise<string | undefined> {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 })
  pool.on('error', () => undefined)
  try {
    const { rows } = await pool.query({ text: 'SHOW server_version' })
    return String((rows[0] as { server_version: string }).server_version)
  } catch {
    return undefined
  } finally {
    await pool.end().catch(() => undefined)
  }
}

/** Every `postgres` process (server, backends, WAL writer, checkpointer), for CPU accounting. */
function postgresPids(): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'postgres') out.push(Number(d))
    } catch {
      // Gone meanwhile.
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// The baseline: the same packets, receptions and undecoded copies, as plain multi-row INSERTs
// into one table each (primary keys only, `ON CONFLICT DO NOTHING` so the run is idempotent too),
// one transaction per batch, at most 1000 rows per statement.

const BASELINE_SCHEMA = (s: string) => `
CREATE TABLE ${s}.packets (key text PRIMARY KEY, from_num bigint, to_num bigint, packet_id bigint,
  portnum int, channel text, gateway text, received_at bigint, rx_time bigint, hops_away int, json text);
CREATE TABLE ${s}.receptions (packet_key text NOT NULL, gateway text NOT NULL, topic text, channel text,
  rx_time bigint, received_at bigint, rx_snr double precision, rx_rssi int, hop_limit int, hop_start int,
  relay_node int, hops_away int, class text, app text, PRIMARY KEY (packet_key, gateway));
CREATE TABLE ${s}.undecoded (key text NOT NULL, gateway text NOT NULL, received_at bigint,
  error_code text, ciphertext text, failure text, PRIMARY KEY (key, gateway));
`

const CHUNK = 1000

async function insertRows(
  client: Awaited<ReturnType<PgPool['connect']>>,
  table: string,
  columns: string[],
  rows: unknown[][],
): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK)
    const values: unknown[] = []
    const tuples = chunk.map((r) => {
      const start = values.length
      values.push(...r)
      return `(${r.map((_, j) => `$${start + j + 1}`).join(', ')})`
    })
    await client.query(
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT DO NOTHING`,
      values,
    )
  }
}

function baselineWriter(pool: PgPool, schema: string) {
  const s = `"${schema}"`
  return async (b: WriteBatch) => {
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      await insertRows(
        client,
        `${s}.packets`,
        [
          'key',
          'from_num',
          'to_num',
          'packet_id',
          'portnum',
          'channel',
          'gateway',
          'received_at',
          'rx_time',
          'hops_away',
          'json',
        ],
        b.packets.map((sp: StoredPacket) => {
          const p = sp.packet
          return [
            sp.key,
            p.from >>> 0,
            p.to >>> 0,
            p.id >>> 0,
            p.portnum,
            p.channelId ?? null,
            p.gatewayId ?? null,
            sp.receivedAt,
            p.rxTime,
            p.hopsAway ?? null,
            JSON.stringify(p),
          ]
        }),
      )
      await insertRows(
        client,
        `${s}.receptions`,
        [
          'packet_key',
          'gateway',
          'topic',
          'channel',
          'rx_time',
          'received_at',
          'rx_snr',
          'rx_rssi',
          'hop_limit',
          'hop_start',
          'relay_node',
          'hops_away',
          'class',
          'app',
        ],
        b.receptions.map((r) => [
          r.packetKey,
          r.gatewayId ?? '',
          r.topic ?? null,
          r.channelId ?? null,
          r.rxTime,
          r.receivedAt,
          r.rxSnr,
          r.rxRssi,
          r.hopLimit,
          r.hopStart,
          r.relayNode ?? null,
          r.hopsAway ?? null,
          r.receptionClass,
          r.app === undefined ? null : JSON.stringify(r.app),
        ]),
      )
      await insertRows(
        client,
        `${s}.undecoded`,
        ['key', 'gateway', 'received_at', 'error_code', 'ciphertext', 'failure'],
        b.undecoded.map((u) => {
          const { ciphertext, ...header } = u.failure.packet
          return [
            u.key,
            u.failure.packet.gatewayId ?? '',
            u.receivedAt,
            u.failure.error.code,
            ciphertext ?? null,
            JSON.stringify({ error: u.failure.error, packet: header }),
          ]
        }),
      )
      await client.query('COMMIT')
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw e
    } finally {
      client.release()
    }
  }
}

// ---------------------------------------------------------------------------------------------

type Kind = 'pg-store' | 'baseline'

interface Round {
  kind: Kind
  size: number
  receptions: number
  rows: number
  wallMs: number
  /** This process's CPU, as a share of one core. */
  clientCore: number
  /** Every postgres process's CPU, as a share of one core. */
  serverCore: number
  others: number | undefined
}

async function round(
  kind: Kind,
  size: number,
  all: WriteBatch[],
  sampler: CpuSampler,
  quietMs: number,
): Promise<Round> {
  const schema = `meshtap_bench_${Math.random().toString(36).slice(2, 10)}`
  const pool = new pg.Pool({ connectionString: PG_URL, max: 2, application_name: 'meshtap-bench' })
  pool.on('error', () => undefined)
  try {
    let write: (b: WriteBatch) => Promise<void>
    let close = async () => {}
    if (kind === 'pg-store') {
      const store = createPgStore({
        pool,
        schema,
        retention: false,
        now: () => all[0]?.receptions[0]?.receivedAt ?? Date.now(),
        partitionsAhead: 4,
      })
      await store.init()
      write = (b) => store.writeBatch(b)
      close = () => store.close()
    } else {
      await pool.query({ text: `CREATE SCHEMA "${schema}"; ${BASELINE_SCHEMA(`"${schema}"`)}` })
      write = baselineWriter(pool, schema)
    }
    // One connection warmed up (and its statements prepared) before timing.
    await pool.query({ text: 'SELECT 1' })
    if (quietMs > 0) await waitForQuiet(quietMs)
    for (const pid of postgresPids()) sampler.watch(pid)
    sampler.sample()
    const cpu0 = process.cpuUsage()
    const t0 = wallNow()
    let receptions = 0
    let rows = 0
    for (const b of all) {
      await write(b)
      receptions += b.receptions.length
      rows += b.receptions.length + b.packets.length + b.undecoded.length
    }
    const t1 = wallNow()
    sampler.sample()
    const cpu = process.cpuUsage(cpu0)
    const w = sampler.window(t0, t1)
    const wallMs = t1 - t0
    let serverCore = 0
    for (const [pid, c] of w?.cores ?? []) if (pid !== process.pid) serverCore += c
    await close()
    return {
      kind,
      size,
      receptions,
      rows,
      wallMs,
      clientCore: (cpu.user + cpu.system) / 1000 / wallMs,
      serverCore,
      others: w?.others,
    }
  } finally {
    await pool.query({ text: `DROP SCHEMA IF EXISTS "${schema}" CASCADE` }).catch(() => undefined)
    await pool.end().catch(() => undefined)
  }
}

/**
 * What two ingest workers on one shared subscription write: every copy goes to one of them at
 * random, and each stores a packet with the first copy it got (so packets whose copies were
 * split are written by both: the database's unique keys decide).
 */
function splitForWorkers(records: readonly WorkloadRecord[], size: number): WriteBatch[][] {
  let seed = 0x9e3779b9
  const rnd = () => {
    seed = (seed + 0x6d2b79f5) >>> 0
    let t = seed
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const streams: WorkloadRecord[][] = [[], []]
  for (const r of records) {
    const parts: WorkloadRecord[] = [
      { receptions: [], messages: [] },
      { receptions: [], messages: [] },
    ]
    for (const reception of r.receptions) {
      const w = rnd() < 0.5 ? 0 : 1
      const part = parts[w] as WorkloadRecord
      if (part.receptions.length === 0) {
        if (r.packet) part.packet = { ...r.packet, receivedAt: reception.receivedAt }
        if (r.undecoded) part.undecoded = { ...r.undecoded, receivedAt: reception.receivedAt }
      }
      part.receptions.push(reception)
    }
    parts.forEach((part, w) => {
      if (part.receptions.length > 0) (streams[w] as WorkloadRecord[]).push(part)
    })
  }
  return streams.map((list) => [...batches(list, size)])
}

interface WorkersRound {
  writers: number
  receptions: number
  wallMs: number
  /** Every writer process's CPU, as a share of one core. */
  clientCore: number
  serverCore: number
  others: number | undefined
  /** Batches retried after a transient error (a deadlock, say). */
  retries: number
}

/** Messages between the benchmark and a writer process. */
type WriterIn = { cmd: 'go' } | { cmd: 'exit' }
type WriterOut =
  | { type: 'ready' }
  | { type: 'done'; wallMs: number; retries: number }
  | { type: 'failed'; error: string }

const SELF = fileURLToPath(import.meta.url)

/** The records of a round: the same in every process (deterministic). */
function benchRecords(perRound: number): WorkloadRecord[] {
  return [
    ...workload({
      packets: Math.ceil(perRound / 2.2),
      nodes: 3000,
      gateways: 150,
      copies: 3,
      secretShare: 0.02,
      messages: false,
      seed: 7,
    }),
  ]
}

/**
 * A writer process (`pg.bench.ts --pg-writer <schema> <index> <writers> <perRound>`): a store on
 * its own pool writing its share of the records in batches of 1000 when told to, retrying
 * transient errors (deadlocks) as the ingest pipeline does.
 */
async function writerProcess(argv: string[]): Promise<void> {
  const [schema, index, writers, perRound] = argv
  const send = (m: WriterOut) => process.send?.(m)
  const inbox: WriterIn[] = []
  let wake: (() => void) | undefined
  process.on('message', (m) => {
    inbox.push(m as WriterIn)
    wake?.()
  })
  const next = async (): Promise<WriterIn> => {
    while (inbox.length === 0) await new Promise<void>((r) => (wake = r))
    return inbox.shift() as WriterIn
  }
  try {
    const records = benchRecords(Number(perRound))
    const n = Number(writers)
    const streams = n === 1 ? [[...batches(records, 1000)]] : splitForWorkers(records, 1000)
    const mine = streams[Number(index)] ?? []
    const pool = new pg.Pool({
      connectionString: PG_URL,
      max: 2,
      application_name: 'meshtap-bench',
    })
    pool.on('error', () => undefined)
    const start = records[0]?.receptions[0]?.receivedAt ?? Date.now()
    const store = createPgStore({
      pool,
      schema: schema as string,
      retention: false,
      now: () => start,
      partitionsAhead: 4,
    })
    await store.init()
    send({ type: 'ready' })
    await next()
    const t0 = wallNow()
    let retries = 0
    for (const b of mine) {
      for (;;) {
        try {
          await store.writeBatch(b)
          break
        } catch (e) {
          if (!(e as { transient?: boolean }).transient) throw e
          retries++
        }
      }
    }
    send({ type: 'done', wallMs: wallNow() - t0, retries })
    await next()
    await store.close()
    await pool.end()
  } catch (e) {
    send({ type: 'failed', error: e instanceof Error ? e.message : String(e) })
  }
  process.exit(0)
}

/** `writers` writer processes on one fresh schema, started together. */
async function workersRound(
  writers: number,
  perRound: number,
  sampler: CpuSampler,
  quietMs: number,
): Promise<WorkersRound> {
  const schema = `meshtap_bench_${Math.random().toString(36).slice(2, 10)}`
  const children = Array.from({ length: writers }, (_, i) =>
    startChild<WriterIn, WriterOut>(SELF, [
      '--pg-writer',
      schema,
      String(i),
      String(writers),
      String(perRound),
    ]),
  )
  const answer = async (c: (typeof children)[number], type: WriterOut['type']) => {
    const m = await c.next((x) => x.type === type || x.type === 'failed', 300_000)
    if (m.type === 'failed') throw new Error(m.error)
    return m
  }
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 })
  admin.on('error', () => undefined)
  try {
    // One after the other: the first creates the schema, the others find it.
    for (const c of children) await answer(c, 'ready')
    if (quietMs > 0) await waitForQuiet(quietMs)
    for (const c of children) sampler.watch(c.pid)
    for (const pid of postgresPids()) sampler.watch(pid)
    sampler.sample()
    const t0 = wallNow()
    for (const c of children) c.send({ cmd: 'go' })
    let retries = 0
    for (const c of children) {
      const done = await answer(c, 'done')
      if (done.type === 'done') retries += done.retries
    }
    const t1 = wallNow()
    sampler.sample()
    const w = sampler.window(t0, t1)
    const pids = new Set(children.map((c) => c.pid))
    let serverCore = 0
    let clientCore = 0
    for (const [pid, c] of w?.cores ?? []) {
      if (pids.has(pid)) clientCore += c
      else if (pid !== process.pid) serverCore += c
    }
    const { rows } = await admin.query({
      text: `SELECT count(*)::int AS n FROM "${schema}".receptions`,
    })
    return {
      writers,
      receptions: (rows[0] as { n: number }).n,
      wallMs: t1 - t0,
      clientCore,
      serverCore,
      others: w?.others,
      retries,
    }
  } finally {
    for (const c of children) await c.close({ cmd: 'exit' })
    await admin.query({ text: `DROP SCHEMA IF EXISTS "${schema}" CASCADE` }).catch(() => undefined)
    await admin.end().catch(() => undefined)
  }
}

function busySummary(others: readonly (number | undefined)[]): BusySummary | undefined {
  const v = others.filter((x): x is number => x !== undefined)
  if (v.length === 0) return undefined
  return {
    medianOthers: median(v),
    maxOthers: Math.max(...v),
    noisyRounds: v.filter((x) => x > NOISY_THRESHOLD).length,
    rounds: v.length,
  }
}

const rate = (r: Round) => (r.receptions * 1000) / r.wallMs

async function run(options: BenchOptions): Promise<BenchReport> {
  const quick = options.quick
  const machine = describeMachine()
  const version = await reachable()
  const base: Omit<BenchReport, 'what' | 'tables' | 'notes' | 'headline' | 'settings' | 'busy'> = {
    name: 'pg',
    title: 'PostgreSQL store write rate per batch size (`@meshtap/pg-store`)',
    machine,
    revision: describeRevision(),
    quick,
  }
  if (!version) {
    log(
      `PostgreSQL is not reachable at ${PG_URL}: skipping (set MESHTAP_PG_URL to point elsewhere)`,
    )
    return {
      ...base,
      what: [
        `**Skipped**: no PostgreSQL server answered at \`${PG_URL}\` on this machine. Start one (or set \`MESHTAP_PG_URL\`) and run \`pnpm bench pg\` again.`,
      ],
      busy: undefined,
      tables: [],
      notes: [],
      headline: `skipped: PostgreSQL not reachable at ${PG_URL}`,
      settings: 'skipped',
    }
  }
  const perRound = quick ? 5_000 : 40_000
  const rounds = quick ? 1 : 3
  // Every round writes the same records from the start.
  const records = benchRecords(perRound)
  const distinct = new Set(
    records.flatMap((r) => r.receptions.map((x) => `${x.packetKey}|${x.gatewayId}`)),
  ).size
  const totalReceptions = records.reduce((n, r) => n + r.receptions.length, 0)
  const packets = records.filter((r) => r.packet).length
  const undecoded = records.filter((r) => r.undecoded).length
  log(
    `PostgreSQL ${version}; ${records.length} logical packets (${packets} decoded, ${undecoded} undecoded), ${totalReceptions} receptions`,
  )
  const sampler = new CpuSampler(100)
  sampler.watch(process.pid)
  sampler.start()
  let quietNote: string | undefined
  if (!quick) {
    const q = await waitForQuiet(20_000)
    if (q.others !== undefined) {
      quietNote = `waited ${(q.waitedMs / 1000).toFixed(0)} s for a quiet machine before starting (others then at ${formatPercent(q.others)})`
    }
  }
  const results: Round[] = []
  const workerResults: WorkersRound[] = []
  const split = splitForWorkers(records, 1000)
  try {
    for (const size of SIZES) {
      const all = [...batches(records, size)]
      for (let r = 0; r < rounds; r++) {
        const order: Kind[] = r % 2 === 0 ? ['pg-store', 'baseline'] : ['baseline', 'pg-store']
        for (const kind of order) {
          const res = await round(kind, size, all, sampler, quick ? 0 : 3000)
          results.push(res)
          log(
            `batches of ${size}, round ${r + 1}/${rounds}, ${kind}: ${formatRate(rate(res))} receptions/s (${res.wallMs.toFixed(0)} ms, client ${pct(res.clientCore)}, server ${pct(res.serverCore)} of a core, others ${res.others === undefined ? '–' : formatPercent(res.others)})`,
          )
        }
      }
    }
    // Two writer processes at once (batches of 1000), against one with the same records.
    for (let r = 0; r < rounds; r++) {
      for (const writers of r % 2 === 0 ? [1, 2] : [2, 1]) {
        const res = await workersRound(writers, perRound, sampler, quick ? 0 : 3000)
        workerResults.push(res)
        log(
          `${writers} writer process(es), round ${r + 1}/${rounds}: ${formatRate((res.receptions * 1000) / res.wallMs)} receptions/s (${res.wallMs.toFixed(0)} ms, writers ${pct(res.clientCore)}, server ${pct(res.serverCore)} of a core, ${res.retries} retries)`,
        )
      }
    }
  } finally {
    sampler.stop()
  }

  const rows: string[][] = []
  const ratios: { size: number; ratio: number }[] = []
  for (const size of SIZES) {
    const ours = results.filter((x) => x.size === size && x.kind === 'pg-store')
    const theirs = results.filter((x) => x.size === size && x.kind === 'baseline')
    const o = spread(ours.map(rate))
    const b = spread(theirs.map(rate))
    const paired = spread(ours.map((x, i) => rate(x) / rate(theirs[i] as Round)))
    ratios.push({ size, ratio: o.median / b.median })
    const rowsPerSec = (list: Round[]) =>
      formatRate(median(list.map((x) => (x.rows * 1000) / x.wallMs)))
    const cpu = (list: Round[]) =>
      `${pct(median(list.map((x) => x.clientCore)))} / ${pct(median(list.map((x) => x.serverCore)))}`
    rows.push(
      [
        `${size.toLocaleString('en-US')}`,
        '`@meshtap/pg-store` `writeBatch`',
        `**${formatRate(o.median)}**`,
        formatRange(o),
        rowsPerSec(ours),
        cpu(ours),
        `**${formatRatio(o.median / b.median)}** (paired ${formatRatio(paired.median)})`,
      ],
      [
        '',
        'plain multi-row `INSERT`s',
        `**${formatRate(b.median)}**`,
        formatRange(b),
        rowsPerSec(theirs),
        cpu(theirs),
        '1.00×',
      ],
    )
  }
  const tables: Table[] = [
    {
      caption: `Receptions written per second (each batch carries its packets and undecoded copies too), ${rounds} rounds per contender and size, ${formatRate(totalReceptions)} receptions per round:`,
      header: [
        'batch (receptions)',
        'writer',
        'receptions/s (median)',
        'min..max',
        'rows/s',
        'CPU client / PostgreSQL (of one core)',
        'ratio',
      ],
      rows,
      align: ['r', 'l', 'r', 'r', 'r', 'r', 'r'],
    },
  ]
  const workerRate = (x: WorkersRound) => (x.receptions * 1000) / x.wallMs
  const oneW = workerResults.filter((x) => x.writers === 1)
  const twoW = workerResults.filter((x) => x.writers === 2)
  if (oneW.length > 0 && twoW.length > 0) {
    const a = spread(oneW.map(workerRate))
    const b = spread(twoW.map(workerRate))
    const cpu = (list: WorkersRound[]) =>
      `${pct(median(list.map((x) => x.clientCore)))} / ${pct(median(list.map((x) => x.serverCore)))}`
    tables.push({
      caption: `**Two writers at once**: two processes, each a store on its own pool, as two ingest workers on one shared subscription (every copy goes to one of them at random, each stores a packet with the first copy it got, so ${formatPercent(split.flat().reduce((n, x) => n + x.packets.length, 0) / packets - 1)} more packet writes than one writer, settled by the unique keys), against one process writing the same records; batches of 1000, ${rounds} rounds each, alternating; rate = distinct receptions stored ÷ time from the start signal to the last writer done:`,
      header: [
        'writer processes',
        'receptions/s (median)',
        'min..max',
        'CPU writers / PostgreSQL (of one core)',
        'ratio',
      ],
      rows: [
        ['1', `**${formatRate(a.median)}**`, formatRange(a), cpu(oneW), '1.00×'],
        [
          '2',
          `**${formatRate(b.median)}**`,
          formatRange(b),
          cpu(twoW),
          `**${formatRatio(b.median / a.median)}**`,
        ],
      ],
    })
  }
  const what = [
    `Writing the same records into PostgreSQL ${version} at \`${PG_URL.replace(/:[^:@/]*@/, ':***@')}\` (local, \`fsync\` and \`synchronous_commit\` on, the server's defaults) in batches of ${SIZES.map((s) => s.toLocaleString('en-US')).join(', ')} receptions, one transaction per batch, one connection at a time, a fresh schema per round. Records: \`workload({ seed: 7 })\` from the store's tests, ${records.length} logical packets from 3000 nodes heard by 150 gateways, ${(totalReceptions / records.length).toFixed(2)} copies each on average, ${((100 * undecoded) / records.length).toFixed(1)} % on a channel without its key (kept undecoded), the public-broker port mix (positions, telemetry, node info, text, routing, traceroutes, neighbour info, map reports).`,
    '**`@meshtap/pg-store`**: `createPgStore({ pool, retention: false })` with its defaults: `unnest` array inserts of packets, receptions and undecoded copies (idempotent through unique keys), the typed tables (positions, telemetry, messages, traceroutes, neighbours, map reports), the latest-state upserts (nodes, latest telemetry, links), partitions by day (created before timing), and the change-feed announcement (change log row + `NOTIFY`).',
    '**Baseline**: the same packets (plain JSON), receptions and undecoded copies as plain multi-row `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING` statements (at most 1000 rows each) into one table each with a primary key and no other index, one transaction per batch: the least a store has to do to keep the rows. Rounds alternate between the two (A B, B A, …).',
  ]
  const notes = [
    'Rates count receptions (the unit of `batches(records, size)`); rows/s counts packets + receptions + undecoded copies inserted by the caller (the store writes more rows than that: typed rows, state upserts, the change log).',
    'CPU is this process (the writer: building the statements and parameters) and every `postgres` process (backends, WAL writer, checkpointer), as a share of one core over the round.',
  ]
  if (twoW.length > 0) {
    notes.push(
      `Two writers: ${twoW.reduce((n, x) => n + x.retries, 0)} batches retried after a transient error (deadlock, serialization) over ${twoW.length} rounds, and ${workerResults.every((x) => x.receptions === distinct) ? `every round stored each of the ${distinct} distinct receptions exactly once` : `**some rounds stored ${[...new Set(workerResults.map((x) => x.receptions))].join(', ')} receptions instead of ${distinct}**`}. With two writers the writer processes and PostgreSQL used ${median(twoW.map((x) => x.clientCore + x.serverCore)).toFixed(2)} of the machine's ${machine.cores} cores between them (one writer: ${median(oneW.map((x) => x.clientCore + x.serverCore)).toFixed(2)}); where the cores are the limit, a second worker buys availability (a worker can die) rather than throughput.`,
    )
  }
  if (quietNote) notes.push(quietNote)
  const r1000 = ratios.find((x) => x.size === 1000)
  return {
    ...base,
    what,
    busy: busySummary(results.map((x) => x.others)),
    tables,
    notes,
    headline: `pg-store vs plain multi-row INSERTs, by batch size: ${ratios.map((x) => `${x.size}: ${formatRatio(x.ratio)}`).join(', ')}${r1000 ? ` (${formatRate(median(results.filter((x) => x.size === 1000 && x.kind === 'pg-store').map(rate)))} receptions/s at 1000)` : ''}`,
    settings: `${rounds} rounds per contender and batch size, alternating, ${formatRate(totalReceptions)} receptions per round`,
  }
}

function pct(v: number): string {
  return `${Math.round(v * 100)} %`
}

/** The PostgreSQL store's write rate per batch size, against plain multi-row INSERTs. */
export const pgBenchmark: Benchmark = {
  name: 'pg',
  description: 'PostgreSQL store write rate per batch size vs plain multi-row INSERTs',
  run,
}

if (process.argv[2] === '--pg-writer') {
  writerProcess(process.argv.slice(3)).catch((e: unknown) => {
    process.stderr.write(`pg writer failed: ${String(e)}\n`)
    process.exit(1)
  })
}
