import { resolve } from 'node:path'
import { batches, workload } from '@meshtap/core/testing'
import type { WriteBatch } from '@meshtap/protocol'
import { describe, expect, it } from 'vitest'
import { inlineCounts, tmpFile } from '../test/helpers.js'
import { createSqliteStore } from './sqlite-store.js'
import { startWriterThread } from './thread-client.js'

const BATCHES: WriteBatch[] = [...batches([...workload({ packets: 2000, seed: 4 })], 500)]

/** A migrated file and a writer thread on it. */
async function setup() {
  const file = tmpFile()
  const store = createSqliteStore({ path: file, retention: false })
  await store.init()
  const thread = startWriterThread({
    file: resolve(file),
    pragmas: ['busy_timeout = 5000', 'foreign_keys = ON'],
    engine: { stateFlushMs: 1000, checkpointMs: false },
  })
  return { store, thread }
}

describe('the writer thread', () => {
  it('fails what it had in hand when it dies, with a transient error, and starts again', async () => {
    const { store, thread } = await setup()
    await thread.call({ type: 'batch', batch: BATCHES[0] as WriteBatch })
    const inFlight = thread.call({ type: 'batch', batch: BATCHES[1] as WriteBatch })
    await thread.terminate()
    const error = await inFlight.then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toMatchObject({ code: 'WRITER_THREAD_EXITED', transient: true })
    expect((error as Error).message).toMatch(/next write starts a new one/)
    // Retried as a pipeline would: idempotent whether or not the lost answer had committed.
    for (const b of BATCHES) await thread.call({ type: 'batch', batch: b })
    await thread.close()
    expect(await store.counts()).toEqual(await inlineCounts(BATCHES))
    await store.close()
  })

  it('refuses data that cannot cross to the thread, typed, and stays usable', async () => {
    const { store, thread } = await setup()
    const batch = { ...(BATCHES[0] as WriteBatch), extra: () => 1 } as WriteBatch
    await expect(thread.call({ type: 'batch', batch })).rejects.toMatchObject({
      code: 'INVALID_BATCH',
      transient: false,
    })
    await thread.call({ type: 'batch', batch: BATCHES[0] as WriteBatch })
    await thread.close()
    expect((await store.counts()).receptions).toBe((BATCHES[0] as WriteBatch).receptions.length)
    await store.close()
  })

  it('says so, not transient, when the thread cannot even start', async () => {
    const thread = startWriterThread(
      { file: tmpFile(), pragmas: [], engine: { stateFlushMs: 1000, checkpointMs: false } },
      () => ({ url: new URL('file:///nonexistent-meshtap-dir/writer-thread.js') }),
    )
    const error = await thread.call({ type: 'flush' }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toMatchObject({ code: 'WRITER_THREAD_FAILED', transient: false })
    expect((error as Error).message).toMatch(
      /could not start the writer thread \(exit code 1: Cannot find module .*\); pass writerThread: false/,
    )
    await thread.close()
  })

  it('reports a file it cannot open on the first call', async () => {
    const thread = startWriterThread({
      file: '/nonexistent-meshtap-dir/mesh.db',
      pragmas: [],
      engine: { stateFlushMs: 1000, checkpointMs: false },
    })
    await expect(thread.call({ type: 'flush' })).rejects.toThrow(
      /writer thread could not open \/nonexistent-meshtap-dir\/mesh\.db: .*directory does not exist/,
    )
    await thread.close()
  })
})
