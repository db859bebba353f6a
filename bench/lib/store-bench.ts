/**
 * `pnpm bench store`: the SQLite store's write rate against plain better-sqlite3 inserts, query
 * latency at 1M (and optionally 10M) receptions, file size, the plateau under retention and a
 * pipeline replay. Environment: `STORE_BENCH_RECEPTIONS` (query dataset size, default 1 000 000,
 * 100 000 with `--quick`), `STORE_BENCH_BIG=1` to add the 10 000 000 dataset (several minutes),
 * `STORE_BENCH_PARTS=writes,replay` to run only some parts (writes, pages, statements, indexes, queries,
 * plateau, replay; all by default — use it with `--no-write`, a partial run is not a report).
 * @module
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createIngest, createMemoryStore } from '@meshtap/core'
import { batches, type WorkloadRecord, workload } from '@meshtap/core/testing'
import type { Store, WriteBatch } from '@meshtap/protocol'
import { createSqliteStore, type SqliteStore, type SqliteStoreOptions } from '@meshtap/sqlite-store'
import Database from 'better-sqlite3'
import { NOISY_THRESHOLD, startBusyProbe } from './machine.js'
import type { BusySummary } from './report.js'

/** A table of the report (the shape of bench/lib/report.ts `Table`). */
export interface BenchTable {
  caption?: string
  header: string[]
  rows: string[][]
  align?: ('l' | 'r')[]
}

/** What {@link run} returns: the parts of a `BenchReport` that do not describe the machine. */
export interface StoreBenchResult {
  title: string
  what: string[]
  tables: BenchTable[]
  notes: string[]
  headline: string
  settings: string
  /** How busy the rest of the machine was during the timed write rounds. */
  busy: BusySummary | undefined
}

/** Share of the machine used by other processes in each timed round (from /proc/stat). */
const othersPerRound: number[] = []

function busySummary(): BusySummary | undefined {
  if (othersPerRound.length === 0) return undefined
  return {
    medianOthers: median(othersPerRound),
    maxOthers: Math.max(...othersPerRound),
    noisyRounds: othersPerRound.filter((o) => o > NOISY_THRESHOLD).length,
    rounds: othersPerRound.length,
  }
}

const DAY = 86_400_000
const START = 1_764_288_000_000

function tmp(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'meshtap-store-bench-'))
  return { dir, file: join(dir, 'mesh.db') }
}

/**
 * `STORE_BENCH_PAGE_SIZE` (bytes, e.g. 16384): every file the store benchmark creates gets this
 * SQLite page size (set on the empty file before the store creates its tables). Unset: SQLite's
 * default (4096), as the store ships. `auto_vacuum = INCREMENTAL` as the store sets on new files.
 */
const PAGE_SIZE = Number(process.env.STORE_BENCH_PAGE_SIZE ?? 0)

/** Creates the empty database file with {@link PAGE_SIZE}, when one is set. */
function prepareFile(file: string): void {
  if (!PAGE_SIZE) return
  const db = new Database(file)
  db.pragma(`page_size = ${PAGE_SIZE}`)
  db.pragma('auto_vacuum = INCREMENTAL') // what the store sets on a new file
  db.exec('VACUUM')
  db.close()
}

function fileSize(file: string): number {
  let n = 0
  for (const f of [file, `${file}-wal`]) {
    try {
      n += statSync(f).size
    } catch {
      // absent
    }
  }
  return n
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number
}

function rate(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`
  if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e5 ? 0 : 1)} k`
  return v.toFixed(0)
}

function ms(v: number): string {
  return v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2)
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes >= 1e8 ? 0 : 1)} MB`
}

/**
 * Which rows the floor inserts: `full` (the issue's definition) the packets with their receptions,
 * positions and telemetry; `core` only packets and receptions (a stricter reference, the floor of
 * earlier runs).
 */
type FloorKind = 'full' | 'core'

/**
 * The floor: the same rows as plain inserts, one transaction per batch, no index, no derived state,
 * no interning (gateway ids, topics and channels as text, metrics as one JSON column).
 */
function writeFloor(file: string, all: readonly WriteBatch[], kind: FloorKind = 'full'): number {
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec(`CREATE TABLE packets (key TEXT, from_num INTEGER, to_num INTEGER, packet_id INTEGER,
      portnum INTEGER, received_at INTEGER, json TEXT);
    CREATE TABLE receptions (packet_key TEXT, gateway_id TEXT, topic TEXT, rx_time INTEGER,
      received_at INTEGER, rx_snr REAL, rx_rssi INTEGER, hop_limit INTEGER, hop_start INTEGER, class TEXT);
    CREATE TABLE positions (packet_key TEXT, node INTEGER, received_at INTEGER, time INTEGER,
      latitude REAL, longitude REAL, altitude REAL, precision_bits INTEGER, sats_in_view INTEGER,
      channel TEXT, gateway_id TEXT);
    CREATE TABLE telemetry (packet_key TEXT, node INTEGER, received_at INTEGER, time INTEGER,
      variant TEXT, metrics TEXT, channel TEXT, gateway_id TEXT)`)
  const ip = db.prepare('INSERT INTO packets VALUES (?, ?, ?, ?, ?, ?, ?)')
  const ir = db.prepare('INSERT INTO receptions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
  const ipos = db.prepare('INSERT INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
  const itel = db.prepare('INSERT INTO telemetry VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
  const full = kind === 'full'
  const tx = db.transaction((b: WriteBatch) => {
    for (const p of b.packets) {
      const pk = p.packet
      ip.run(p.key, pk.from, pk.to, pk.id, pk.portnum, p.receivedAt, JSON.stringify(pk))
      if (!full) continue
      const app = pk.app
      if (app?.type === 'position' && app.latitude !== undefined && app.longitude !== undefined) {
        ipos.run(
          p.key,
          pk.from,
          p.receivedAt,
          app.position.time ?? null,
          app.latitude,
          app.longitude,
          app.altitude ?? null,
          app.precisionBits ?? null,
          app.position.satsInView ?? null,
          pk.channelId ?? null,
          pk.gatewayId ?? null,
        )
      } else if (app?.type === 'telemetry') {
        itel.run(
          p.key,
          pk.from,
          p.receivedAt,
          app.telemetry.time ?? null,
          app.variant,
          JSON.stringify(app.metrics),
          pk.channelId ?? null,
          pk.gatewayId ?? null,
        )
      }
    }
    for (const r of b.receptions) {
      ir.run(
        r.packetKey,
        r.gatewayId ?? null,
        r.topic ?? null,
        r.rxTime,
        r.receivedAt,
        r.rxSnr,
        r.rxRssi,
        r.hopLimit,
        r.hopStart,
        r.receptionClass,
      )
    }
  })
  const t0 = performance.now()
  for (const b of all) tx(b)
  db.close()
  return performance.now() - t0
}

async function writeStore(
  file: string,
  all: readonly WriteBatch[],
  variant?: Variant,
): Promise<number> {
  prepareFile(file)
  const store = createSqliteStore({ path: file, retention: false, ...variant?.options })
  await store.init()
  variant?.setup?.(store)
  const t0 = performance.now()
  for (const b of all) await store.writeBatch(b)
  await store.close()
  return performance.now() - t0
}

interface Variant {
  label: string
  /** Store options other than the defaults. */
  options?: Partial<SqliteStoreOptions>
  setup?: (store: SqliteStore) => void
}

/** The write test's contenders besides the floors: the store as shipped, and without its worker. */
const WRITE_VARIANTS: readonly Variant[] = [
  { label: 'store' },
  { label: 'store, checkpoints inline only', options: { backgroundCheckpointMs: false } },
]

interface WriteFigures {
  /** receptions/s per variant, in the order given. */
  store: number[][]
  /** The floor as the issue defines it: packets, receptions, positions, telemetry. */
  floor: number[]
  /** The stricter reference: packets and receptions only. */
  floorCore: number[]
  /** File size of each variant's last round. */
  bytes: number[]
}

/** Rounds in which the variants and the floor take turns (the order rotates), each on a fresh file. */
async function measureWrites(
  all: readonly WriteBatch[],
  rounds: number,
  variants: readonly Variant[] = [{ label: 'store' }],
): Promise<WriteFigures> {
  const receptions = all.reduce((s, b) => s + b.receptions.length, 0)
  const out: WriteFigures = {
    store: variants.map(() => []),
    floor: [],
    floorCore: [],
    bytes: variants.map(() => 0),
  }
  const contenders = [-1, -2, ...variants.map((_, i) => i)]
  for (let r = 0; r < rounds; r++) {
    const order = contenders.map((_, i) => contenders[(i + r) % contenders.length] as number)
    for (const which of order) {
      const { dir, file } = tmp()
      const probe = startBusyProbe()
      try {
        if (which >= 0) {
          const t = await writeStore(file, all, variants[which])
          out.store[which]?.push((receptions / t) * 1000)
          out.bytes[which] = fileSize(file)
        } else if (which === -1) {
          out.floor.push((receptions / writeFloor(file, all, 'full')) * 1000)
        } else {
          out.floorCore.push((receptions / writeFloor(file, all, 'core')) * 1000)
        }
        const busy = probe.stop()
        if (busy) othersPerRound.push(busy.others)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
  return out
}

/** The per-node indexes of schema version 3, dropped to measure what they cost and bring. */
const DROP_NODE_INDEXES = 'DROP INDEX positions_node; DROP INDEX telemetry_node'

/** Schema version 4's covering box index swapped back for version 3's `(cell, received_at)`. */
const SCHEMA_3_BOX_INDEX =
  'DROP INDEX positions_box; CREATE INDEX positions_cell ON positions (cell, received_at)'

/**
 * Where the write cost goes: the distinct pages each commit writes to the WAL, by the table or
 * index (b-tree) they belong to. Writes every batch but the last `probe` into a new file, then
 * checkpoints before each of the last ones and reads the page numbers of the frames each commit
 * appended to the WAL; `dbstat` names each page's b-tree (pages allocated by that commit are
 * "new pages").
 */
async function pagesPerCommit(
  all: readonly WriteBatch[],
  probe: number,
): Promise<{ perThousand: Map<string, number>; total: number }> {
  const { dir, file } = tmp()
  prepareFile(file)
  // Without the checkpoint worker: the WAL must hold exactly the frames of the commit measured.
  const store = createSqliteStore({ path: file, retention: false, backgroundCheckpointMs: false })
  try {
    await store.init()
    const db = store.database
    const head = all.slice(0, Math.max(0, all.length - probe))
    const tail = all.slice(head.length)
    for (const b of head) await store.writeBatch(b)
    const owner = new Map<number, string>()
    for (const r of db.prepare('SELECT name, pageno FROM dbstat').all() as {
      name: string
      pageno: number
    }[]) {
      owner.set(r.pageno, r.name)
    }
    const pages = new Map<string, number>()
    let receptions = 0
    for (const b of tail) {
      await truncateWal(db)
      await store.writeBatch(b)
      receptions += b.receptions.length
      const wal = readFileSync(`${file}-wal`)
      const pageSize = wal.readUInt32BE(8)
      const seen = new Set<number>()
      for (let off = 32; off + 24 + pageSize <= wal.length; off += 24 + pageSize) {
        seen.add(wal.readUInt32BE(off))
      }
      for (const pg of seen) {
        const name = owner.get(pg) ?? 'new pages (appended rows, splits)'
        pages.set(name, (pages.get(name) ?? 0) + 1)
      }
    }
    const perThousand = new Map<string, number>()
    let total = 0
    for (const [name, n] of pages) {
      const v = (n / receptions) * 1000
      perThousand.set(name, v)
      total += v
    }
    return { perThousand, total }
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Where the write time goes: every statement the store prepares and every `exec` (BEGIN, COMMIT)
 * timed with `process.hrtime` while one file is written batch by batch (better-sqlite3's
 * prototype methods wrapped for the run, restored after). The rest is the writer's JavaScript.
 */
async function statementTimes(all: readonly WriteBatch[]): Promise<{
  totalMs: number
  rows: { label: string; calls: number; ms: number }[]
}> {
  const proto = Database.prototype as unknown as {
    prepare: (sql: string) => Record<string, unknown>
    exec: (sql: string) => unknown
  }
  const prepare = proto.prepare
  const exec = proto.exec
  const stats = new Map<string, { calls: number; ns: bigint }>()
  const add = (label: string, t0: bigint) => {
    const st = stats.get(label) ?? { calls: 0, ns: 0n }
    st.calls++
    st.ns += process.hrtime.bigint() - t0
    stats.set(label, st)
  }
  const labelOf = (sql: string) => {
    const m = /^\s*(INSERT INTO|UPDATE|SELECT .*? FROM|DELETE FROM)\s+(\w+)/is.exec(sql)
    const verb = m?.[1]?.startsWith('SELECT') ? 'SELECT … FROM' : m?.[1]
    const upsert = /ON CONFLICT[^)]*\)\s*DO UPDATE/is.test(sql) ? ' (upsert)' : ''
    return m ? `${verb} ${m[2]}${upsert}` : sql.trim().slice(0, 30)
  }
  proto.prepare = function (this: unknown, sql: string) {
    const st = prepare.call(this, sql)
    const label = labelOf(sql)
    for (const m of ['run', 'get', 'all'] as const) {
      const f = st[m] as ((...a: unknown[]) => unknown) | undefined
      if (typeof f !== 'function') continue
      st[m] = function (this: unknown, ...a: unknown[]) {
        const t0 = process.hrtime.bigint()
        try {
          return f.apply(this, a)
        } finally {
          add(label, t0)
        }
      }
    }
    return st
  }
  proto.exec = function (this: unknown, sql: string) {
    const t0 = process.hrtime.bigint()
    try {
      return exec.call(this, sql)
    } finally {
      add(sql.trim().split(/\s+/)[0] ?? sql, t0)
    }
  }
  const { dir, file } = tmp()
  let totalMs = 0
  try {
    prepareFile(file)
    const store = createSqliteStore({ path: file, retention: false })
    await store.init()
    stats.clear()
    const t0 = performance.now()
    for (const b of all) await store.writeBatch(b)
    totalMs = performance.now() - t0
    await store.close()
  } finally {
    proto.prepare = prepare
    proto.exec = exec
    rmSync(dir, { recursive: true, force: true })
  }
  const rows = [...stats]
    .map(([label, v]) => ({ label, calls: v.calls, ms: Number(v.ns) / 1e6 }))
    .sort((a, b) => b.ms - a.ms)
  return { totalMs, rows }
}

interface QueryCase {
  label: string
  run: (i: number) => Promise<unknown>
}

async function timeQueries(cases: QueryCase[], n: number): Promise<string[][]> {
  const rows: string[][] = []
  for (const c of cases) {
    for (let i = 0; i < Math.min(5, n); i++) await c.run(i) // warm the cache and statements
    const times: number[] = []
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      await c.run(i)
      times.push(performance.now() - t0)
    }
    rows.push([c.label, ms(median(times)), ms(quantile(times, 0.95)), ms(Math.max(...times))])
  }
  return rows
}

function queryCases(store: SqliteStore, nodes: number[], end: number): QueryCase[] {
  const node = (i: number) => nodes[(i * 7919) % nodes.length] as number
  return [
    { label: 'node list, first page of 100', run: () => store.listNodes({ limit: 100 }) },
    {
      label: 'node list, heard in the last hour, second page',
      run: async () => {
        const first = await store.listNodes({ since: end - 3_600_000, limit: 100 })
        return first.nextCursor
          ? store.listNodes({ since: end - 3_600_000, limit: 100, cursor: first.nextCursor })
          : first
      },
    },
    {
      label: "one node's positions over 24 h (up to 1000)",
      run: (i) => store.listPositions({ node: node(i), since: end - DAY, until: end, limit: 1000 }),
    },
    {
      label: 'positions in a 0.3° box over 24 h, first 100',
      run: (i) => {
        const cluster = i % 7
        const south = 37 + cluster * 1.5 + (i % 5) * 0.1
        const west = -122 + cluster * 2 + (i % 3) * 0.1
        return store.listPositions({
          bbox: { south, west, north: south + 0.3, east: west + 0.3 },
          since: end - DAY,
          limit: 100,
        })
      },
    },
    {
      label: 'positions in an empty 0.3° box over 24 h',
      run: (i) =>
        store.listPositions({
          bbox: { south: -40 + (i % 5), west: 20, north: -39.7 + (i % 5), east: 20.3 },
          since: end - DAY,
          limit: 100,
        }),
    },
    {
      label: "one node's device telemetry over 24 h",
      run: (i) =>
        store.listTelemetry({ node: node(i), variant: 'device', since: end - DAY, limit: 1000 }),
    },
    {
      label: 'all telemetry in the last hour, first 100',
      run: () => store.listTelemetry({ since: end - 3_600_000, limit: 100 }),
    },
    { label: 'node detail', run: (i) => store.getNode(node(i)) },
  ]
}

/**
 * Checkpoints the whole WAL into the file and truncates it, so the file size is the data's. The
 * store's checkpoint worker may hold the checkpoint lock for a moment (the pragma then reports
 * busy without waiting): tried again until it goes through.
 */
async function truncateWal(db: SqliteStore['database']): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const [r] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[]
    if (!r?.busy) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error('the WAL could not be truncated for 2 s')
}

async function buildDataset(
  file: string,
  receptionsWanted: number,
  spanMs: number,
): Promise<{ store: SqliteStore; receptions: number; nodes: number[]; end: number; ms: number }> {
  prepareFile(file)
  const store = createSqliteStore({ path: file, retention: false })
  await store.init()
  // The stream averages about 2.2 copies per packet.
  const packets = Math.ceil(receptionsWanted / 2.2)
  let receptions = 0
  let elapsed = 0
  for (const b of batches(
    workload({ packets, spanMs, startMs: START, messages: false, seed: 3 }),
    10_000,
  )) {
    receptions += b.receptions.length
    const t0 = performance.now()
    await store.writeBatch(b)
    elapsed += performance.now() - t0
  }
  await truncateWal(store.database)
  const nodes = (store.database.prepare('SELECT num FROM nodes').all() as { num: number }[]).map(
    (r) => r.num,
  )
  return { store, receptions, nodes, end: START + spanMs, ms: elapsed }
}

/** Steady traffic with a retention window: the file size after each simulated day. */
async function plateau(
  packetsPerDay: number,
  days: number,
  windowDays: number,
): Promise<string[][]> {
  const { dir, file } = tmp()
  let clock = START
  prepareFile(file)
  const store = createSqliteStore({
    path: file,
    now: () => clock,
    retention: { defaultMs: windowDays * DAY, intervalMs: false },
  })
  await store.init()
  const rows: string[][] = []
  const perHour = Math.ceil(packetsPerDay / 24)
  let hour = 0
  let receptions = 0
  const snapshot = async (day: number): Promise<string[]> => {
    await truncateWal(store.database)
    const counts = await store.counts()
    return [String(day), rate(receptions), rate(counts.receptions), mb(fileSize(file))]
  }
  try {
    const stream = workload({
      packets: packetsPerDay * days,
      spanMs: days * DAY,
      startMs: START,
      messages: false,
      seed: 5,
    })
    let pending: WorkloadRecord[] = []
    for (const r of stream) {
      pending.push(r)
      if (pending.length < perHour) continue
      for (const b of batches(pending, 5000)) {
        receptions += b.receptions.length
        await store.writeBatch(b)
      }
      pending = []
      hour++
      clock = START + hour * 3_600_000
      await store.runRetention()
      if (hour % 24 === 0) rows.push(await snapshot(hour / 24))
    }
    if (pending.length > 0) {
      for (const b of batches(pending, 5000)) {
        receptions += b.receptions.length
        await store.writeBatch(b)
      }
      clock = START + days * DAY
      await store.runRetention()
      rows.push(await snapshot(days))
    }
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

/** The pipeline end to end: every copy pushed into `createIngest`, into each store (one thread; the writer thread adds one). */
async function replay(
  messages: WorkloadRecord['messages'],
  rounds: number,
): Promise<{ sqlite: number[]; thread: number[]; memory: number[]; stored: string }> {
  const out = { sqlite: [] as number[], thread: [] as number[], memory: [] as number[], stored: '' }
  const order = ['sqlite', 'thread', 'memory'] as const
  for (let r = 0; r < rounds; r++) {
    // Each variant runs first, second and third in turn.
    for (const which of order.map(
      (_, k) => order[(k + r) % order.length] as (typeof order)[number],
    )) {
      const { dir, file } = tmp()
      try {
        const store: Store =
          which === 'memory'
            ? createMemoryStore()
            : createSqliteStore({ path: file, retention: false, writerThread: which === 'thread' })
        const ingest = createIngest({
          store,
          rateLimit: false,
          queueCapacity: 1_000_000,
          batch: { maxRecords: 5000 },
          closeStore: false,
        })
        await ingest.start()
        const probe = startBusyProbe()
        const t0 = performance.now()
        let i = 0
        for (const m of messages) {
          ingest.push(m)
          if (++i % 5000 === 0) await new Promise((resolve) => setImmediate(resolve))
        }
        await ingest.stop()
        const t = performance.now() - t0
        const busy = probe.stop()
        if (busy) othersPerRound.push(busy.others)
        out[which].push((messages.length / t) * 1000)
        if (which === 'sqlite') {
          const c = await store.counts()
          out.stored = `${c.packets} packets, ${c.receptions} receptions`
        }
        await store.close?.()
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
  return out
}

/**
 * Runs the benchmark. With `quick`, tiny datasets (a smoke test: the figures mean nothing).
 *
 * @example
 * const result = await run({ quick: true })
 */
export async function run(options: { quick: boolean }): Promise<StoreBenchResult> {
  const quick = options.quick
  const tables: BenchTable[] = []
  const notes: string[] = []
  /** One line per aim of issue 4, met or not, put first in the notes. */
  const aims: string[] = []
  const rounds = quick ? 2 : 5

  const only = process.env.STORE_BENCH_PARTS?.split(',').map((x) => x.trim())
  const part = (name: string): boolean => only === undefined || only.includes(name)

  // 1. Write rate against the floor, two batch sizes.
  const writePackets = quick ? 10_000 : 100_000
  const records = [...workload({ packets: writePackets, messages: false, seed: 1, spanMs: DAY })]
  const writeRows: string[][] = []
  let headline = ''
  for (const size of part('writes') ? [1000, 10_000] : []) {
    const all = [...batches(records, size)]
    const receptions = all.reduce((s, b) => s + b.receptions.length, 0)
    const f = await measureWrites(all, rounds, WRITE_VARIANTS)
    const store = f.store[0] as number[]
    const inline = f.store[1] as number[]
    const pairedInline = median(store.map((v, i) => v / (inline[i] as number)))
    const ratio = median(store) / median(f.floor)
    const paired = median(store.map((v, i) => v / (f.floor[i] as number)))
    const ratioCore = median(store) / median(f.floorCore)
    writeRows.push([
      `${size} receptions`,
      `**${rate(median(store))}**`,
      `${rate(Math.min(...store))}..${rate(Math.max(...store))}`,
      rate(median(f.floor)),
      `**${ratio.toFixed(2)}×** (paired ${paired.toFixed(2)}×)`,
      rate(median(f.floorCore)),
      `${ratioCore.toFixed(2)}×`,
      `${rate(median(inline))} (${(median(inline) / median(f.floor)).toFixed(2)}×; store/it paired ${pairedInline.toFixed(2)}×)`,
      mb(((f.bytes[0] as number) / receptions) * 1e6),
    ])
    if (size === 1000) {
      headline = `store ${rate(median(store))} receptions/s = ${ratio.toFixed(2)}× the floor (batches of 1000)`
    }
    aims.push(
      `Writes in batches of ${size}: ${ratio.toFixed(2)}× the floor (paired rounds ${paired.toFixed(2)}×; aim ≥ 0.5×: ${ratio >= 0.5 ? 'met' : 'not met'}); ${ratioCore.toFixed(2)}× the stricter packets-and-receptions-only floor.`,
    )
  }
  if (writeRows.length)
    tables.push({
      caption: `**Write rate**: ${rate(writePackets)} packets with their receptions (${rate(
        records.reduce((s, r) => s + r.receptions.length, 0),
      )}), written batch by batch into a new file; ${rounds} alternating rounds (store, store with inline checkpoints only, floor, stricter floor, rotating). The store checkpoints its WAL from a worker thread by default (\`backgroundCheckpointMs\`, on the other core); the inline-only column turns that off, as before this option existed. **Floor** (the issue's definition): the same rows — packets, their receptions, positions and telemetry — as plain \`better-sqlite3\` inserts into tables without any index, one transaction per batch (gateway ids, topics, channels as text, metrics as one JSON column). **Stricter floor**: only the packets and receptions (what earlier runs used as the floor, although the store also writes the positions and telemetry).`,
      header: [
        'batch',
        'store receptions/s (median)',
        'min..max',
        'floor receptions/s',
        'ratio',
        'stricter floor (packets + receptions only)',
        'ratio to it',
        'store with inline checkpoints only (ratio to the floor)',
        'file per million receptions',
      ],
      rows: writeRows,
    })

  // 1b. Where the write cost goes: WAL pages per commit by b-tree.
  if (part('pages')) {
    const breakdown = await pagesPerCommit([...batches(records, 1000)], quick ? 5 : 20)
    const named = [...breakdown.perThousand].sort((a, b) => b[1] - a[1])
    const big = named.filter(([, v]) => v >= 5)
    const rest = named.filter(([, v]) => v < 5)
    tables.push({
      caption: `**Where the write cost goes**: distinct pages each commit of 1000 receptions writes to the WAL (4 KiB each), by table or index, over the last ${quick ? 5 : 20} batches of the write test. ${breakdown.total.toFixed(0)} pages per 1000 receptions in all.`,
      header: ['table or index', 'pages per 1000 receptions', 'share'],
      rows: [
        ...big.map(([name, v]) => [
          `\`${name}\``,
          v.toFixed(0),
          `${((v / breakdown.total) * 100).toFixed(0)} %`,
        ]),
        [
          `${rest.length} others (time indexes, state tables, …), each under 5`,
          rest.reduce((t, [, v]) => t + v, 0).toFixed(0),
          `${((rest.reduce((t, [, v]) => t + v, 0) / breakdown.total) * 100).toFixed(0)} %`,
        ],
      ],
    })
  }

  // 1c. Where the write time goes: per statement, COMMIT, and the writer's JavaScript.
  if (part('statements')) {
    const all1000 = [...batches(records, 1000)]
    const receptions = all1000.reduce((t, b) => t + b.receptions.length, 0)
    const times = await statementTimes(all1000)
    const inSql = times.rows.reduce((t, r) => t + r.ms, 0)
    const big = times.rows.filter((r) => r.ms >= times.totalMs * 0.01)
    const small = times.rows.filter((r) => r.ms < times.totalMs * 0.01)
    const share = (v: number) => `${((v / times.totalMs) * 100).toFixed(0)} %`
    tables.push({
      caption: `**Where the write time goes**: the same write test (batches of 1000) once more, every statement call and every \`exec\` timed (wall clock, one round; the timing itself adds about a microsecond per call). ${rate((receptions / times.totalMs) * 1000)} receptions/s in this round, ${((times.totalMs / receptions) * 1000).toFixed(1)} µs per reception.`,
      header: ['statement', 'calls per 1000 receptions', 'µs per call', 'share of the write time'],
      rows: [
        ...big.map((r) => [
          `\`${r.label}\``,
          ((r.calls / receptions) * 1000).toFixed(0),
          ((r.ms * 1000) / r.calls).toFixed(1),
          share(r.ms),
        ]),
        [
          `${small.length} other statements, each under 1 %`,
          ((small.reduce((t, r) => t + r.calls, 0) / receptions) * 1000).toFixed(0),
          '–',
          share(small.reduce((t, r) => t + r.ms, 0)),
        ],
        [
          "the writer's JavaScript (packing, caches, node state) and the rest",
          '–',
          '–',
          share(times.totalMs - inSql),
        ],
      ],
    })
  }

  // 2. What each index costs (the same rounds, every variant against the same floor).
  if (part('indexes')) {
    const all1000 = [...batches(records, 1000)]
    const variants: Variant[] = [
      { label: 'as shipped (schema 4)' },
      {
        label: 'without the (node, received_at) indexes (as schema 2)',
        setup: (s) => s.database.exec(DROP_NODE_INDEXES),
      },
      {
        label: 'schema 3 box index (cell, received_at) instead of the covering one',
        setup: (s) => s.database.exec(SCHEMA_3_BOX_INDEX),
      },
      {
        label: 'without any box index on positions',
        setup: (s) => s.database.exec('DROP INDEX positions_box'),
      },
      {
        label: 'without any time index (receptions, packets, typed tables)',
        setup: (s) =>
          s.database.exec(`DROP INDEX receptions_received_at; DROP INDEX positions_received_at;
          DROP INDEX telemetry_received_at; DROP INDEX messages_received_at`),
      },
    ]
    const vf = await measureWrites(all1000, rounds, variants)
    tables.push({
      caption:
        '**Index choice**: the same write test (batches of 1000), each variant against the same floor rounds.',
      header: ['schema', 'store receptions/s (median)', 'ratio to the floor'],
      rows: variants.map((v, i) => [
        v.label,
        rate(median(vf.store[i] as number[])),
        `${(median(vf.store[i] as number[]) / median(vf.floor)).toFixed(2)}×`,
      ]),
    })
  }

  // 3. Query latency at 1M (and 10M) receptions.
  const sizes = !part('queries')
    ? []
    : [
        Number(process.env.STORE_BENCH_RECEPTIONS ?? (quick ? 100_000 : 1_000_000)),
        ...(process.env.STORE_BENCH_BIG === '1' ? [10_000_000] : []),
      ]
  for (const size of sizes) {
    const { dir, file } = tmp()
    try {
      const span = 3 * DAY
      const ds = await buildDataset(file, size, span)
      const bytes = fileSize(file)
      const n = quick ? 30 : 200
      const cases = queryCases(ds.store, ds.nodes, ds.end)
      const shipped = await timeQueries(cases, n)
      ds.store.database.exec(DROP_NODE_INDEXES)
      const without = await timeQueries(cases, n)
      // The box queries again with schema 3's box index, to show what the covering index brings.
      ds.store.database.exec(SCHEMA_3_BOX_INDEX)
      const boxCases = cases.filter((c) => c.label.includes('box'))
      const schema3 = await timeQueries(boxCases, n)
      tables.push({
        caption: `**Queries at ${rate(ds.receptions)} receptions** (${rate(
          (await ds.store.counts()).packets,
        )} packets from ${ds.nodes.length} nodes over 3 days; file ${mb(bytes)}, ${mb(
          (bytes / ds.receptions) * 1e6,
        )} per million receptions; built at ${rate((ds.receptions / ds.ms) * 1000)} receptions/s in batches of 10 000). ${n} runs each, ms. Aim: p95 < 20 ms at 10 M.`,
        header: [
          'query',
          'p50',
          'p95',
          'max',
          'p50 without (node, time) indexes',
          'p95 without (node, time) indexes',
          'p50 with the schema-3 box index',
          'p95 with the schema-3 box index',
        ],
        rows: shipped.map((r, i) => {
          const old = schema3.find((x) => x[0] === r[0])
          return [
            ...r.slice(0, 4),
            ...(without[i]?.slice(1, 3) ?? []),
            old?.[1] ?? '–',
            old?.[2] ?? '–',
          ]
        }),
      })
      const worst = Math.max(...shipped.map((r) => Number(r[2])))
      aims.push(
        `Queries at ${rate(ds.receptions)} receptions: the slowest p95 is ${ms(worst)} ms${
          ds.receptions >= 9_000_000
            ? ` (aim < 20 ms at 10 M: ${worst < 20 ? 'met' : 'not met'})`
            : ''
        }.`,
      )
      await ds.store.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  // 4. Plateau under retention.
  if (part('plateau')) {
    const perDay = quick ? 5_000 : 100_000
    const days = quick ? 4 : 8
    const plateauRows = await plateau(perDay, days, 2)
    tables.push({
      caption: `**Plateau**: ${rate(perDay)} packets a day for ${days} days, retention window 2 days, retention every simulated hour.`,
      header: ['day', 'receptions written', 'receptions kept', 'file size'],
      rows: plateauRows,
    })
  }

  // 5. Replay through the pipeline.
  if (part('replay')) {
    const replayRecords = [
      ...workload({ packets: quick ? 5_000 : 50_000, messages: true, seed: 9, spanMs: DAY }),
    ]
    const messages = replayRecords.flatMap((r) => r.messages)
    const rp = await replay(messages, rounds)
    tables.push({
      caption: `**Replay**: ${rate(messages.length)} MQTT messages (${rate(replayRecords.length)} packets) pushed through \`createIngest\` (no rate limit, batches of 5000), on one thread; \`writerThread: true\` moves the SQLite writes to a second.`,
      header: ['store', 'messages/s (median)', 'min..max'],
      rows: [
        [
          'sqlite-store',
          `**${rate(median(rp.sqlite))}**`,
          `${rate(Math.min(...rp.sqlite))}..${rate(Math.max(...rp.sqlite))}`,
        ],
        [
          'sqlite-store, `writerThread: true`',
          `**${rate(median(rp.thread))}**`,
          `${rate(Math.min(...rp.thread))}..${rate(Math.max(...rp.thread))}`,
        ],
        [
          'memory store',
          rate(median(rp.memory)),
          `${rate(Math.min(...rp.memory))}..${rate(Math.max(...rp.memory))}`,
        ],
      ],
    })
    const replayRate = median(rp.sqlite)
    const threadRate = median(rp.thread)
    aims.push(
      `Replay into SQLite: ${rate(replayRate)} messages/s, ${(replayRate / median(rp.memory)).toFixed(2)}× the memory store in the same rounds (aim ≥ 100 k/s: ${replayRate >= 100_000 ? 'met' : 'not met'}); with the writer on its own thread ${rate(threadRate)} messages/s, ${(threadRate / replayRate).toFixed(2)}× the writer on the pipeline's thread (two cores, not one).`,
    )
    notes.push(`Replay stored ${rp.stored}.`)
  }
  notes.unshift(`**Aims of issue 4** (this run): ${aims.join(' ')}`)
  if (PAGE_SIZE) {
    notes.unshift(
      `**Not the shipped default**: the store's files were created with \`page_size = ${PAGE_SIZE}\` (\`STORE_BENCH_PAGE_SIZE\`); the store ships with SQLite's 4096.`,
    )
  }
  notes.push(
    'Floor: the same packets (key, from, to, id, port, time, `JSON.stringify` of the packet), receptions (10 columns), positions (11 columns) and telemetry rows (8 columns, the metrics as JSON) inserted with prepared statements, one transaction per batch, WAL and `synchronous = NORMAL`, no index, no interning, no node state; the stricter floor leaves out the positions and telemetry.',
  )

  return {
    title: 'SQLite store (`@meshtap/sqlite-store`)',
    what: [
      'A synthetic public-broker stream (3000 nodes in 7 clusters, 150 gateways, about 2.2 copies per packet; positions 30 %, device telemetry 20 %, environment 8 %, node info 14 %, text 8 %, routing 10 %, traceroute 3 %, neighbour info 2 %, map reports 5 %) written into `createSqliteStore` on a temp file (WAL, `synchronous = NORMAL`).',
    ],
    tables,
    notes,
    headline,
    settings: `${rounds} alternating rounds per write figure${quick ? ', --quick' : ''}`,
    busy: busySummary(),
  }
}

function printTable(t: BenchTable): void {
  if (t.caption) process.stdout.write(`\n${t.caption.replace(/\*\*/g, '')}\n`)
  const rows = [t.header, ...t.rows].map((r) => r.map((c) => c.replace(/\*\*|`/g, '')))
  const widths = t.header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  for (const r of rows) {
    process.stdout.write(`${r.map((c, i) => c.padStart(widths[i] as number)).join('  ')}\n`)
  }
}

if (process.argv[1]?.endsWith('store-bench.ts')) {
  const result = await run({ quick: process.argv.includes('--quick') })
  process.stdout.write(`${result.title}\n${result.headline}\n`)
  for (const t of result.tables) printTable(t)
  for (const n of result.notes) process.stdout.write(`- ${n}\n`)
}
