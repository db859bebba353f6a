/**
 * The write side of the store: batches, the derived state written after them, retention and the
 * rows re-decryption recovers, each in its own transaction on one connection. The store runs it
 * on its own connection, or in the writer thread (`writerThread`) on that thread's connection;
 * either way it is the only code that writes.
 * @module
 */
import type { DecodedPacket, WriteBatch } from '@meshtap/protocol'
import { retentionWindowMs } from '@meshtap/protocol/store-kit'
import {
  type Checkpointer,
  type CheckpointStats,
  noCheckpoints,
  startCheckpointer,
} from './checkpointer.js'
import type { SqliteDatabase } from './database.js'
import { SqliteStoreError, wrapError } from './errors.js'
import type { RetentionOptions, RetentionResult, RetentionTable } from './sqlite-store.js'
import { createWriter, type Writer } from './writer.js'

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

/** Lets the event loop run (between chunks of long work). @internal */
export const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

/** A packet re-decryption recovered: its row, key and decoded content. @internal */
export interface Recovered {
  ref: number
  key: string
  packet: DecodedPacket
  receivedAt: number
}

/** What the write side needs to know; every field can cross to a worker thread. @internal */
export interface EngineOptions {
  stateFlushMs: number
  keyCacheSize?: number
  /** Retention settings, or undefined for none. */
  retention?: RetentionOptions
  /** `backgroundCheckpointMs` resolved: an interval, or false for none. */
  checkpointMs: number | false
}

/** The store's write side on one connection. @internal */
export interface WriteEngine {
  /** Writes a batch in one transaction (with the derived state when it is due). */
  writeBatch(batch: WriteBatch): void
  /** Writes the derived state of committed batches, if any is pending. */
  flushState(): void
  /** Whether committed batches changed state that is not written yet. */
  readonly hasPendingState: boolean
  /** Prunes every table to its window, `now` being the current time (one run at a time). */
  prune(now: number): Promise<RetentionResult>
  /** Moves re-decrypted packets from `undecoded` into the normal tables, in one transaction. */
  storeRecovered(found: readonly Recovered[]): void
  checkpointStats(): CheckpointStats
  /** Stops retention, writes pending state, stops the checkpoint worker. Harmless twice. */
  close(): Promise<void>
}

/** Creates the write side on a configured, migrated connection. @internal */
export function createWriteEngine(db: SqliteDatabase, options: EngineOptions): WriteEngine {
  const writer: Writer = createWriter(db, options.keyCacheSize)
  const retention = options.retention
  const stateFlushMs = Math.max(0, options.stateFlushMs)
  let lastStateWrite = performance.now()
  let stateTimer: ReturnType<typeof setTimeout> | undefined
  let closed = false
  let pruning: Promise<RetentionResult> | undefined
  let checkpointer: Checkpointer | undefined
  const drop = db.prepare('DELETE FROM undecoded WHERE packet_ref = ?')

  if (
    options.checkpointMs !== false &&
    !db.memory &&
    db.name &&
    String(db.pragma('journal_mode', { simple: true })).toLowerCase() === 'wal'
  ) {
    checkpointer = startCheckpointer(db.name, options.checkpointMs)
  }

  /**
   * Runs `fn` in one immediate transaction, then (with `state`) writes the derived state of every
   * record committed so far. On failure rolls back and forgets the transaction's state and ids.
   */
  function transaction<T>(what: string, state: boolean, fn: () => T): T {
    try {
      db.exec('BEGIN IMMEDIATE')
    } catch (cause) {
      throw wrapError(`${what}: could not begin a transaction`, cause)
    }
    let out: T
    try {
      out = fn()
      if (state) writer.writeState()
      db.exec('COMMIT')
    } catch (cause) {
      try {
        if (db.inTransaction) db.exec('ROLLBACK')
      } finally {
        writer.rolledBack()
      }
      throw wrapError(`${what} failed`, cause)
    }
    writer.committed(state)
    checkpointer?.notify()
    if (state) {
      lastStateWrite = performance.now()
      if (stateTimer) clearTimeout(stateTimer)
      stateTimer = undefined
    } else if (writer.hasPendingState && !stateTimer) {
      stateTimer = setTimeout(() => {
        stateTimer = undefined
        try {
          flushState()
        } catch {
          // Retried by the next batch, read or close.
        }
      }, stateFlushMs)
      stateTimer.unref?.()
    }
    return out
  }

  function flushState(): void {
    if (!writer.hasPendingState || !db.open) return
    transaction('writing node state', true, () => undefined)
  }

  async function pruneAll(t: number): Promise<RetentionResult> {
    const started = performance.now()
    // State still in memory would bring pruned nodes and links back after the run.
    flushState()
    const chunk = Math.max(1, Math.floor(retention?.chunkSize ?? 5000))
    const deleted: Partial<Record<RetentionTable, number>> = {}
    for (const [key, table, time, id] of RETENTION_TABLES) {
      const windowMs = retentionWindowMs(retention, key)
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
        if (key === 'packets' && n > 0) writer.forgetIds()
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

  function open(): void {
    if (closed) throw new SqliteStoreError('STORE_CLOSED', 'the store is closed')
  }

  return {
    writeBatch(batch) {
      open()
      const state = stateFlushMs === 0 || performance.now() - lastStateWrite >= stateFlushMs
      transaction('writing a batch', state, () => writer.writeBatch(batch))
    },

    flushState,

    get hasPendingState() {
      return writer.hasPendingState
    },

    prune(t) {
      open()
      if (pruning) return pruning
      const run = retention
        ? pruneAll(t)
        : Promise.resolve({ deleted: {}, vacuumedPages: 0, durationMs: 0 })
      pruning = run.finally(() => {
        pruning = undefined
      })
      return pruning
    },

    storeRecovered(found) {
      open()
      if (found.length === 0) return
      transaction('storing re-decrypted packets', true, () => {
        for (const f of found) {
          writer.writePacket({ key: f.key, packet: f.packet, receivedAt: f.receivedAt })
          drop.run(f.ref)
        }
      })
    },

    checkpointStats() {
      return checkpointer?.stats() ?? noCheckpoints()
    },

    async close() {
      if (closed) return
      closed = true
      if (stateTimer) clearTimeout(stateTimer)
      stateTimer = undefined
      if (pruning) await pruning.catch(() => undefined)
      try {
        flushState()
      } finally {
        // The worker's connection goes first: the last connection to close removes the WAL.
        await checkpointer?.close()
      }
    },
  }
}
