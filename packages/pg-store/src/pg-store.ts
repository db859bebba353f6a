import type {
  DecodedPacket,
  DecodeFailure,
  PartialPacket,
  RawMessage,
  RedecryptDecode,
  RedecryptOptions,
  RedecryptResult,
  Result,
  Store,
  StoreCounts,
  StoredPacket,
  StoreQueries,
  WriteBatch,
} from '@meshtap/protocol'
import { encodeEnvelope, encodeMeshPacket, retentionWindowMs } from '@meshtap/protocol/store-kit'
import { codeOf, PgStoreError, wrapError } from './errors.js'
import { migrate, SCHEMA_VERSION, schemaVersion } from './migrations.js'
import { DAY_MS, dayOf, hash32, LOCK_SPACE, PartitionManager, serverVersion } from './partitions.js'
import { createOwnedPool, ident, type PgPool, type PgPoolClient, TYPES } from './pool.js'
import { createReader, type Reader } from './reader.js'
import {
  type Announcement,
  createWriter,
  MissingPartitions,
  toRanges,
  type WriteResult,
} from './writer.js'

/**
 * The tables retention prunes, each by its own window (the same names as the SQLite store's):
 * `receptions`, `undecoded`, `positions`, `telemetry`, `messages`, `traceroutes`, `neighbors`,
 * `mapReports`, `waypoints` (partitioned by day: whole partitions are dropped), `links` and
 * `neighborLinks` (by when last seen), `nodeTelemetry` (a node's latest report per variant),
 * `nodes` (by when last heard), and `packets` (deleted in chunks) — the partitions of a day go
 * when its packets go.
 *
 * @example
 * const t: PgRetentionTable = 'receptions'
 */
export type PgRetentionTable =
  | 'packets'
  | 'receptions'
  | 'undecoded'
  | 'positions'
  | 'telemetry'
  | 'messages'
  | 'traceroutes'
  | 'neighbors'
  | 'mapReports'
  | 'waypoints'
  | 'links'
  | 'neighborLinks'
  | 'nodeTelemetry'
  | 'nodes'

/**
 * How long rows are kept and how they are pruned.
 *
 * @example
 * createPgStore({ pool, retention: { defaultMs: 30 * 86_400_000, windows: { receptions: 7 * 86_400_000 } } })
 */
export interface PgRetentionOptions {
  /**
   * The window of every table without its own entry in `windows`, in ms. Partitioned tables keep
   * whole partitions: a partition goes once its last day is older than the window.
   * @default 7776000000 (90 days)
   */
  defaultMs?: number
  /**
   * Per-table windows in ms, or `false` to keep a table's rows forever. A row that hangs off a
   * packet also goes when its packet's day goes, so a child window longer than `packets` has no
   * effect.
   */
  windows?: Partial<Record<PgRetentionTable, number | false>>
  /**
   * How often retention runs on its own (the timer is unref'd). The first run is
   * `min(intervalMs, 60 s)` after `init()`. When several processes share a schema, one run at a
   * time does the work (an advisory lock) and the others skip. `false`: only when
   * `runRetention()` is called.
   * @default 3600000 (1 hour)
   */
  intervalMs?: number | false
  /**
   * Rows deleted per statement in the tables that are not partitioned (packets, nodes, links).
   * @default 5000
   */
  chunkSize?: number
}

/**
 * Options of {@link createPgStore}: a `pg.Pool` the application created (`pool`), or a
 * `connectionString` for the store to open a pool of its own (and end it in `close()`).
 *
 * @example
 * createPgStore({ pool: new pg.Pool({ connectionString: process.env.DATABASE_URL }) })
 * createPgStore({ connectionString: 'postgres://postgres@127.0.0.1:5432/mesh', partitionDays: 1 })
 */
export interface PgStoreOptions {
  /** A `pg.Pool` (or anything shaped like one). The store never ends it. */
  pool?: PgPool
  /** A connection string for a pool the store creates and ends. */
  connectionString?: string
  /**
   * Connections of the pool created from `connectionString`.
   * @default 4
   */
  poolSize?: number
  /**
   * The PostgreSQL schema the tables live in (created when missing). Lowercase letters, digits
   * and `_`.
   * @default 'meshtap'
   */
  schema?: string
  /** Name reported in errors and metrics. @default 'pg' */
  name?: string
  /**
   * Days per partition of the partitioned tables. Changing it later is safe: existing partitions
   * keep their ranges, new ones fill the gaps.
   * @default 1
   */
  partitionDays?: number
  /**
   * Days of partitions created ahead of today by `init()` (and the day after any new day a batch
   * brings), so a write at midnight never waits for one.
   * @default 2
   */
  partitionsAhead?: number
  /** Retention, or `false` to keep everything forever. @default 90 days for every table, hourly */
  retention?: PgRetentionOptions | false
  /**
   * Announce every committed batch on the change feed's channel (`NOTIFY`, inside the write
   * transaction, so only committed data is announced) and log it for feeds that reconnect.
   * @default true
   */
  notify?: boolean
  /**
   * The `LISTEN`/`NOTIFY` channel.
   * @default `${schema}_changes`
   */
  channel?: string
  /**
   * How long the change log keeps an entry, for change feeds that lost their connection to catch
   * up.
   * @default 600000 (10 minutes)
   */
  changeLogMs?: number
  /**
   * How long creating or dropping a partition waits for a lock before failing (with a transient
   * `55P03`).
   * @default 5000
   */
  lockTimeoutMs?: number
  /** Packet keys whose row ids the writer remembers (most copies refer to recent packets). @default 100000 */
  keyCacheSize?: number
  /** Clock (Unix ms), for tests. @default Date.now */
  now?: () => number
}

/** The decode function `redecrypt` takes (`RedecryptDecode` of `@meshtap/protocol`). */
export type PgRedecryptDecode = RedecryptDecode
/** Options of `redecrypt` (`RedecryptOptions` of `@meshtap/protocol`). */
export type PgRedecryptOptions = RedecryptOptions
/** What `redecrypt` did (`RedecryptResult` of `@meshtap/protocol`). */
export type PgRedecryptResult = RedecryptResult

/**
 * What one retention run deleted.
 *
 * @example
 * const { deleted, droppedPartitions } = await store.runRetention()
 */
export interface PgRetentionResult {
  /** Rows deleted per table (for partitioned tables: the rows of the partitions dropped). */
  deleted: Partial<Record<PgRetentionTable, number>>
  /** The partitions dropped, `schema.table_pYYYYMMDD`. */
  droppedPartitions: string[]
  /** Another process held the retention lock, so this scheduled run did nothing. */
  skipped: boolean
  durationMs: number
}

/**
 * A partition of a partitioned table.
 *
 * @example
 * for (const p of await store.partitions()) console.log(p.name, new Date(p.from).toISOString())
 */
export interface PgPartitionInfo {
  table: string
  name: string
  /** Unix ms of its first day (inclusive). */
  from: number
  /** Unix ms after its last day (exclusive). */
  to: number
}

/**
 * The PostgreSQL store: the `Store` contract, the `StoreQueries` lists (both from `@meshtap/protocol`), re-decryption
 * of kept ciphertext, retention by partition, and change announcements for
 * `createPgChangeFeed`.
 *
 * @example
 * const store = createPgStore({ pool })
 * const { items } = await store.listNodes({ since: Date.now() - 3_600_000 })
 */
export interface PgStore extends Store, StoreQueries {
  /** The pool the store uses (its own, or the one it was given). */
  readonly pool: PgPool
  /** The schema of its tables. */
  readonly schema: string
  /** The `NOTIFY` channel of its change announcements. */
  readonly channel: string
  /**
   * Migrates the schema (forward only; processes starting together wait for each other), creates
   * the partitions of the next days and starts the retention timer.
   */
  init(): Promise<void>
  /**
   * Stops the retention timer and refuses writes. Ends the pool only if the store created it
   * (`connectionString`); a pool it was given stays open, and reads through the store still work.
   * Harmless twice.
   */
  close(): Promise<void>
  /**
   * Runs `decode` again over every kept ciphertext (after a channel key was added) and moves the
   * packets that now decode into the normal tables: the packet, its typed rows and node state; its
   * receptions were already stored. Packets that still do not decode stay where they are.
   */
  redecrypt(decode: PgRedecryptDecode, options?: PgRedecryptOptions): Promise<PgRedecryptResult>
  /** Prunes every table to its window now (also runs on the schedule). */
  runRetention(): Promise<PgRetentionResult>
  /** The schema version in the database. */
  schemaVersion(): Promise<number>
  /** The partitions of the partitioned tables, oldest first. */
  partitions(): Promise<PgPartitionInfo[]>
}

const DAY = DAY_MS

/** Partitioned tables by retention name. */
const PARTITIONED: readonly (readonly [PgRetentionTable, string])[] = [
  ['receptions', 'receptions'],
  ['undecoded', 'undecoded'],
  ['positions', 'positions'],
  ['telemetry', 'telemetry'],
  ['messages', 'messages'],
  ['traceroutes', 'traceroutes'],
  ['neighbors', 'neighbors'],
  ['mapReports', 'map_reports'],
  ['waypoints', 'waypoints'],
]

/** Tables pruned row by row: `[name, table, time column, key columns]`. */
const DELETED: readonly (readonly [PgRetentionTable, string, string, string])[] = [
  ['links', 'links', 'last_seen', 'node, gw'],
  ['neighborLinks', 'neighbor_links', 'last_seen', 'node, neighbor'],
  ['nodeTelemetry', 'node_telemetry', 'at', 'num, variant'],
  ['nodes', 'nodes', 'last_heard', 'num'],
]

const NAME_RE = /^[a-z_][a-z0-9_]{0,47}$/

/** Connection-level failures: the client is not reusable. */
function isBroken(code: string): boolean {
  return (
    code.startsWith('08') ||
    code.startsWith('57P') ||
    code.startsWith('E') ||
    code === 'CONNECTION_LOST'
  )
}

/**
 * Creates the PostgreSQL store. Give it a `pg.Pool` your application created, or a
 * `connectionString` for the store to open a pool of its own.
 *
 * - Writes: one transaction per batch, `unnest` array inserts (one statement per table, whatever
 *   the batch size), idempotent through unique keys (`ON CONFLICT DO NOTHING`; `DO UPDATE` for the
 *   latest-state tables), so several workers writing the same packet store it once and add their
 *   receptions. Derived state (nodes, links, latest telemetry) only counts rows actually inserted.
 * - Receptions, undecoded packets and the typed tables are partitioned by day; partitions are
 *   created ahead and on demand; retention drops whole partitions.
 * - Errors keep PostgreSQL's SQLSTATE (`57P01`, `40P01`, …) or the socket's code in `code`, which
 *   the ingest pipeline retries.
 * - Every committed batch is announced on a `NOTIFY` channel for `createPgChangeFeed`.
 *
 * @example
 * import pg from 'pg'
 * import { createIngest } from '@meshtap/core'
 * import { createPgStore } from '@meshtap/pg-store'
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const store = createPgStore({ pool })
 * const ingest = createIngest({ sources: [source], store })
 * await ingest.start()
 */
export function createPgStore(options: PgStoreOptions): PgStore {
  if (!options || (options.pool === undefined) === (options.connectionString === undefined)) {
    throw new PgStoreError(
      'INVALID_OPTIONS',
      'createPgStore needs exactly one of `pool` (a pg.Pool) or `connectionString`',
    )
  }
  const schema = options.schema ?? 'meshtap'
  if (!NAME_RE.test(schema)) {
    throw new PgStoreError(
      'INVALID_OPTIONS',
      `schema must be lowercase letters, digits and _ (at most 48), got ${JSON.stringify(schema)}`,
    )
  }
  const channel = options.channel ?? `${schema}_changes`
  if (!NAME_RE.test(channel)) {
    throw new PgStoreError('INVALID_OPTIONS', `channel must be lowercase letters, digits and _`)
  }
  const partitionDays = Math.max(1, Math.floor(options.partitionDays ?? 1))
  const ahead = Math.max(0, Math.floor(options.partitionsAhead ?? 2))
  const name = options.name ?? 'pg'
  const now = options.now ?? Date.now
  const notify = options.notify ?? true
  const changeLogMs = Math.max(0, options.changeLogMs ?? 600_000)
  const lockTimeoutMs = Math.max(0, options.lockTimeoutMs ?? 5000)
  const owned = options.pool === undefined
  const pool: PgPool =
    options.pool ??
    createOwnedPool(options.connectionString as string, options.poolSize ?? 4, 'meshtap-pg-store')
  const retention = options.retention === false ? undefined : (options.retention ?? {})
  const s = ident(schema)

  const partitions = new PartitionManager(schema, partitionDays, lockTimeoutMs)
  const writer = createWriter(schema, {
    keyCacheSize: options.keyCacheSize,
    missing: (days) => partitions.missing(days),
  })
  const reader: Reader = createReader(() => pool, schema, now)

  let closed = false
  let ready: Promise<void> | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let retentionRun: Promise<PgRetentionResult> | undefined
  let partitionLock: Promise<unknown> = Promise.resolve()
  let lastLogPrune = 0

  async function withClient<T>(fn: (client: PgPoolClient) => Promise<T>): Promise<T> {
    let client: PgPoolClient
    try {
      client = await pool.connect()
    } catch (cause) {
      throw wrapError('could not connect', cause)
    }
    let broken: unknown
    const onError = (e: Error) => {
      broken = e
    }
    client.on('error', onError)
    try {
      return await fn(client)
    } catch (cause) {
      if (isBroken(codeOf(cause))) broken ??= cause
      throw cause
    } finally {
      client.removeListener('error', onError as (...args: never[]) => void)
      client.release(broken instanceof Error ? broken : broken === undefined ? undefined : true)
    }
  }

  /** Runs `fn` in one transaction on one connection. */
  async function transaction<T>(
    what: string,
    fn: (client: PgPoolClient) => Promise<T>,
  ): Promise<T> {
    try {
      return await withClient(async (client) => {
        await client.query('BEGIN')
        try {
          const out = await fn(client)
          await client.query('COMMIT')
          return out
        } catch (cause) {
          await client.query('ROLLBACK').catch(() => undefined)
          throw cause
        }
      })
    } catch (cause) {
      if (cause instanceof MissingPartitions) throw cause
      throw wrapError(`${what} failed`, cause)
    }
  }

  /**
   * Creates the partitions of `days` that do not exist yet (with `ahead`, also of the day after
   * each: a day's batches prepare the next day before it starts).
   */
  function ensureDays(days: Iterable<number>, ahead = true): Promise<void> {
    const list = [...days]
    const missing = partitions.missing(ahead ? [...list, ...list.map((d) => d + 1)] : list)
    if (missing.length === 0) return Promise.resolve()
    const run = partitionLock.then(async () => {
      const todo = partitions.missing(missing)
      if (todo.length === 0) return
      await transaction('creating partitions', async (client) => {
        await partitions.create(client, todo)
      })
    })
    partitionLock = run.catch(() => undefined)
    return run
  }

  async function prepare(): Promise<void> {
    await withClient(async (client) => {
      try {
        await migrate(client, schema, partitions, {
          backfill: (c) => writer.backfill(c),
        })
        await partitions.load(client)
      } catch (cause) {
        throw wrapError(`could not prepare schema ${schema}`, cause)
      }
    })
    const today = dayOf(now())
    await ensureDays(
      Array.from({ length: ahead + 1 }, (_, i) => today + i),
      false,
    )
  }

  function init(): Promise<void> {
    if (!ready) {
      ready = prepare()
      ready.catch(() => {
        ready = undefined
      })
    }
    return ready
  }

  async function writable(): Promise<void> {
    if (closed) throw new PgStoreError('STORE_CLOSED', 'the store is closed')
    await init()
  }

  async function readable(): Promise<Reader> {
    if (closed && owned) throw new PgStoreError('STORE_CLOSED', 'the store is closed')
    await init()
    return reader
  }

  /**
   * The announcement of what a transaction added: a change log row and a `NOTIFY`, written in the
   * transaction (so only committed data is announced) by the writer's last statement.
   */
  function announcement(r: WriteResult): Announcement | undefined {
    if (!notify) return undefined
    if (r.packets.length === 0 && r.receptions.length === 0 && r.undecoded.length === 0) {
      return undefined
    }
    const change: Record<string, unknown> = { v: 1, d: r.days }
    if (r.packets.length > 0) change.p = toRanges(r.packets)
    if (r.receptions.length > 0) change.r = toRanges(r.receptions)
    if (r.undecoded.length > 0) change.u = toRanges(r.undecoded)
    if (r.receivedAt) change.t = r.receivedAt
    return { channel, at: now(), payload: JSON.stringify(change) }
  }

  async function pruneChangeLog(): Promise<void> {
    if (!notify) return
    const t = now()
    if (t - lastLogPrune < 60_000) return
    lastLogPrune = t
    try {
      await pool.query({
        text: `DELETE FROM ${s}.changes WHERE at < $1`,
        values: [t - changeLogMs],
      })
    } catch {
      // Retried a minute later; the log is only for feeds catching up.
    }
  }

  /** Writes in a transaction, creating missing partitions and retrying (at most twice). */
  async function writeTx(
    what: string,
    days: number[],
    fn: (client: PgPoolClient) => Promise<WriteResult>,
  ): Promise<WriteResult> {
    await ensureDays(days)
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await transaction(what, fn)
        writer.committed()
        return result
      } catch (cause) {
        writer.rolledBack()
        if (attempt >= 2) throw wrapError(what, cause)
        if (cause instanceof MissingPartitions) {
          await ensureDays(cause.days)
          continue
        }
        if (cause instanceof PgStoreError && cause.code === '23514') {
          // Another process dropped a partition this one thought was there.
          await withClient((c) => partitions.load(c))
          continue
        }
        throw cause
      }
    }
  }

  async function pruneAll(scheduled: boolean): Promise<PgRetentionResult> {
    const started = performance.now()
    const result: PgRetentionResult = {
      deleted: {},
      droppedPartitions: [],
      skipped: false,
      durationMs: 0,
    }
    await writable()
    const chunk = Math.max(1, Math.floor(retention?.chunkSize ?? 5000))
    const t = now()
    const lockKey = [LOCK_SPACE, hash32(`${schema}:retention`)]
    await withClient(async (client) => {
      if (scheduled) {
        const { rows } = await client.query({
          text: 'SELECT pg_try_advisory_lock($1, $2) AS locked',
          values: lockKey,
        })
        if (!(rows[0] as { locked: boolean }).locked) {
          result.skipped = true
          return
        }
      } else {
        await client.query({ text: 'SELECT pg_advisory_lock($1, $2)', values: lockKey })
      }
      try {
        const concurrently = (await serverVersion(client)) >= 140_000
        await partitions.load(client)
        const packetsWindow = retentionWindowMs(retention, 'packets')
        const packetsCutoff = packetsWindow === undefined ? undefined : dayOf(t - packetsWindow)
        for (const [key, table] of PARTITIONED) {
          if (closed) break
          const w = retentionWindowMs(retention, key)
          const own = w === undefined ? undefined : dayOf(t - w)
          const cutoff =
            own === undefined
              ? packetsCutoff
              : Math.max(own, packetsCutoff ?? Number.MIN_SAFE_INTEGER)
          if (cutoff === undefined) continue
          for (const p of partitions.list()) {
            if (p.table !== table || p.end > cutoff) continue
            const qualified = `${s}.${ident(p.name)}`
            try {
              if (!p.detachPending) {
                const { rows } = await client.query({
                  text: `SELECT count(*) AS n FROM ${qualified}`,
                  types: TYPES,
                })
                result.deleted[key] =
                  (result.deleted[key] ?? 0) + Number((rows[0] as { n: number }).n)
              }
              await client.query(`SET lock_timeout = ${lockTimeoutMs}`)
              if (p.detachPending) {
                await client.query(
                  `ALTER TABLE ${s}.${ident(table)} DETACH PARTITION ${qualified} FINALIZE`,
                )
              } else if (concurrently) {
                await client.query(
                  `ALTER TABLE ${s}.${ident(table)} DETACH PARTITION ${qualified} CONCURRENTLY`,
                )
              }
              await client.query(`DROP TABLE ${qualified}`)
              result.droppedPartitions.push(`${schema}.${p.name}`)
              partitions.forget(table, p.name)
            } catch (cause) {
              throw wrapError(`retention: dropping ${schema}.${p.name} failed`, cause)
            } finally {
              await client.query('SET lock_timeout = 0').catch(() => undefined)
            }
          }
        }
        if (packetsCutoff !== undefined && !closed) {
          let total = 0
          for (;;) {
            const res = await client.query({
              text: `DELETE FROM ${s}.packets WHERE id IN (SELECT id FROM ${s}.packets
                WHERE received_at < $1 AND day < $2 ORDER BY received_at LIMIT $3)`,
              values: [packetsCutoff * DAY, packetsCutoff, chunk],
            })
            const n = res.rowCount ?? 0
            total += n
            if (n > 0) writer.forgetRefs()
            if (n < chunk || closed) break
          }
          if (total > 0) result.deleted.packets = total
        }
        for (const [key, table, time, keys] of DELETED) {
          const w = retentionWindowMs(retention, key)
          if (w === undefined || closed) continue
          let total = 0
          for (;;) {
            const res = await client.query({
              text: `DELETE FROM ${s}.${table} WHERE (${keys}) IN (SELECT ${keys} FROM ${s}.${table}
                WHERE ${time} < $1 ORDER BY ${time} LIMIT $2)`,
              values: [t - w, chunk],
            })
            const n = res.rowCount ?? 0
            total += n
            if (n < chunk || closed) break
          }
          if (total > 0) result.deleted[key] = total
        }
        if (notify) {
          await client.query({
            text: `DELETE FROM ${s}.changes WHERE at < $1`,
            values: [t - changeLogMs],
          })
        }
      } finally {
        await client
          .query({ text: 'SELECT pg_advisory_unlock($1, $2)', values: lockKey })
          .catch(() => undefined)
      }
    })
    result.durationMs = performance.now() - started
    return result
  }

  function runRetention(scheduled: boolean): Promise<PgRetentionResult> {
    if (retentionRun) return retentionRun
    const run = (async () => {
      if (!retention) {
        return { deleted: {}, droppedPartitions: [], skipped: false, durationMs: 0 }
      }
      try {
        return await pruneAll(scheduled)
      } catch (cause) {
        throw wrapError('retention failed', cause)
      }
    })()
    retentionRun = run.finally(() => {
      retentionRun = undefined
    })
    return retentionRun
  }

  function schedule(): void {
    if (!retention || timer || closed) return
    const interval = retention.intervalMs ?? 3_600_000
    if (interval === false || interval <= 0) return
    const tick = () => {
      timer = setTimeout(tick, interval)
      timer.unref?.()
      runRetention(true).catch(() => {
        // Reported by the next explicit call; a scheduled run never crashes the process.
      })
    }
    timer = setTimeout(tick, Math.min(interval, 60_000))
    timer.unref?.()
  }

  const store: PgStore = {
    name,
    pool,
    schema,
    channel,

    async init() {
      if (closed) throw new PgStoreError('STORE_CLOSED', 'the store is closed')
      await init()
      schedule()
    },

    async writeBatch(batch: WriteBatch) {
      if (
        !batch ||
        !Array.isArray(batch.packets) ||
        !Array.isArray(batch.receptions) ||
        !Array.isArray(batch.undecoded)
      ) {
        throw new PgStoreError(
          'INVALID_BATCH',
          'a batch needs packets, receptions and undecoded arrays',
        )
      }
      await writable()
      if (
        batch.packets.length === 0 &&
        batch.receptions.length === 0 &&
        batch.undecoded.length === 0
      ) {
        return
      }
      await writeTx('writing a batch', writer.daysOf(batch), (client) =>
        writer.write(client, batch, announcement),
      )
      await pruneChangeLog()
    },

    async getPacket(key) {
      return (await readable()).getPacket(key)
    },
    async getReceptions(key) {
      return (await readable()).getReceptions(key)
    },
    async counts(): Promise<StoreCounts> {
      return (await readable()).counts()
    },

    listNodes: async (q) => (await readable()).listNodes(q),
    getNode: async (n) => (await readable()).getNode(n),
    listPositions: async (q) => (await readable()).listPositions(q),
    listTelemetry: async (q) => (await readable()).listTelemetry(q),
    listMessages: async (q) => (await readable()).listMessages(q),
    listPackets: async (q) => (await readable()).listPackets(q),
    listReceptions: async (q) => (await readable()).listReceptions(q),
    listTraceroutes: async (q) => (await readable()).listTraceroutes(q),
    gatewayStats: async (q) => (await readable()).gatewayStats(q),
    links: async (q) => (await readable()).links(q),

    async redecrypt(decode, opts = {}) {
      await writable()
      if (typeof decode !== 'function') {
        throw new PgStoreError(
          'INVALID_OPTIONS',
          'redecrypt needs a decode function, e.g. createCodec({ keys }).decode',
        )
      }
      const chunk = Math.max(1, Math.floor(opts.chunkSize ?? 500))
      const result: PgRedecryptResult = { scanned: 0, decoded: 0, failed: 0 }
      let lastDay = -2_147_483_648
      let lastId = 0
      for (;;) {
        if (closed) break
        let rows: {
          id: number
          day: number
          packet_ref: number
          received_at: number
          ciphertext: Uint8Array | null
          failure: string
          key: string
        }[]
        try {
          const res = await pool.query({
            text: `SELECT u.id, u.day, u.packet_ref, u.received_at, u.ciphertext, u.failure, p.key
              FROM ${s}.undecoded u JOIN ${s}.packets p ON p.id = u.packet_ref
              WHERE (u.day, u.id) > ($1, $2) ORDER BY u.day, u.id LIMIT $3`,
            values: [lastDay, lastId, chunk],
            types: TYPES,
          })
          rows = res.rows as typeof rows
        } catch (cause) {
          throw wrapError('redecrypt: reading undecoded packets failed', cause)
        }
        if (rows.length === 0) break
        const found: { ref: number; day: number; packet: StoredPacket }[] = []
        for (const row of rows) {
          lastDay = row.day
          lastId = row.id
          result.scanned++
          const header = (JSON.parse(row.failure) as { packet: PartialPacket }).packet
          if (!row.ciphertext) {
            result.failed++
            continue
          }
          const ciphertext = new Uint8Array(row.ciphertext)
          const kind =
            header.kind === 'meshpacket'
              ? 'meshpacket'
              : header.kind === 'mapreport'
                ? 'mapreport'
                : 'envelope'
          const message: RawMessage = {
            kind,
            payload:
              kind === 'meshpacket'
                ? encodeMeshPacket(header, ciphertext)
                : encodeEnvelope(header, ciphertext),
          }
          if (header.topic !== undefined) message.topic = header.topic
          let r: Result<DecodedPacket, DecodeFailure>
          try {
            r = decode(message)
          } catch {
            result.failed++
            continue
          }
          if (r.ok) {
            found.push({
              ref: row.packet_ref,
              day: row.day,
              packet: { key: row.key, packet: r.value, receivedAt: row.received_at },
            })
          } else result.failed++
        }
        if (found.length > 0) {
          await writeTx(
            'storing re-decrypted packets',
            found.map((f) => f.day),
            async (client) => {
              const r = await writer.writePackets(
                client,
                found.map((f) => f.packet),
                announcement,
              )
              await client.query({
                text: `DELETE FROM ${s}.undecoded WHERE (day, packet_ref) IN
                  (SELECT * FROM unnest($1::int[], $2::bigint[]))`,
                values: [found.map((f) => f.day), found.map((f) => f.ref)],
              })
              return r
            },
          )
          result.decoded += found.length
        }
      }
      return result
    },

    runRetention() {
      return runRetention(false)
    },

    async schemaVersion() {
      await readable()
      return withClient((client) => schemaVersion(client, schema))
    },

    async partitions() {
      await readable()
      await withClient((client) => partitions.load(client))
      return partitions
        .list()
        .filter((p) => !p.detachPending)
        .sort((a, b) => a.start - b.start || a.table.localeCompare(b.table))
        .map((p) => ({ table: p.table, name: p.name, from: p.start * DAY, to: p.end * DAY }))
    },

    async close() {
      if (closed) return
      closed = true
      if (timer) clearTimeout(timer)
      timer = undefined
      if (retentionRun) await retentionRun.catch(() => undefined)
      if (owned) await pool.end().catch(() => undefined)
    },
  }
  return store
}

export { SCHEMA_VERSION }
