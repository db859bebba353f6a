import { batches, sampleUndecoded, workload } from '@meshtap/core/testing'
import { describe, expect, it } from 'vitest'
import { testDatabase } from '../test/db.js'
import { MIGRATIONS, migrate, partitionedTables, SCHEMA_VERSION } from './migrations.js'
import { PartitionManager } from './partitions.js'
import { createPgStore } from './pg-store.js'

const db = await testDatabase()
const pool = db.pool()

const V1_COPY: Record<string, string> = {
  strings: 'id, value',
  gateways: 'id, gateway_id, num, first_seen',
  packets:
    'id, key, day, from_num, to_num, packet_id, portnum, channel_ref, gw, received_at, rx_time, hops_away, json',
  receptions:
    'id, day, packet_ref, gw, from_num, topic_ref, source_ref, channel_ref, rx_time, received_at, rx_snr, rx_rssi, hop_limit, hop_start, relay_node, hops_away, class, app',
  undecoded:
    'id, day, packet_ref, gw, from_num, to_num, packet_id, channel_hash, channel_ref, topic_ref, received_at, error_code, ciphertext, failure',
  nodes:
    'num, first_seen, last_heard, packets, long_name, short_name, user_json, info_at, latitude, longitude, altitude, precision_bits, radius_m, position_at, position_src, device_json, device_at, last_gw, last_snr, last_rssi, last_class, hops_away, reception_at, is_gateway',
}

const START = 1_764_288_000_000
const records = [
  ...workload({
    packets: 1500,
    nodes: 40,
    gateways: 6,
    messages: false,
    seed: 21,
    startMs: START,
    spanMs: 3 * 86_400_000,
  }),
]

/** Migrates a fresh schema to `target` with the store's own migration code. */
async function migrateTo(schema: string, target: number): Promise<number[]> {
  const client = await pool.connect()
  try {
    return await migrate(client, schema, new PartitionManager(schema, 1, 5000), { target })
  } finally {
    client.release()
  }
}

describe('migrations', () => {
  it('are numbered 1, 2, … without gaps', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1))
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length)
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(2)
  })

  it('create the current schema in an empty database and record each step; again changes nothing', async () => {
    const schema = db.schema()
    const store = createPgStore({ pool, schema, retention: false })
    await store.init()
    expect(await store.schemaVersion()).toBe(SCHEMA_VERSION)
    const steps = await db.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY 1`)
    expect(steps.rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version))
    await store.close()
    const again = createPgStore({ pool, schema, retention: false })
    await again.init()
    expect(
      (await db.query(`SELECT count(*)::int AS n FROM "${schema}".schema_migrations`)).rows[0],
    ).toEqual({ n: MIGRATIONS.length })
    await again.close()
  })

  for (const m of MIGRATIONS.slice(0, -1)) {
    it(`upgrade an empty version-${m.version} schema`, async () => {
      const schema = db.schema()
      expect(await migrateTo(schema, m.version)).toEqual(
        MIGRATIONS.filter((x) => x.version <= m.version).map((x) => x.version),
      )
      const store = createPgStore({ pool, schema, retention: false })
      await store.init()
      expect(await store.schemaVersion()).toBe(SCHEMA_VERSION)
      expect(await store.counts()).toEqual({ packets: 0, receptions: 0, undecoded: 0 })
      await store.close()
    })
  }

  it('upgrade a version-1 schema with data: everything kept, typed tables and links filled', async () => {
    // The reference: the same records written by the current store.
    const fresh = db.schema()
    const reference = createPgStore({ pool, schema: fresh, retention: false })
    for (const b of batches(records, 400)) await reference.writeBatch(b)
    await reference.writeBatch({ packets: [], receptions: [], undecoded: [sampleUndecoded(1)] })

    // A version-1 schema holding the version-1 columns of those rows.
    const old = db.schema()
    await migrateTo(old, 1)
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      const parts = new PartitionManager(old, 1, 5000)
      parts.tables = partitionedTables(1)
      const days = (await client.query(`SELECT DISTINCT day FROM "${fresh}".packets`)).rows.map(
        (r) => r.day as number,
      )
      await parts.create(client, days)
      for (const [table, cols] of Object.entries(V1_COPY)) {
        await client.query(
          `INSERT INTO "${old}".${table} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM "${fresh}".${table}`,
        )
      }
      for (const [seq, table] of [
        ['packet_ids', 'packets'],
        ['reception_ids', 'receptions'],
        ['undecoded_ids', 'undecoded'],
      ]) {
        await client.query(
          `SELECT setval('"${old}".${seq}', (SELECT max(id) FROM "${old}".${table}))`,
        )
      }
      for (const table of ['strings', 'gateways']) {
        await client.query(
          `SELECT setval(pg_get_serial_sequence('"${old}".${table}', 'id'), (SELECT max(id) FROM "${old}".${table}))`,
        )
      }
      await client.query('COMMIT')
    } finally {
      client.release()
    }

    const store = createPgStore({ pool, schema: old, retention: false })
    await store.init()
    expect(await store.schemaVersion()).toBe(SCHEMA_VERSION)
    expect(await store.counts()).toEqual(await reference.counts())
    const all = { since: 0, limit: 1000 }
    expect((await store.listPositions(all)).items).toEqual(
      (await reference.listPositions(all)).items,
    )
    expect((await store.listTelemetry(all)).items).toEqual(
      (await reference.listTelemetry(all)).items,
    )
    expect((await store.listMessages(all)).items).toEqual((await reference.listMessages(all)).items)
    expect((await store.listTraceroutes(all)).items).toEqual(
      (await reference.listTraceroutes(all)).items,
    )
    expect((await store.links(all)).items).toEqual((await reference.links(all)).items)
    const nodes = (await reference.listNodes(all)).items
    expect((await store.listNodes(all)).items).toEqual(nodes)
    for (const n of nodes.slice(0, 10)) {
      expect(await store.getNode(n.num)).toEqual(await reference.getNode(n.num))
    }
    // And it keeps writing.
    const more = [
      ...workload({
        packets: 50,
        nodes: 40,
        gateways: 6,
        messages: false,
        seed: 99,
        startMs: START,
      }),
    ]
    for (const b of batches(more, 100)) await store.writeBatch(b)
    expect((await store.counts()).packets).toBe((await reference.counts()).packets + 50)
    await store.close()
    await reference.close()
  })

  it.runIf(db.concurrent)('let processes that start together wait for each other', async () => {
    const schema = db.schema()
    const stores = [1, 2, 3].map(() =>
      createPgStore({ pool: db.pool({ max: 2 }), schema, retention: false }),
    )
    await Promise.all(stores.map((s) => s.init()))
    expect(
      (await db.query(`SELECT count(*)::int AS n FROM "${schema}".schema_migrations`)).rows[0],
    ).toEqual({ n: MIGRATIONS.length })
    for (const s of stores) await s.close()
  })

  it('refuse a schema written by a newer version', async () => {
    const schema = db.schema()
    await migrateTo(schema, SCHEMA_VERSION)
    await db.query(
      `INSERT INTO "${schema}".schema_migrations (version, name) VALUES (${SCHEMA_VERSION + 1}, 'future')`,
    )
    const store = createPgStore({ pool, schema, retention: false })
    await expect(store.init()).rejects.toMatchObject({ code: 'SCHEMA_TOO_NEW' })
    await store.close()
  })
})
