import { existsSync, statSync } from 'node:fs'
import { batches, workload } from '@meshtap/core/testing'
import type { WriteBatch } from '@meshtap/protocol'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { runChild, tmpFile } from '../test/helpers.js'
import { startCheckpointer } from './checkpointer.js'
import { createSqliteStore, type SqliteStore } from './sqlite-store.js'

/** 40 batches of 500 receptions: about 25 MB of WAL frames if nothing were checkpointed. */
const BATCHES: WriteBatch[] = [
  ...batches([...workload({ packets: 9000, messages: false, seed: 3, spanMs: 3_600_000 })], 500),
]

/** Receptions the store keeps: one per packet and gateway (the workload repeats a few). */
function distinct(list: readonly WriteBatch[]): number {
  const seen = new Set<string>()
  for (const b of list) for (const r of b.receptions) seen.add(`${r.packetKey} ${r.gatewayId}`)
  return seen.size
}

const size = (file: string) => (existsSync(file) ? statSync(file).size : 0)

/** Waits until `done()` holds (10 s at most; then fails with `what()`). */
async function waitFor(done: () => boolean, what: () => string): Promise<void> {
  const until = Date.now() + 10_000
  while (!done()) {
    if (Date.now() > until) throw new Error(`timed out: ${what()}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Waits until the worker has run at least `n` checkpoints. */
function runs(store: SqliteStore, n: number): Promise<void> {
  const stats = () => store.checkpointStats()
  return waitFor(
    () => stats().runs >= n,
    () => `no checkpoint run: ${JSON.stringify(stats())}`,
  )
}

/** A store on a fresh file with these checkpoint settings, initialised. */
async function open(
  walAutocheckpointPages: number,
  backgroundCheckpointMs: number | false,
): Promise<{ file: string; store: SqliteStore }> {
  const file = tmpFile()
  const store = createSqliteStore({
    path: file,
    retention: false,
    walAutocheckpointPages,
    backgroundCheckpointMs,
  })
  await store.init()
  return { file, store }
}

describe('background checkpoints (backgroundCheckpointMs)', () => {
  it('copy the WAL into the file from another thread while the writer only writes', async () => {
    // walAutocheckpointPages: 0 turns the writer's own checkpoints off: whatever reaches the
    // database file was copied there by the worker.
    const { file, store } = await open(0, 5)
    expect(store.checkpointStats()).toMatchObject({ running: true, runs: 0 })
    const before = size(file)
    for (const b of BATCHES.slice(0, 10)) await store.writeBatch(b)
    await runs(store, 1)
    const seen = store.checkpointStats().runs
    await store.writeBatch(BATCHES[10] as WriteBatch)
    await runs(store, seen + 1)
    const stats = store.checkpointStats()
    expect(stats.frames).toBeGreaterThan(100)
    expect(stats.error).toBeUndefined()
    expect(size(file)).toBeGreaterThan(before + 100 * 4096)
    await store.close()
    expect(store.checkpointStats().running).toBe(false)
    // The worker's connection closed first, so the store's close removed the WAL.
    expect(existsSync(`${file}-wal`)).toBe(false)
  })

  it('without the worker nothing reaches the file until the writer checkpoints', async () => {
    const { file, store } = await open(0, false)
    const before = size(file)
    for (const b of BATCHES.slice(0, 10)) await store.writeBatch(b)
    await new Promise((r) => setTimeout(r, 50))
    expect(size(file)).toBe(before)
    expect(store.checkpointStats()).toEqual({ running: false, runs: 0, frames: 0, busy: 0 })
    await store.close()
  })

  it('keep the WAL bounded under continuous writes: the writer still restarts it', async () => {
    // The worker copies pages but cannot restart the WAL while the writer keeps appending; the
    // writer's own checkpoint at walAutocheckpointPages finds the pages copied and restarts it.
    const { file, store } = await open(500, 0)
    let largest = 0
    for (const b of BATCHES) {
      await store.writeBatch(b)
      largest = Math.max(largest, size(`${file}-wal`))
    }
    const { receptions } = await store.counts()
    expect(receptions).toBe(distinct(BATCHES))
    await runs(store, 1)
    // 500 pages plus one batch's pages (well under 1,000 here), 4 KiB and a 24-byte header each.
    expect(largest).toBeLessThan(1500 * 4120)
    expect(size(file)).toBeGreaterThan(5 * 1024 * 1024)
    await store.close()
  })

  it('a reader on another connection sees every committed batch while the worker runs', async () => {
    const file = tmpFile()
    const store = createSqliteStore({ path: file, retention: false, backgroundCheckpointMs: 0 })
    await store.init()
    const reader = new Database(file, { readonly: true })
    const count = reader.prepare('SELECT count(*) AS n FROM receptions')
    for (let i = 1; i <= 20; i++) {
      await store.writeBatch(BATCHES[i - 1] as WriteBatch)
      expect((count.get() as { n: number }).n).toBe(distinct(BATCHES.slice(0, i)))
    }
    reader.close()
    await store.close()
  })

  it('are not started for a read-only store or an in-memory database', async () => {
    const file = tmpFile()
    const writer = createSqliteStore({ path: file, retention: false })
    await writer.init()
    await writer.close()
    const ro = createSqliteStore({ path: file, readonly: true })
    await ro.init()
    expect(ro.checkpointStats().running).toBe(false)
    await ro.close()
    const mem = createSqliteStore({ database: new Database(':memory:'), retention: false })
    await mem.init()
    expect(mem.checkpointStats().running).toBe(false)
    await mem.close()
  })

  it('close() keeps a program alive until the file is closed (the worker is unreferenced)', async () => {
    // A program whose last task is `await store.close()`: Node must not exit while the worker
    // stops, or the store never closes its file and the line after close() never runs.
    const file = tmpFile()
    const out = await runChild('close-child.ts', [file])
    expect(JSON.parse(out.trim())).toEqual({ closed: true })
    expect(existsSync(`${file}-wal`)).toBe(false)
  }, 30_000)

  it('report a worker that cannot open the file, and stop cleanly', async () => {
    const c = startCheckpointer('/nonexistent-meshtap-dir/mesh.db', 0)
    c.notify()
    await waitFor(
      () => !c.stats().running,
      () => `the worker is still running: ${JSON.stringify(c.stats())}`,
    )
    expect(c.stats()).toMatchObject({ running: false, runs: 0 })
    expect(c.stats().error).toMatch(/could not open the database/)
    c.notify()
    await c.close()
  })
})
