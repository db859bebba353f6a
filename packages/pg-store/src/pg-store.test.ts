import {
  describeStoreConformance,
  samplePacket,
  sampleReception,
  sampleUndecoded,
} from '@meshtap/core/testing'
import { describe, expect, it } from 'vitest'
import { testDatabase } from '../test/db.js'
import { PgStoreError } from './errors.js'
import { SCHEMA_VERSION } from './migrations.js'
import { createPgStore } from './pg-store.js'

const db = await testDatabase()
const pool = db.pool()

describeStoreConformance(`pg (${db.kind}, pool)`, () =>
  createPgStore({ pool, schema: db.schema(), retention: false }),
)
describeStoreConformance(`pg (${db.kind}, connectionString)`, () =>
  createPgStore({
    connectionString: db.connectionString,
    poolSize: db.concurrent ? 2 : 1,
    schema: db.schema(),
    retention: false,
  }),
)

describe('createPgStore', () => {
  it('needs exactly one of pool and connectionString, and a plain schema name', () => {
    expect(() => createPgStore({})).toThrow(/exactly one of/)
    expect(() => createPgStore({ pool, connectionString: db.connectionString })).toThrow(
      PgStoreError,
    )
    expect(() => createPgStore({ pool, schema: 'Robert"); DROP' })).toThrow(/schema must be/)
  })

  it('creates its schema, tables and the partitions of the next days', async () => {
    const schema = db.schema()
    const now = Date.UTC(2026, 10, 28, 12)
    const store = createPgStore({ pool, schema, retention: false, now: () => now })
    await store.init()
    expect(await store.schemaVersion()).toBe(SCHEMA_VERSION)
    const parts = await store.partitions()
    const days = [...new Set(parts.map((p) => p.name.slice(-8)))].sort()
    expect(days).toEqual(['20261128', '20261129', '20261130'])
    expect(new Set(parts.map((p) => p.table))).toEqual(
      new Set([
        'receptions',
        'undecoded',
        'positions',
        'telemetry',
        'messages',
        'traceroutes',
        'neighbors',
        'map_reports',
        'waypoints',
      ]),
    )
    await store.close()
  })

  it('replaying a batch changes nothing, not even node counters and links', async () => {
    const schema = db.schema()
    const store = createPgStore({ pool, schema, retention: false })
    const packets = [samplePacket(1), samplePacket(2, 'text'), samplePacket(3, 'telemetry')]
    const batch = {
      packets,
      receptions: packets.flatMap((p) => [sampleReception(p, 1), sampleReception(p, 2)]),
      undecoded: [sampleUndecoded(1)],
    }
    await store.writeBatch(batch)
    const dump = async () => {
      const out: Record<string, unknown[]> = {}
      for (const t of [
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
      ]) {
        out[t] = (await db.query(`SELECT * FROM "${schema}".${t} ORDER BY 1, 2`)).rows
      }
      return out
    }
    const before = await dump()
    expect(before.nodes).not.toEqual([])
    await store.writeBatch(batch)
    await store.writeBatch({ packets: [], receptions: batch.receptions, undecoded: [] })
    expect(await dump()).toEqual(before)
    await store.close()
  })

  it('rejects a record without a key, and writes nothing of its batch', async () => {
    const store = createPgStore({ pool, schema: db.schema(), retention: false })
    const p = samplePacket(4)
    await expect(
      store.writeBatch({
        packets: [p],
        receptions: [{ ...sampleReception(p, 1), packetKey: undefined as never }],
        undecoded: [],
      }),
    ).rejects.toMatchObject({ code: 'INVALID_BATCH' })
    expect(await store.counts()).toEqual({ packets: 0, receptions: 0, undecoded: 0 })
    await store.close()
  })

  it('reads through a given pool after close, and never ends it', async () => {
    const store = createPgStore({ pool, schema: db.schema(), retention: false })
    const p = samplePacket(5)
    await store.writeBatch({ packets: [p], receptions: [sampleReception(p, 1)], undecoded: [] })
    await store.close()
    expect((await store.getPacket(p.key))?.key).toBe(p.key)
    expect((await pool.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 })
  })
})
