/**
 * The store's side of the writer thread (`writerThread`): starts it, sends it requests and settles
 * each with the thread's answer. A thread that stops unexpectedly fails what it had in hand with a
 * transient error (the pipeline retries it) and the next request starts a new one.
 * @module
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { type CheckpointStats, noCheckpoints } from './checkpointer.js'
import { SqliteStoreError } from './errors.js'
import type { ThreadReply, ThreadRequest, ThreadSetup } from './thread-protocol.js'
import { awaitExit } from './worker-stop.js'

type Request = ThreadRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never

/** The store's handle on its writer thread. @internal */
export interface WriterThread {
  /** Sends a request; resolves with the thread's answer once it is done (committed). */
  call(request: Request): Promise<unknown>
  /** Whether the thread holds derived state it has not written yet (as of its last answer). */
  readonly pending: boolean
  /** The thread's checkpoint worker, as of its last answer. */
  checkpointStats(): CheckpointStats
  /** Writes what is pending, closes the thread's connection and waits for it to end. */
  close(): Promise<void>
  /** Stops the thread at once, as a crash would (tests). */
  terminate(): Promise<void>
}

/** Where the thread's code is: the built file beside this one, or the sources under tsx. */
function entry(): { url: URL; execArgv?: string[] } {
  if (!import.meta.url.endsWith('.ts'))
    return { url: new URL('./writer-thread.js', import.meta.url) }
  // From the TypeScript sources (this repository's tests and tools): load them through tsx, with
  // workspace packages resolved to their sources as in the calling process.
  const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'))
  const tsx = pathToFileURL(join(tsxDir, 'dist/esm/api/index.mjs')).href
  const file = new URL('./writer-thread.ts', import.meta.url).href
  const boot = `const { register } = await import(${JSON.stringify(tsx)})\nregister()\nawait import(${JSON.stringify(file)})\n`
  return {
    url: new URL(`data:text/javascript,${encodeURIComponent(boot)}`),
    execArgv: ['--conditions=@meshtap/source'],
  }
}

interface Live {
  worker: Worker
  ready: Promise<void>
}

/**
 * Starts the writer thread on a configured, migrated file (`where`: another entry, for tests).
 * @internal
 */
export function startWriterThread(
  setup: ThreadSetup,
  where: () => { url: URL; execArgv?: string[] } = entry,
): WriterThread {
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  let nextId = 1
  let live: Live | undefined
  let pending = false
  let checkpoint: CheckpointStats = noCheckpoints()
  let closing = false

  function settle(r: ThreadReply): void {
    pending = r.pending
    if (r.checkpoint) checkpoint = r.checkpoint
    const w = waiting.get(r.id)
    if (!w) return
    waiting.delete(r.id)
    if (waiting.size === 0) live?.worker.unref()
    if (r.ok) w.resolve(r.value)
    else
      w.reject(new SqliteStoreError(r.error?.code ?? 'SQLITE_ERROR', r.error?.message ?? 'failed'))
  }

  function start(): Live {
    const { url, execArgv } = where()
    let worker: Worker
    try {
      worker = new Worker(url, { workerData: setup, ...(execArgv ? { execArgv } : {}) })
    } catch (e) {
      throw new SqliteStoreError(
        'WRITER_THREAD_FAILED',
        `could not start the writer thread (${(e as Error).message}); pass writerThread: false to write on the calling thread`,
      )
    }
    let lastError: string | undefined
    let started = false
    const ready = new Promise<void>((resolve, reject) => {
      waiting.set(0, {
        resolve: () => {
          started = true
          resolve()
        },
        reject,
      })
    })
    // Nobody may be waiting on it yet: an unhandled failure here is reported by the first call.
    ready.catch(() => undefined)
    worker.on('message', settle)
    worker.on('error', (e) => {
      lastError = e.message
    })
    worker.on('exit', (code) => {
      if (live?.worker === worker) live = undefined
      const why = `exit code ${code}${lastError ? `: ${lastError}` : ''}`
      // A thread that never came up will not come up on the next try either (its code is missing,
      // say): not transient, or a pipeline would retry it forever.
      const error = started
        ? new SqliteStoreError(
            'WRITER_THREAD_EXITED',
            `the writer thread stopped (${why}) before it answered; the next write starts a new one`,
          )
        : new SqliteStoreError(
            'WRITER_THREAD_FAILED',
            `could not start the writer thread (${why}); pass writerThread: false to write on the calling thread`,
          )
      for (const w of waiting.values()) w.reject(error)
      waiting.clear()
    })
    return { worker, ready }
  }

  async function ensure(): Promise<Worker> {
    if (closing) throw new SqliteStoreError('STORE_CLOSED', 'the store is closed')
    live ??= start()
    const l = live
    l.worker.ref()
    try {
      await l.ready
    } catch (e) {
      if (live === l) live = undefined
      throw e
    }
    return l.worker
  }

  async function call(request: Request): Promise<unknown> {
    const worker = await ensure()
    const id = nextId++
    return new Promise((resolve, reject) => {
      try {
        worker.postMessage({ ...request, id })
      } catch (e) {
        // Only data can cross to the thread (no functions, class instances lose their methods).
        if (waiting.size === 0) worker.unref()
        reject(
          new SqliteStoreError(
            'INVALID_BATCH',
            `the writer thread cannot take this ${request.type === 'batch' ? 'batch' : 'request'}: ${(e as Error).message}`,
          ),
        )
        return
      }
      waiting.set(id, { resolve, reject })
      worker.ref()
    })
  }

  return {
    call,
    get pending() {
      return pending
    },
    checkpointStats() {
      return checkpoint
    },
    async terminate() {
      await live?.worker.terminate()
    },
    async close() {
      if (closing) return
      const l = live
      if (!l) {
        closing = true
        return
      }
      const exited = new Promise<void>((done) => l.worker.once('exit', () => done()))
      try {
        await call({ type: 'close' })
      } finally {
        closing = true
        await awaitExit(l.worker, exited)
      }
    },
  }
}
