import { availableParallelism } from 'node:os'
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
  StoreQueries,
  WriteBatch,
} from '@meshtap/protocol'
import { encodeEnvelope, encodeMeshPacket } from '@meshtap/protocol/store-kit'
import BetterSqlite3 from 'better-sqlite3'
import { type Checkpointer, type CheckpointStats, startCheckpointer } from './checkpointer.js'
import type { SqliteDatabase } from './database.js'
import { SqliteStoreError, wrapError } from './errors.js'
import { migrate, SCHEMA_VERSION, schemaVersion } from './migrations.js'
import { createReader, type Reader } from './reader.js'
import { createWriter, type Writer } from './writer.js'

/**
 * The tables retention prunes, each by its own window:
 * `receptions`, `undecoded`, `positions`, `telemetry`, `messages`, `traceroutes`, `neighbors`,
 * `mapReports`, `waypoints` (by when they were received), `links` and `neighborLinks` (the link
 * graph's direct and reported edges, by when last seen),
 * `nodeTelemetry` (a node's latest report per variant), `nodes` (by when last heard), and
 * `packets` last — deleting a packet deletes every row that hangs off it.
 *
 * @example
 * const t: RetentionTable = 'telemetry'
 */
export type RetentionTable =
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
 * createSqliteStore({ path: 'mesh.db', retention: { defaultMs: 30 * 86_400_000, windows: { receptions: 7 * 86_400_000 } } })
 */
export interface RetentionOptions {
  /**
   * The window of every table without its own entry in `windows`, in ms.
   * @default 7776000000 (90 days)
   */
  defaultMs?: number
  /**
   * Per-table windows in ms, or `false` to keep a table's rows forever. A row that hangs off a
   * packet also goes when its packet goes, so a child window longer than `packets` has no effect.
   */
  windows?: Partial<Record<RetentionTable, number | false>>
  /**
   * How often retention runs on its own (the timer is unref'd: it never keeps the process alive).
   * The first run is `min(intervalMs, 60 s)` after `init()`. `false`: only when `runRetention()` is called.
   * @default 3600000 (1 hour)
   */
  intervalMs?: number | false
  /**
   * Rows deleted per statement. Each chunk is its own short transaction and the event loop runs
   * between chunks, so a batch write never waits for more than one chunk.
   * @default 5000
   */
  chunkSize?: number
  /**
   * After pruning, give free pages back to the file system with `PRAGMA incremental_vacuum`, in
   * chunks. Only for files created by this store (they use `auto_vacuum = INCREMENTAL`). Without
   * it the file stops growing anyway: SQLite reuses the freed pages.
   * @default false
   */
  incrementalVacuum?: boolean
}

/**
 * Options of {@link createSqliteStore}: a `database` the application opened, or a `path` for the
 * store to open (and close).
 *
 * @example
 * createSqliteStore({ database: new Database('mesh.db') })
 * createSqliteStore({ path: 'mesh.db', retention: { defaultMs: 30 * 86_400_000 } })
 */
export interface SqliteStoreOptions {
  /** An open `better-sqlite3` database. The store configures it (WAL, …) but never closes it. */
  database?: SqliteDatabase
  /** A file for the store to open with `better-sqlite3` (and to close in `close()`). */
  path?: string
  /** Name reported in errors and metrics. @default 'sqlite' */
  name?: string
  /**
   * Only read: no migrations, no pragmas that write, no retention; writes reject. For a second
   * process (a web server) reading the file a collector writes.
   * @default false
   */
  readonly?: boolean
  /**
   * Set the connection up for a collector: `journal_mode = WAL`, `synchronous = NORMAL`,
   * `foreign_keys = ON`, `busy_timeout`, `cache_size`, `wal_autocheckpoint`, `journal_size_limit`.
   * Set `false` if the application configures the connection itself (foreign keys must be on).
   * @default true
   */
  configure?: boolean
  /** How long a write waits for another connection's lock before failing with `SQLITE_BUSY`. @default 5000 */
  busyTimeoutMs?: number
  /** Page cache size in KiB. @default 65536 (64 MiB) */
  cacheSizeKiB?: number
  /**
   * WAL pages after which a commit checkpoints. Larger means fewer, longer checkpoints (the
   * performance notes measured 2× the write rate at 20 000 vs the default 1 000).
   * @default 10000
   */
  walAutocheckpointPages?: number
  /**
   * Checkpoint the WAL from a worker thread with its own connection, at most once per this many
   * ms while batches commit: the copying of WAL pages into the file moves off the writer's thread
   * (to the other core), and the writer's own checkpoint (`walAutocheckpointPages`) finds little
   * left to copy. `false`: only the writer checkpoints. Only for a WAL file, not for `readonly` or
   * in-memory databases. See {@link SqliteStore.checkpointStats}.
   * @default 100 (`false` on a machine with one core)
   */
  backgroundCheckpointMs?: number | false
  /** Retention, or `false` to keep everything forever. @default 90 days for every table, hourly */
  retention?: RetentionOptions | false
  /**
   * How often the state derived from packets (each node's latest state, gateway counters, inferred
   * links, latest telemetry per node) is written: it is gathered in memory and written in the
   * transaction of the first batch after this interval, as one upsert per node. `0` writes it with
   * every batch. Reads of nodes and links through this store, and `close()`, write it first; other
   * connections see it at most this late, and a crash loses at most this much of it (never a
   * packet or a reception).
   * @default 1000
   */
  stateFlushMs?: number
  /** Packet keys whose row ids the writer remembers (most copies refer to recent packets). @default 100000 */
  keyCacheSize?: number
  /** Clock (Unix ms), for tests. @default Date.now */
  now?: () => number
}

// RedecryptDecode, RedecryptOptions and RedecryptResult: the shared contract in @meshtap/protocol.
export type { RedecryptDecode, RedecryptOptions, RedecryptResult } from '@meshtap/protocol'

/**
 * What one retention run deleted.
 *
 * @example
 * const { deleted } = await store.runRetention()
 */
export interface RetentionResult {
  /** Rows deleted per table (directly; rows deleted through a packet's cascade are not counted). */
  deleted: Partial<Record<RetentionTable, number>>
  /** Pages returned to the file system by `incremental_vacuum`. */
  vacuumedPages: number
  durationMs: number
}

/**
 * The SQLite store: the `Store` contract, the `StoreQueries` lists, re-decryption of
 * kept ciphertext and retention.
 *
 * @example
 * const store = createSqliteStore({ path: 'mesh.db' })
 * const { items } = await store.listNodes({ since: Date.now() - 3_600_000 })
 */
export interface SqliteStore extends Store, StoreQueries {
  /** The connection the store uses (its own, or the one it was given). */
  readonly database: SqliteDatabase
  /** Migrates the file (forward only), prepares statements and starts the retention timer. */
  init(): Promise<void>
  /**
   * Stops the retention timer and refuses writes. Closes the database only if the store opened it
   * (`path`); a database it was given stays open and readable. Harmless twice.
   */
  close(): Promise<void>
  /**
   * Runs `decode` again over every kept ciphertext (after a channel key was added) and moves the
   * packets that now decode into the normal tables: the packet, its typed rows and node state; its
   * receptions were already stored. Packets that still do not decode stay where they are.
   */
  redecrypt(decode: RedecryptDecode, options?: RedecryptOptions): Promise<RedecryptResult>
  /** Prunes every table to its window now (also runs on the schedule). */
  runRetention(): Promise<RetentionResult>
  /** The schema version of the file. */
  schemaVersion(): number
  /**
   * What the background checkpoint worker did (`backgroundCheckpointMs`): runs, WAL pages copied,
   * and the error if it failed (the writer then checkpoints alone; nothing is lost).
   */
  checkpointStats(): CheckpointStats
}

const DAY = 86_400_000

const RETENTION_TABLES: readonly (readonly [RetentionTable, string, string, string])[] = [
  ['receptions', 'receptions', 'received_at', 'id'],
  ['undecoded', 'undecoded', 'received_at', 'id'],
  ['positions', 'positions', 'received_at', 'packet_ref'],
  ['telemetry', 'telemetry', 'received_at', 'packet_ref'],
  ['messages', 'messages', 'received_at', 'packet_ref'],
  ['traceroutes', 'traceroutes', 'received_at', 'id'],
  ['neighbors', 'neighbors', 'received_at', '(packet_ref, neighbor)'],
  ['mapReports', 'map_reports', 'received_at', 'packet_ref'],
  ['waypoints', 'waypoints', 'received_at', 'packet_ref'],
  ['links', 'links', 'last_seen', '(node, gw)'],
  ['neighborLinks', 'neighbor_links', 'last_seen', '(node, neighbor)'],
  ['nodeTelemetry', 'node_telemetry', 'at', '(num, variant)'],
  ['nodes', 'nodes', 'last_heard', 'num'],
  ['packets', 'packets', 'received_at', 'id'],
]

const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * Creates the SQLite store. Give it a `better-sqlite3` database your application opened, or a
 * `path` for the store to open.
 *
 * - Writes: one `BEGIN IMMEDIATE` transaction per batch, idempotent (unique keys with
 *   `ON CONFLICT DO NOTHING`), WAL so readers on other connections never block the writer.
 * - Errors keep SQLite's `code` (`SQLITE_BUSY`, `SQLITE_FULL`, …), which the ingest pipeline retries.
 * - Reads: the `StoreQueries` of `@meshtap/protocol`, with keyset cursors.
 *
 * @example
 * import Database from 'better-sqlite3'
 * import { createIngest } from '@meshtap/core'
 * import { createSqliteStore } from '@meshtap/sqlite-store'
 *
 * const store = createSqliteStore({ database: new Database('mesh.db') })
 * const ingest = createIngest({ sources: [source], store })
 * await ingest.start()
 */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  if (!options || (options.database === undefined) === (options.path === undefined)) {
    throw new SqliteStoreError(
      'INVALID_OPTIONS',
      'createSqliteStore needs exactly one of `database` (an open better-sqlite3 Database) or `path`',
    )
  }
  const name = options.name ?? 'sqlite'
  const readonly = options.readonly ?? false
  const now = options.now ?? Date.now
  const owned = options.database === undefined
  let db: SqliteDatabase
  try {
    db =
      options.database ??
      (new BetterSqlite3(
        options.path as string,
        readonly ? { readonly: true, fileMustExist: true } : {},
      ) as unknown as SqliteDatabase)
  } catch (cause) {
    throw wrapError(`could not open ${options.path}`, cause)
  }
  const retention = options.retention === false ? undefined : (options.retention ?? {})

  let writer: Writer | undefined
  let reader: Reader | undefined
  let closed = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let retentionRun: Promise<RetentionResult> | undefined
  const stateFlushMs = Math.max(0, options.stateFlushMs ?? 1000)
  let lastStateWrite = performance.now()
  let stateTimer: ReturnType<typeof setTimeout> | undefined
  let checkpointer: Checkpointer | undefined

  function configure(): void {
    if (options.configure === false) {
      if (!readonly) db.pragma('foreign_keys = ON')
      return
    }
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`)
    db.pragma(`cache_size = -${Math.max(1024, Math.floor(options.cacheSizeKiB ?? 65_536))}`)
    if (readonly) return
    if (schemaVersion(db) === 0 && tableCount() === 0) db.pragma('auto_vacuum = INCREMENTAL')
    if (!db.memory) db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('foreign_keys = ON')
    db.pragma(
      `wal_autocheckpoint = ${Math.max(0, Math.floor(options.walAutocheckpointPages ?? 10_000))}`,
    )
    db.pragma('journal_size_limit = 67108864')
  }

  /** Starts the checkpoint worker for a WAL file (see `backgroundCheckpointMs`). */
  function startCheckpoints(): void {
    // On one core the worker would only compete with the writer.
    const every = options.backgroundCheckpointMs ?? (availableParallelism() > 1 ? 100 : false)
    if (every === false || checkpointer || db.memory || !db.name) return
    if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') return
    checkpointer = startCheckpointer(db.name, every)
  }

  function tableCount(): number {
    return (
      db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as {
        n: number
      }
    ).n
  }

  function ready(): { writer: Writer | undefined; reader: Reader } {
    if (reader) return { writer, reader }
    if (!db.open) throw new SqliteStoreError('STORE_CLOSED', 'the database is closed')
    try {
      configure()
      if (readonly) {
        const v = schemaVersion(db)
        if (v > SCHEMA_VERSION) {
          throw new SqliteStoreError(
            'SCHEMA_TOO_NEW',
            `the database is at schema version ${v}, newer than this @meshtap/sqlite-store understands (${SCHEMA_VERSION})`,
          )
        }
        if (v < SCHEMA_VERSION) {
          throw new SqliteStoreError(
            'SCHEMA_TOO_OLD',
            `the database is at schema version ${v}; open it once with a writable store to migrate it to ${SCHEMA_VERSION}`,
          )
        }
      } else {
        migrate(db, { backfill: (d) => createWriter(d).backfill() })
        writer = createWriter(db, options.keyCacheSize)
        startCheckpoints()
      }
      reader = createReader(db, now)
    } catch (cause) {
      throw wrapError('could not prepare the database', cause)
    }
    return { writer, reader }
  }

  function read(): Reader {
    if (closed && owned) throw new SqliteStoreError('STORE_CLOSED', 'the store is closed')
    return ready().reader
  }

  function write(): Writer {
    if (closed) throw new SqliteStoreError('STORE_CLOSED', 'the store is closed')
    if (readonly) throw new SqliteStoreError('READ_ONLY', 'the store is read-only')
    return ready().writer as Writer
  }

  /**
   * Runs `fn` in one immediate transaction, then (with `state`) writes the derived state of every
   * record committed so far. On failure rolls back and forgets the transaction's state and ids.
   */
  function transaction<T>(w: Writer, what: string, state: boolean, fn: () => T): T {
    try {
      db.exec('BEGIN IMMEDIATE')
    } catch (cause) {
      throw wrapError(`${what}: could not begin a transaction`, cause)
    }
    let out: T
    try {
      out = fn()
      if (state) w.writeState()
      db.exec('COMMIT')
    } catch (cause) {
      try {
        if (db.inTransaction) db.exec('ROLLBACK')
      } finally {
        w.rolledBack()
      }
      throw wrapError(`${what} failed`, cause)
    }
    w.committed(state)
    checkpointer?.notify()
    if (state) {
      lastStateWrite = performance.now()
      if (stateTimer) clearTimeout(stateTimer)
      stateTimer = undefined
    } else if (w.hasPendingState && !stateTimer) {
      stateTimer = setTimeout(() => {
        stateTimer = undefined
        try {
          writePendingState()
        } catch {
          // Retried by the next batch, read or close.
        }
      }, stateFlushMs)
      stateTimer.unref?.()
    }
    return out
  }

  /** Writes the node, link and gateway state of committed batches, if any is pending. */
  function writePendingState(): void {
    if (!writer?.hasPendingState || !db.open) return
    transaction(writer, 'writing node state', true, () => undefined)
  }

  /** Reads of derived state see every committed batch. */
  function fresh(): Reader {
    const r = read()
    if (!closed && writer?.hasPendingState) writePendingState()
    return r
  }

  function windowOf(table: RetentionTable): number | undefined {
    const w = retention?.windows?.[table]
    if (w === false) return undefined
    return w ?? retention?.defaultMs ?? 90 * DAY
  }

  async function pruneAll(): Promise<RetentionResult> {
    const started = performance.now()
    const w = write()
    // State still in memory would bring pruned nodes and links back after the run.
    writePendingState()
    const chunk = Math.max(1, Math.floor(retention?.chunkSize ?? 5000))
    const deleted: Partial<Record<RetentionTable, number>> = {}
    const t = now()
    for (const [key, table, time, id] of RETENTION_TABLES) {
      const windowMs = windowOf(key)
      if (windowMs === undefined) continue
      const cutoff = t - windowMs
      const del = db.prepare(
        `DELETE FROM ${table} WHERE ${id} IN (SELECT ${id.replace(/[()]/g, '')} FROM ${table} WHERE ${time} < ? ORDER BY ${time} LIMIT ?)`,
      )
      let total = 0
      for (;;) {
        if (closed) break
        let n: number
        try {
          n = del.run(cutoff, chunk).changes
        } catch (cause) {
          throw wrapError(`retention of ${table} failed`, cause)
        }
        total += n
        if (n > 0) checkpointer?.notify()
        if (key === 'packets' && n > 0) w.forgetIds()
        if (n < chunk) break
        await tick()
      }
      if (total > 0) deleted[key] = total
      await tick()
    }
    let vacuumedPages = 0
    if (
      retention?.incrementalVacuum &&
      !closed &&
      Number(db.pragma('auto_vacuum', { simple: true })) === 2
    ) {
      for (;;) {
        const free = Number(db.pragma('freelist_count', { simple: true }))
        if (free === 0 || closed) break
        const step = Math.min(free, 2000)
        db.pragma(`incremental_vacuum(${step})`)
        vacuumedPages += step
        await tick()
      }
    }
    return { deleted, vacuumedPages, durationMs: performance.now() - started }
  }

  function schedule(): void {
    if (!retention || readonly || timer || closed) return
    const interval = retention.intervalMs ?? 3_600_000
    if (interval === false || interval <= 0) return
    const run = () => {
      timer = setTimeout(run, interval)
      timer.unref?.()
      store.runRetention().catch(() => {
        // Reported by the next explicit call; a scheduled run never crashes the process.
      })
    }
    timer = setTimeout(run, Math.min(interval, 60_000))
    timer.unref?.()
  }

  const store: SqliteStore = {
    name,
    get database() {
      return db
    },

    async init() {
      if (closed) throw new SqliteStoreError('STORE_CLOSED', 'the store is closed')
      ready()
      schedule()
    },

    async writeBatch(batch: WriteBatch) {
      const w = write()
      if (
        !batch ||
        !Array.isArray(batch.packets) ||
        !Array.isArray(batch.receptions) ||
        !Array.isArray(batch.undecoded)
      ) {
        throw new SqliteStoreError(
          'INVALID_BATCH',
          'a batch needs packets, receptions and undecoded arrays',
        )
      }
      const state = stateFlushMs === 0 || performance.now() - lastStateWrite >= stateFlushMs
      transaction(w, 'writing a batch', state, () => w.writeBatch(batch))
    },

    async getPacket(key) {
      return read().getPacket(key)
    },

    async getReceptions(key) {
      return read().getReceptions(key)
    },

    async counts(): Promise<StoreCounts> {
      return read().counts()
    },

    listNodes: async (q) => fresh().listNodes(q),
    getNode: async (n) => fresh().getNode(n),
    listPositions: async (q) => read().listPositions(q),
    listTelemetry: async (q) => read().listTelemetry(q),
    listMessages: async (q) => read().listMessages(q),
    listPackets: async (q) => read().listPackets(q),
    listReceptions: async (q) => read().listReceptions(q),
    listTraceroutes: async (q) => read().listTraceroutes(q),
    gatewayStats: async (q) => read().gatewayStats(q),
    links: async (q) => fresh().links(q),

    async redecrypt(decode, opts = {}) {
      const w = write()
      if (typeof decode !== 'function') {
        throw new SqliteStoreError(
          'INVALID_OPTIONS',
          'redecrypt needs a decode function, e.g. createCodec({ keys }).decode',
        )
      }
      const chunk = Math.max(1, Math.floor(opts.chunkSize ?? 500))
      const select = db.prepare(
        `SELECT u.id, u.packet_ref, u.received_at, u.ciphertext, u.failure, p.key
         FROM undecoded u JOIN packets p ON p.id = u.packet_ref
         WHERE u.id > ? ORDER BY u.id LIMIT ?`,
      )
      const drop = db.prepare('DELETE FROM undecoded WHERE packet_ref = ?')
      const result: RedecryptResult = { scanned: 0, decoded: 0, failed: 0 }
      let last = 0
      for (;;) {
        if (closed) break
        const rows = select.all(last, chunk) as {
          id: number
          packet_ref: number
          received_at: number
          ciphertext: Uint8Array | null
          failure: string
          key: string
        }[]
        if (rows.length === 0) break
        const found: { ref: number; key: string; packet: DecodedPacket; receivedAt: number }[] = []
        for (const row of rows) {
          last = row.id
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
          if (r.ok)
            found.push({
              ref: row.packet_ref,
              key: row.key,
              packet: r.value,
              receivedAt: row.received_at,
            })
          else result.failed++
        }
        if (found.length > 0) {
          transaction(w, 'storing re-decrypted packets', true, () => {
            for (const f of found) {
              w.writePacket({ key: f.key, packet: f.packet, receivedAt: f.receivedAt })
              drop.run(f.ref)
            }
          })
          result.decoded += found.length
        }
        await tick()
      }
      return result
    },

    runRetention() {
      if (retentionRun) return retentionRun
      const run = (async () => {
        if (!retention) return { deleted: {}, vacuumedPages: 0, durationMs: 0 }
        return pruneAll()
      })()
      retentionRun = run.finally(() => {
        retentionRun = undefined
      })
      return retentionRun
    },

    schemaVersion() {
      read()
      return schemaVersion(db)
    },

    checkpointStats() {
      return checkpointer?.stats() ?? { running: false, runs: 0, frames: 0, busy: 0 }
    },

    async close() {
      if (closed) return
      closed = true
      if (timer) clearTimeout(timer)
      timer = undefined
      if (stateTimer) clearTimeout(stateTimer)
      stateTimer = undefined
      if (retentionRun) await retentionRun.catch(() => undefined)
      try {
        writePendingState()
      } finally {
        // The worker's connection goes first: the last connection to close removes the WAL.
        await checkpointer?.close()
        if (owned && db.open) db.close()
      }
    },
  }
  return store
}
