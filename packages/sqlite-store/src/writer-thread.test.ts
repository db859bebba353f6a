import {
  batches,
  describeRedecryptConformance,
  describeStoreConformance,
  samplePacket,
  sampleReception,
  workload,
} from '@meshtap/core/testing'
import type { WriteBatch } from '@meshtap/protocol'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { inlineCounts, runChild, tmpFile } from '../test/helpers.js'
import { SqliteStoreError } from './errors.js'
import { createSqliteStore } from './sqlite-store.js'

describeStoreConformance('sqlite (writer thread)', () =>
  createSqliteStore({ path: tmpFile(), writerThread: true }),
)
describeRedecryptConformance('sqlite-store (writer thread)', () =>
  createSqliteStore({ path: tmpFile(), retention: false, writerThread: true }),
)

const BATCHES: WriteBatch[] = [
  ...batches([...workload({ packets: 3000, nodes: 150, seed: 11, spanMs: 3_600_000 })], 400),
]

/** Every row of every table but the migration log (it holds times), in rowid order. */
function dump(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: true })
  try {
    const tables = db
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'",
      )
      .all() as { name: string }[]
    const out: Record<string, unknown[]> = {}
    for (const { name } of tables) {
      const withoutRowid = (
        db.prepare('SELECT sql FROM sqlite_schema WHERE name = ?').get(name) as { sql: string }
      ).sql.includes('WITHOUT ROWID')
      out[name] = db
        .prepare(`SELECT * FROM "${name}"${withoutRowid ? '' : ' ORDER BY rowid'}`)
        .all()
    }
    return out
  } finally {
    db.close()
  }
}

/** The changes the store's own connection made (`total_changes()`), for "who wrote". */
const changesOf = (db: { prepare(s: string): { get(): unknown } }) =>
  (db.prepare('SELECT total_changes() AS n').get() as { n: number }).n

describe('createSqliteStore({ writerThread: true })', () => {
  it('writes on another connection, and the file is row for row what the inline writer makes', async () => {
    const inlineFile = tmpFile()
    const threadFile = tmpFile()
    const inline = createSqliteStore({ path: inlineFile, retention: false })
    const thread = createSqliteStore({ path: threadFile, retention: false, writerThread: true })
    await inline.init()
    await thread.init()
    const before = changesOf(thread.database)
    for (const b of BATCHES) {
      await inline.writeBatch(b)
      await thread.writeBatch(b)
    }
    // Read-your-writes: a resolved writeBatch is visible to this thread's connection.
    expect(await thread.counts()).toEqual(await inline.counts())
    expect((await thread.counts()).receptions).toBeGreaterThan(6000)
    // Not a row of it went through the store's own connection.
    expect(changesOf(thread.database) - before).toBe(0)
    expect(changesOf(inline.database)).toBeGreaterThan(6000)
    await inline.close()
    await thread.close()
    const a = dump(inlineFile)
    const b = dump(threadFile)
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort())
    for (const table of Object.keys(a))
      expect({ table, rows: b[table] }).toEqual({ table, rows: a[table] })
  })

  it('shows node state of batches whose state is not written yet', async () => {
    const store = createSqliteStore({
      path: tmpFile(),
      retention: false,
      writerThread: true,
      stateFlushMs: 3_600_000,
    })
    await store.init()
    const p = samplePacket(7)
    const q = samplePacket(8)
    await store.writeBatch({ packets: [p], receptions: [sampleReception(p, 1)], undecoded: [] })
    await store.writeBatch({ packets: [q], receptions: [sampleReception(q, 2)], undecoded: [] })
    const other = new Database(store.database.name, { readonly: true })
    const nodesElsewhere = () =>
      (other.prepare('SELECT count(*) AS n FROM nodes').get() as { n: number }).n
    // The state waits for the (hour-long) interval on the writer thread…
    expect(nodesElsewhere()).toBe(0)
    // …but a read of nodes through the store has it written first.
    const nodes = await store.listNodes({ limit: 10 })
    expect(nodes.items.map((n) => n.num)).toEqual(
      expect.arrayContaining([p.packet.from, q.packet.from]),
    )
    expect(nodesElsewhere()).toBe(nodes.items.length)
    other.close()
    await store.close()
  })

  it('runs retention on the writer thread, with the store clock', async () => {
    const batch = BATCHES[0] as WriteBatch
    let clock = Math.max(...batch.receptions.map((r) => r.receivedAt)) + 60_000
    const store = createSqliteStore({
      path: tmpFile(),
      writerThread: true,
      now: () => clock,
      retention: { defaultMs: 86_400_000, intervalMs: false, chunkSize: 100 },
    })
    await store.init()
    await store.writeBatch(batch)
    const stored = await store.counts()
    expect((await store.runRetention()).deleted).toEqual({})
    expect(await store.counts()).toEqual(stored)
    clock += 400 * 86_400_000
    const result = await store.runRetention()
    expect(result.deleted.packets).toBe(stored.packets)
    expect(await store.counts()).toEqual({ packets: 0, receptions: 0, undecoded: 0 })
    // The writer forgot the deleted packets: writing the batch again stores it again.
    await store.writeBatch(batch)
    expect(await store.counts()).toEqual(stored)
    await store.close()
  })

  it('rejects a bad record with the store error, typed, and keeps writing', async () => {
    const store = createSqliteStore({ path: tmpFile(), retention: false, writerThread: true })
    await store.init()
    const p = samplePacket(1)
    const bad = { ...p, key: undefined } as unknown as typeof p
    const error = await store
      .writeBatch({ packets: [bad], receptions: [], undecoded: [] })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SqliteStoreError)
    expect(error).toMatchObject({ code: 'INVALID_BATCH', transient: false })
    expect((error as Error).message).toMatch(/^\[sqlite-store\]/)
    await store.writeBatch({ packets: [p], receptions: [sampleReception(p, 1)], undecoded: [] })
    expect(await store.counts()).toEqual({ packets: 1, receptions: 1, undecoded: 0 })
    await store.close()
  })

  it('commits every batch in flight before close() resolves', async () => {
    const file = tmpFile()
    const store = createSqliteStore({ path: file, retention: false, writerThread: true })
    await store.init()
    const writes = BATCHES.map((b) => store.writeBatch(b))
    await store.close()
    await Promise.all(writes)
    await expect(store.writeBatch(BATCHES[0] as WriteBatch)).rejects.toMatchObject({
      code: 'STORE_CLOSED',
    })
    const reopened = createSqliteStore({ path: file, readonly: true })
    expect(await reopened.counts()).toEqual(await inlineCounts(BATCHES))
    await reopened.close()
  })

  it('needs a database file', async () => {
    const store = createSqliteStore({ database: new Database(':memory:'), writerThread: true })
    await expect(store.init()).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
    expect(() => createSqliteStore({ path: tmpFile(), writerThread: true })).not.toThrow()
  })

  it('lets a program exit that never closes the store, with every awaited batch on disk', async () => {
    const file = tmpFile()
    const out = await runChild('thread-child.ts', [file])
    const { receptions } = JSON.parse(out.trim()) as { receptions: number }
    const reopened = createSqliteStore({ path: file, readonly: true })
    expect((await reopened.counts()).receptions).toBe(receptions)
    expect(receptions).toBeGreaterThan(1000)
    await reopened.close()
  }, 30_000)
})
