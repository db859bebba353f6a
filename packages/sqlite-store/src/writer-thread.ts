/**
 * The writer thread's entry (`writerThread`): opens its own connection to the store's file, set up
 * like the store's, and runs the write side there, one message at a time, in the order sent.
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads'
import BetterSqlite3 from 'better-sqlite3'
import type { SqliteDatabase } from './database.js'
import { createWriteEngine, type EngineOptions, type WriteEngine } from './engine.js'
import { SqliteStoreError, wrapError } from './errors.js'
import type { RetentionResult } from './sqlite-store.js'
import type { ThreadReply, ThreadRequest, ThreadSetup } from './thread-protocol.js'

const port = parentPort
if (!port) throw new Error('@meshtap/sqlite-store: writer-thread.js runs only as a worker thread')

const setup = workerData as ThreadSetup

function fail(e: unknown): { code: string; message: string } {
  const err = e instanceof SqliteStoreError ? e : wrapError('the writer thread failed', e)
  return { code: String(err.code), message: err.message }
}

let engine: WriteEngine | undefined
let db: SqliteDatabase | undefined
try {
  db = new BetterSqlite3(setup.file, { fileMustExist: true }) as unknown as SqliteDatabase
  for (const p of setup.pragmas) db.pragma(p)
  engine = createWriteEngine(db, setup.engine as EngineOptions)
  port.postMessage({ id: 0, ok: true, pending: false } satisfies ThreadReply)
} catch (e) {
  try {
    db?.close()
  } catch {
    // The open failure is the one to report.
  }
  const error = fail(wrapError(`the writer thread could not open ${setup.file}`, e))
  port.postMessage({ id: 0, ok: false, error, pending: false } satisfies ThreadReply)
  port.close()
}

async function handle(m: ThreadRequest): Promise<RetentionResult | undefined> {
  const e = engine as WriteEngine
  switch (m.type) {
    case 'batch':
      e.writeBatch(m.batch)
      return undefined
    case 'flush':
      e.flushState()
      return undefined
    case 'prune':
      return e.prune(m.now)
    case 'recovered':
      e.storeRecovered(m.found)
      return undefined
    case 'close':
      await e.close()
      db?.close()
      return undefined
  }
}

if (engine) {
  port.on('message', (m: ThreadRequest) => {
    const done = (r: Omit<ThreadReply, 'id' | 'pending' | 'checkpoint'>) => {
      const e = engine as WriteEngine
      const reply = {
        id: m.id,
        ...r,
        pending: db?.open ? e.hasPendingState : false,
        checkpoint: e.checkpointStats(),
      } as ThreadReply
      port.postMessage(reply)
      if (m.type === 'close') port.close()
    }
    // Requests that need no event loop (all but `prune`) are done before the next message is read.
    handle(m).then(
      (value) => done(value === undefined ? { ok: true } : { ok: true, value }),
      (err) => done({ ok: false, error: fail(err) }),
    )
  })
}
