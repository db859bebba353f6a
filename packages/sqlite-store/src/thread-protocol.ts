/**
 * Messages between the store and its writer thread (`writerThread`). Requests carry an id; the
 * thread answers each, in order, with the same id (0 is its start-up report).
 * @module
 */
import type { WriteBatch } from '@meshtap/protocol'
import type { CheckpointStats } from './checkpointer.js'
import type { EngineOptions, Recovered } from './engine.js'
import type { RetentionResult } from './sqlite-store.js'

/** What the thread is started with (`workerData`). @internal */
export interface ThreadSetup {
  /** The database file (absolute). */
  file: string
  /** Pragmas that set the thread's connection up like the store's (`busy_timeout = 5000`, …). */
  pragmas: string[]
  engine: EngineOptions
}

/** A request to the writer thread. @internal */
export type ThreadRequest =
  | { id: number; type: 'batch'; batch: WriteBatch }
  | { id: number; type: 'flush' }
  | { id: number; type: 'prune'; now: number }
  | { id: number; type: 'recovered'; found: Recovered[] }
  | { id: number; type: 'close' }

/** The writer thread's answer. @internal */
export interface ThreadReply {
  id: number
  ok: boolean
  value?: RetentionResult
  error?: { code: string; message: string }
  /** Whether committed batches changed state the thread has not written yet. */
  pending: boolean
  checkpoint?: CheckpointStats
}
