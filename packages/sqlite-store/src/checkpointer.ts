/**
 * Background WAL checkpoints. A worker thread with its own connection to the file copies committed
 * WAL frames into the database (`PRAGMA wal_checkpoint(PASSIVE)`) shortly after each commit, on
 * the machine's other core, while the writer goes on. The writer's own `wal_autocheckpoint` stays
 * on: when it fires, nearly every frame has already been copied, so the commit that runs it only
 * copies the last few and the WAL starts over (bounded). Without the worker, that commit copied
 * the whole WAL (10 000 pages by default) and its batch waited: measured, those few commits took
 * two thirds of all commit time and stalled the event loop for up to 0.2 s.
 *
 * Nothing depends on the worker: if it cannot start or fails, the writer's own checkpoints carry
 * on as before and the error is reported in {@link CheckpointStats}.
 * @module
 */
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import { Worker } from 'node:worker_threads'
import { awaitExit } from './worker-stop.js'

/**
 * What the background checkpointer did ({@link SqliteStore.checkpointStats}).
 *
 * @example
 * const { runs, frames, error } = store.checkpointStats()
 */
export interface CheckpointStats {
  /** Whether the worker thread is running. */
  running: boolean
  /** Checkpoints the worker ran. */
  runs: number
  /** WAL frames (pages) the database file had taken from the WAL by those runs. */
  frames: number
  /** Runs that could not start because another connection was checkpointing. */
  busy: number
  /** Why the worker stopped or did not start, if it failed; the writer then checkpoints alone. */
  error?: string
}

/** The stats of a store without a checkpoint worker (or before its thread has answered). @internal */
export function noCheckpoints(): CheckpointStats {
  return { running: false, runs: 0, frames: 0, busy: 0 }
}

/** The main thread's handle on the worker. @internal */
export interface Checkpointer {
  /** A transaction committed: checkpoint soon (at most one run per interval). */
  notify(): void
  /** What the worker did so far. */
  stats(): CheckpointStats
  /** Stops the worker and closes its connection (waits for a running checkpoint). */
  close(): Promise<void>
}

/** Messages from the worker (only errors: its counters are shared memory). */
type FromWorker = { type: 'error'; message: string }

// Shared Int32 slots: commits signalled by the writer, the stop flag, runs, busy runs; frames are
// the Float64 after them. The worker blocks in Atomics.wait between checkpoints, so it needs no
// message from the writer's event loop, which a writer busy with back-to-back batches never turns.
const COMMITS = 0
const STOP = 1
const RUNS = 2
const BUSY = 3
const FRAMES = 2 // index in the Float64Array view (bytes 16–23)

// CommonJS run with `eval`: no separate file to build, ship and resolve from `src` and `dist`.
const WORKER = `(function main() {
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const a = new Int32Array(workerData.shared)
const f = new Float64Array(workerData.shared)
let db
try {
  db = new Database(workerData.file, { fileMustExist: true })
  db.pragma('synchronous = NORMAL')
} catch (e) {
  parentPort.postMessage({ type: 'error', message: 'could not open the database: ' + (e && e.message) })
  return
}
let seen = 0
let backfilled = 0
for (;;) {
  // Returns at once if a commit (or the stop, which also counts one) came since the last run.
  Atomics.wait(a, ${COMMITS}, seen)
  if (Atomics.load(a, ${STOP})) break
  seen = Atomics.load(a, ${COMMITS})
  try {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0]
    Atomics.add(a, ${RUNS}, 1)
    if (r.busy) Atomics.add(a, ${BUSY}, 1)
    // checkpointed counts from the start of the WAL, which restarts after a full checkpoint.
    if (r.checkpointed >= 0) {
      f[${FRAMES}] += r.checkpointed >= backfilled ? r.checkpointed - backfilled : r.checkpointed
      backfilled = r.checkpointed
    }
  } catch (e) {
    parentPort.postMessage({ type: 'error', message: 'checkpoint failed: ' + (e && e.message) })
  }
  // At most one run per interval; a stop wakes it early.
  if (workerData.intervalMs > 0) Atomics.wait(a, ${STOP}, 0, workerData.intervalMs)
  if (Atomics.load(a, ${STOP})) break
}
try { db.close() } catch {}
})()
`

/**
 * Starts a checkpoint worker on `file` (a WAL database another connection writes).
 * @internal
 */
export function startCheckpointer(file: string, intervalMs: number): Checkpointer {
  const shared = new SharedArrayBuffer(32)
  const a = new Int32Array(shared)
  const f = new Float64Array(shared)
  let worker: Worker | undefined
  let error: string | undefined
  let exited: Promise<void> = Promise.resolve()
  try {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3')
    const w = new Worker(WORKER, {
      eval: true,
      workerData: { file: resolve(file), driver, intervalMs: Math.max(0, intervalMs), shared },
    })
    worker = w
    w.unref()
    exited = new Promise((done) => w.once('exit', () => done()))
    w.on('message', (m: FromWorker) => {
      error = m.message
    })
    w.on('error', (e) => {
      error = `the checkpoint worker failed: ${e.message}`
    })
    w.on('exit', () => {
      worker = undefined
    })
  } catch (e) {
    error = `could not start the checkpoint worker: ${(e as Error).message}`
  }
  return {
    notify() {
      if (worker === undefined) return
      Atomics.add(a, COMMITS, 1)
      Atomics.notify(a, COMMITS)
    },
    stats() {
      const s: CheckpointStats = {
        running: worker !== undefined,
        runs: Atomics.load(a, RUNS),
        frames: f[FRAMES] as number,
        busy: Atomics.load(a, BUSY),
      }
      if (error !== undefined) s.error = error
      return s
    },
    async close() {
      const w = worker
      if (w === undefined) return
      Atomics.store(a, STOP, 1)
      // Counted as a commit too: a worker that has not reached its wait yet will not block in it.
      Atomics.add(a, COMMITS, 1)
      Atomics.notify(a, COMMITS)
      Atomics.notify(a, STOP)
      // Referenced until it ends: a program whose last task is this close() must not exit before
      // the store closed its file.
      await awaitExit(w, exited)
    },
  }
}
