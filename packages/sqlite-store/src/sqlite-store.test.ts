import {
  batches,
  describeStoreConformance,
  samplePacket,
  sampleReception,
  sampleUndecoded,
  workload,
} from '@meshtap/core/testing'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { tmpFile } from '../test/helpers.js'
import { SqliteStoreError } from './errors.js'
import { SCHEMA_VERSION } from './migrations.js'
import { createSqliteStore } from './sqlite-store.js'

describeStoreConformance('sqlite (path)', () => createSqliteStore({ path: tmpFile() }))
describeStoreConformance('sqlite (database)', () =>
  createSqliteStore({ database: new Database(tmpFile()) }),
)

describe('createSqliteStore', () => {
  it('needs exactly one of database and path', () => {
    expect(() => createSqliteStore({})).toThrow(/exactly one of/)
    const file = tmpFile()
    const db = new Database(file)
    expect(() => createSqliteStore({ database: db, path: file })).toThrow(SqliteStoreError)
    db.close()
  })

  it('sets the connection up for a collector', async () => {
    const store = createSqliteStore({ path: tmpFile() })
    await store.init()
    const db = store.database
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(db.pragma('synchronous', { simple: true })).toBe(1)
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1)
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000)
    expect(db.pragma('auto_vacuum', { simple: true })).toBe(2)
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION)
    await store.close()
  })

  it('replaying a batch changes nothing, not even node and gateway counters', async () => {
    const store = createSqliteStore({ path: tmpFile(), retention: false, stateFlushMs: 0 })
    const packets = [samplePacket(1), samplePacket(2, 'text'), samplePacket(3, 'telemetry')]
    const batch = {
      packets,
      receptions: packets.flatMap((p) => [sampleReception(p, 1), sampleReception(p, 2)]),
      undecoded: [sampleUndecoded(1)],
    }
    await store.writeBatch(batch)
    const dump = () =>
      Object.fromEntries(
        [
          'packets',
          'receptions',
          'undecoded',
          'nodes',
          'gateways',
          'positions',
          'telemetry',
          'messages',
          'links',
          'node_telemetry',
        ].map((t) => [t, store.database.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all()]),
      )
    const before = dump()
    expect(before.nodes).not.toEqual([])
    await store.writeBatch(batch)
    await store.writeBatch({ packets: [], receptions: batch.receptions, undecoded: [] })
    expect(dump()).toEqual(before)
    await store.close()
  })

  it('node state gathered over several batches equals state written with every batch', async () => {
    const all = [
      ...batches(workload({ packets: 3000, nodes: 80, gateways: 10, messages: false }), 300),
    ]
    const tables = ['nodes', 'gateways', 'links', 'neighbor_links', 'node_telemetry']
    const dumps: Record<string, unknown[]>[] = []
    for (const stateFlushMs of [0, 60_000]) {
      const file = tmpFile()
      const store = createSqliteStore({ path: file, retention: false, stateFlushMs })
      for (const b of all) await store.writeBatch(b)
      await store.close()
      const db = new Database(file, { readonly: true })
      dumps.push(
        Object.fromEntries(
          tables.map((t) => [t, db.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all()]),
        ),
      )
      db.close()
    }
    expect(dumps[0]?.nodes).toHaveLength(80)
    expect(dumps[1]).toEqual(dumps[0])
  })

  it('reads through the store see the state of every committed batch at once', async () => {
    const store = createSqliteStore({ path: tmpFile(), retention: false, stateFlushMs: 60_000 })
    const p = samplePacket(1, 'nodeinfo')
    await store.writeBatch({ packets: [p], receptions: [sampleReception(p, 1)], undecoded: [] })
    const other = new Database(store.database.name, { readonly: true })
    expect(other.prepare('SELECT count(*) AS n FROM nodes').get()).toEqual({ n: 0 })
    expect((await store.getNode(p.packet.from))?.longName).toBe('Node 1')
    expect(other.prepare('SELECT count(*) AS n FROM nodes').get()).toEqual({ n: 2 })
    other.close()
    await store.close()
  })

  it('a failed batch writes nothing and the store keeps working', async () => {
    const store = createSqliteStore({ path: tmpFile(), retention: false })
    const good = samplePacket(1)
    const bad = { ...samplePacket(2), key: undefined } as unknown as typeof good
    await expect(
      store.writeBatch({
        packets: [good, bad],
        receptions: [sampleReception(good, 1)],
        undecoded: [],
      }),
    ).rejects.toThrow(/\[sqlite-store\]/)
    expect(await store.counts()).toEqual({ packets: 0, receptions: 0, undecoded: 0 })
    await store.writeBatch({
      packets: [good],
      receptions: [sampleReception(good, 1)],
      undecoded: [],
    })
    expect(await store.counts()).toEqual({ packets: 1, receptions: 1, undecoded: 0 })
    await store.close()
  })

  it('keeps SQLite error codes so the pipeline can retry (SQLITE_BUSY)', async () => {
    const file = tmpFile()
    const store = createSqliteStore({ path: file, busyTimeoutMs: 0, retention: false })
    await store.init()
    const other = new Database(file)
    other.exec('BEGIN IMMEDIATE')
    const p = samplePacket(1)
    const error = await store
      .writeBatch({ packets: [p], receptions: [], undecoded: [] })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SqliteStoreError)
    expect((error as SqliteStoreError).code).toBe('SQLITE_BUSY')
    expect((error as SqliteStoreError).transient).toBe(true)
    expect((error as Error).message).toMatch(/^\[sqlite-store\]/)
    const { isTransientStoreError } = await import('@meshtap/core')
    expect(isTransientStoreError(error)).toBe(true)
    other.exec('ROLLBACK')
    other.close()
    await store.writeBatch({ packets: [p], receptions: [], undecoded: [] })
    expect((await store.counts()).packets).toBe(1)
    await store.close()
  })

  it('keeps SQLITE_FULL as a transient error, and the next attempt succeeds once there is room', async () => {
    const store = createSqliteStore({ path: tmpFile(), retention: false })
    await store.init()
    const db = store.database
    const pages = Number(db.pragma('page_count', { simple: true }))
    db.pragma(`max_page_count = ${pages + 2}`)
    const all = [...batches(workload({ packets: 2000, messages: false }), 5000)]
    const error = await store.writeBatch(all[0] as (typeof all)[0]).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'SQLITE_FULL', transient: true })
    expect(await store.counts()).toEqual({ packets: 0, receptions: 0, undecoded: 0 })
    db.pragma('max_page_count = 1073741823')
    for (const b of all) await store.writeBatch(b)
    expect((await store.counts()).packets).toBe(2000)
    await store.close()
  })

  it('close() closes a database it opened', async () => {
    const store = createSqliteStore({ path: tmpFile() })
    await store.init()
    await store.close()
    expect(store.database.open).toBe(false)
    await expect(store.counts()).rejects.toMatchObject({ code: 'STORE_CLOSED' })
    await store.close()
  })

  it('close() leaves a database it was given open and readable, and refuses writes', async () => {
    const db = new Database(tmpFile())
    const store = createSqliteStore({ database: db })
    const p = samplePacket(1)
    await store.writeBatch({ packets: [p], receptions: [], undecoded: [] })
    await store.close()
    expect(db.open).toBe(true)
    expect((await store.counts()).packets).toBe(1)
    await expect(
      store.writeBatch({ packets: [samplePacket(2)], receptions: [], undecoded: [] }),
    ).rejects.toMatchObject({ code: 'STORE_CLOSED' })
    await expect(store.init()).rejects.toMatchObject({ code: 'STORE_CLOSED' })
    expect(db.prepare('SELECT count(*) AS n FROM packets').get()).toEqual({ n: 1 })
    db.close()
  })

  it('a read-only store reads what a writer wrote and refuses writes', async () => {
    const file = tmpFile()
    const writer = createSqliteStore({ path: file })
    const p = samplePacket(4)
    await writer.writeBatch({ packets: [p], receptions: [sampleReception(p, 1)], undecoded: [] })
    const reader = createSqliteStore({ path: file, readonly: true })
    expect(await reader.getPacket(p.key)).toEqual(JSON.parse(JSON.stringify(p)))
    await expect(
      reader.writeBatch({ packets: [p], receptions: [], undecoded: [] }),
    ).rejects.toMatchObject({ code: 'READ_ONLY' })
    await reader.close()
    await writer.close()
  })

  it('refuses a file from a newer version of the package', async () => {
    const file = tmpFile()
    const db = new Database(file)
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
    const store = createSqliteStore({ database: db })
    await expect(store.init()).rejects.toMatchObject({ code: 'SCHEMA_TOO_NEW' })
    db.close()
  })
})
