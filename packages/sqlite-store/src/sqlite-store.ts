import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
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
import { type CheckpointStats, noCheckpoints } from './checkpointer.js'
import type { SqliteDatabase } from './database.js'
import {
  createWriteEngine,
  type EngineOptions,
  type Recovered,
  tick,
  type WriteEngine,
} from './engine.js'
import { SqliteStoreError, wrapError } from './errors.js'
import { migrate, SCHEMA_VERSION, schemaVersion } from './migrations.js'
import { createReader, type Reader } from './reader.js'
import { startWriterThread, type WriterThread } from './thread-client.js'
import { createWriter } from './writer.js'

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
  /**
   * Write on a worker thread with its own connection to the file: batches, the derived state,
   * retention and re-decrypted packets are committed there, while this thread (the pipeline, the
   * reads) goes on. `writeBatch` resolves when the thread has committed the batch. It frees the
   * event loop from commits and checkpoints and lets a collector use a second core; each batch is
   * copied to the thread (structured clone), which costs this thread a little per record. The store
   * then declares `writeConcurrency: 2`: an ingest hands over the next batch while the thread
   * commits the last one, so building batches and committing them overlap. Needs a
   * database file (a `path`, or a file-backed `database`), not for `readonly` stores.
   * @default false
   */
  writerThread?: boolean
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
   * and the error if it failed (the writer then checkpoints alone; nothing is lost). With
   * `writerThread`, the worker belongs to the writer thread: the figures are those of its last answer.
   */
  checkpointStats(): CheckpointStats
}

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
  const threaded = options.writerThread === true && !readonly

  // The write side: on this connection (`engine`), or on the writer thread's (`thread`).
  let engine: WriteEngine | undefined
  let thread: WriterThread | undefined
  let reader: Reader | undefined
  let closed = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let retentionRun: Promise<RetentionResult> | undefined

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

  function tableCount(): number {
    return (
      db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as {
        n: number
      }
    ).n
  }

  function engineOptions(): EngineOptions {
    // On one core the checkpoint worker would only compete with the writer.
    const every = options.backgroundCheckpointMs ?? (availableParallelism() > 1 ? 100 : false)
    const o: EngineOptions = {
      stateFlushMs: Math.max(0, options.stateFlushMs ?? 1000),
      checkpointMs: every,
    }
    if (options.keyCacheSize !== undefined) o.keyCacheSize = options.keyCacheSize
    if (retention) o.retention = retention
    return o
  }

  /** The writer thread's connection is set up like this one, whoever configured it. */
  function threadPragmas(): string[] {
    const get = (p: string) => db.pragma(p, { simple: true })
    return [
      `busy_timeout = ${Number(get('busy_timeout'))}`,
      `cache_size = ${Number(get('cache_size'))}`,
      `synchronous = ${Number(get('synchronous'))}`,
      'foreign_keys = ON',
      `wal_autocheckpoint = ${Number(get('wal_autocheckpoint'))}`,
      `journal_size_limit = ${Number(get('journal_size_limit'))}`,
    ]
  }

  function ready(): Reader {
    if (reader) return reader
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
        if (threaded) {
          if (db.memory || !db.name) {
            throw new SqliteStoreError(
              'INVALID_OPTIONS',
              'writerThread needs a database file (a `path`, or a file-backed `database`), not an in-memory database',
            )
          }
          thread = startWriterThread({
            file: resolve(db.name),
            pragmas: threadPragmas(),
            engine: engineOptions(),
          })
        } else {
          engine = createWriteEngine(db, engineOptions())
        }
      }
      reader = createReader(db, now)
    } catch (cause) {
      throw wrapError('could not prepare the database', cause)
    }
    return reader
  }

  function read(): Reader {
    if (closed && owned) throw new SqliteStoreError('STORE_CLOSED', 'the store is closed')
    return ready()
  }

  /** Checks that the store can write and prepares it. */
  function writable(): void {
    if (closed) throw new SqliteStoreError('STORE_CLOSED', 'the store is closed')
    if (readonly) throw new SqliteStoreError('READ_ONLY', 'the store is read-only')
    ready()
  }

  /** Reads of derived state see every committed batch. */
  async function fresh(): Promise<Reader> {
    const r = read()
    if (closed) return r
    if (engine?.hasPendingState) engine.flushState()
    else if (thread?.pending) await thread.call({ type: 'flush' })
    return r
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
    // The thread commits its requests one after another, in the order they were posted: a pipeline
    // may post the next batch while it commits this one.
    writeConcurrency: threaded ? 2 : 1,
    get database() {
      return db
    },

    async init() {
      if (closed) throw new SqliteStoreError('STORE_CLOSED', 'the store is closed')
      ready()
      // The writer thread opens its connection now, so a file it cannot open fails here.
      if (thread) await thread.call({ type: 'flush' })
      schedule()
    },

    async writeBatch(batch: WriteBatch) {
      writable()
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
      if (thread) await thread.call({ type: 'batch', batch })
      else engine?.writeBatch(batch)
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

    listNodes: async (q) => (await fresh()).listNodes(q),
    getNode: async (n) => (await fresh()).getNode(n),
    listPositions: async (q) => read().listPositions(q),
    listTelemetry: async (q) => read().listTelemetry(q),
    listMessages: async (q) => read().listMessages(q),
    listPackets: async (q) => read().listPackets(q),
    listReceptions: async (q) => read().listReceptions(q),
    listTraceroutes: async (q) => read().listTraceroutes(q),
    gatewayStats: async (q) => read().gatewayStats(q),
    links: async (q) => (await fresh()).links(q),

    async redecrypt(decode, opts = {}) {
      writable()
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
        const found: Recovered[] = []
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
          if (thread) await thread.call({ type: 'recovered', found })
          else engine?.storeRecovered(found)
          result.decoded += found.length
        }
        await tick()
      }
      return result
    },

    runRetention() {
      if (retentionRun) return retentionRun
      const run = (async (): Promise<RetentionResult> => {
        if (!retention) return { deleted: {}, vacuumedPages: 0, durationMs: 0 }
        writable()
        if (thread) return (await thread.call({ type: 'prune', now: now() })) as RetentionResult
        return (engine as WriteEngine).prune(now())
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
      if (thread) return thread.checkpointStats()
      return engine?.checkpointStats() ?? noCheckpoints()
    },

    async close() {
      if (closed) return
      closed = true
      if (timer) clearTimeout(timer)
      timer = undefined
      if (retentionRun) await retentionRun.catch(() => undefined)
      try {
        // Pending state is written, and the writer's connection closes before this one.
        await engine?.close()
        await thread?.close()
      } finally {
        if (owned && db.open) db.close()
      }
    },
  }
  return store
}
