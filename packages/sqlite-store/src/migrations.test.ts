import { batches, sampleUndecoded, workload } from '@meshtap/core/testing'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { tmpFile } from '../test/helpers.js'
import type { SqliteDatabase } from './database.js'
import { MIGRATIONS, migrate, SCHEMA_VERSION, schemaVersion } from './migrations.js'
import { createSqliteStore } from './sqlite-store.js'

const V1_COPY: Record<string, string> = {
  strings: 'id, value',
  gateways: 'id, gateway_id, num, first_seen, last_seen, receptions, direct',
  packets:
    'id, key, from_num, to_num, packet_id, portnum, channel_ref, gw, received_at, rx_time, hops_away, json',
  receptions:
    'id, packet_ref, gw, from_num, topic_ref, source_ref, channel_ref, rx_time, received_at, rx_snr, rx_rssi, hop_limit, hop_start, relay_node, hops_away, class, app',
  undecoded:
    'id, packet_ref, gw, from_num, to_num, packet_id, channel_hash, channel_ref, topic_ref, received_at, error_code, ciphertext, failure',
  nodes:
    'num, first_seen, last_heard, packets, long_name, short_name, user_json, info_at, latitude, longitude, altitude, precision_bits, radius_m, position_at, position_src, device_json, device_at, last_gw, last_snr, last_rssi, last_class, hops_away, reception_at, is_gateway',
}

const records = [...workload({ packets: 1500, nodes: 40, gateways: 6, messages: false, seed: 21 })]

/**
 * A version-1 file with data: created by the version-1 migration, filled with the rows a store
 * wrote for the same records (version-1 columns only).
 */
async function versionOneFile(): Promise<string> {
  const source = tmpFile()
  const store = createSqliteStore({ path: source, retention: false, stateFlushMs: 0 })
  for (const b of batches(records, 500)) await store.writeBatch(b)
  await store.writeBatch({ packets: [], receptions: [], undecoded: [sampleUndecoded(1)] })
  await store.close()
  const file = tmpFile()
  const db = new Database(file)
  migrate(db as unknown as SqliteDatabase, { target: 1 })
  db.exec(`ATTACH '${source}' AS src`)
  for (const [table, cols] of Object.entries(V1_COPY)) {
    db.exec(`INSERT INTO main.${table} (${cols}) SELECT ${cols} FROM src.${table}`)
  }
  db.exec('DETACH src')
  db.close()
  return file
}

/**
 * The SQL that turns a current file back into a version-`version` file with the same rows (the
 * steps after version 2 only add or change indexes).
 */
function downgradeSql(version: number): string {
  const steps: string[] = []
  if (version < 4) {
    steps.push(
      'DROP INDEX positions_box; CREATE INDEX positions_cell ON positions (cell, received_at)',
    )
  }
  if (version < 3) steps.push('DROP INDEX positions_node; DROP INDEX telemetry_node')
  steps.push(`DELETE FROM schema_migrations WHERE version > ${version}`)
  steps.push(`PRAGMA user_version = ${version}`)
  return steps.join(';\n')
}

/** A file written by the current store for `records`, turned back into a version-`version` file. */
async function olderFile(version: number): Promise<string> {
  const file = tmpFile()
  const store = createSqliteStore({ path: file, retention: false })
  for (const b of batches(records, 500)) await store.writeBatch(b)
  await store.close()
  const db = new Database(file)
  db.exec(downgradeSql(version))
  db.close()
  return file
}

describe('migrations', () => {
  it('are numbered 1, 2, … without gaps', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1))
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length)
  })

  it('create the current schema in an empty file and record each step', async () => {
    const store = createSqliteStore({ path: tmpFile() })
    await store.init()
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION)
    const steps = store.database.prepare('SELECT version, name FROM schema_migrations').all()
    expect(steps.map((s) => (s as { version: number }).version)).toEqual(
      MIGRATIONS.map((m) => m.version),
    )
    await store.close()
    // Opening again changes nothing.
    const again = createSqliteStore({ path: store.database.name })
    await again.init()
    expect(again.database.prepare('SELECT count(*) AS n FROM schema_migrations').get()).toEqual({
      n: MIGRATIONS.length,
    })
    await again.close()
  })

  for (const m of MIGRATIONS.slice(0, -1)) {
    it(`upgrade an empty version-${m.version} file`, async () => {
      const file = tmpFile()
      const db = new Database(file)
      expect(migrate(db as unknown as SqliteDatabase, { target: m.version })).toEqual(
        MIGRATIONS.filter((x) => x.version <= m.version).map((x) => x.version),
      )
      expect(schemaVersion(db as unknown as SqliteDatabase)).toBe(m.version)
      const store = createSqliteStore({ database: db })
      await store.init()
      expect(store.schemaVersion()).toBe(SCHEMA_VERSION)
      expect(await store.counts()).toEqual({ packets: 0, receptions: 0, undecoded: 0 })
      db.close()
    })
  }

  it('upgrade a version-1 file with data: everything kept, typed tables filled', async () => {
    const file = await versionOneFile()
    const before = new Database(file, { readonly: true })
    const nodesBefore = before
      .prepare('SELECT num, packets, last_heard FROM nodes ORDER BY num')
      .all()
    before.close()

    const store = createSqliteStore({ path: file, retention: false })
    await store.init()
    expect(store.schemaVersion()).toBe(SCHEMA_VERSION)
    const packets = records.flatMap((r) => (r.packet ? [r.packet] : []))
    const receptions = records.flatMap((r) => r.receptions)
    expect(await store.counts()).toEqual({
      packets: packets.length,
      receptions: receptions.length,
      undecoded: 1,
    })
    for (const p of packets.slice(0, 50)) {
      expect(await store.getPacket(p.key)).toEqual(JSON.parse(JSON.stringify(p)))
    }
    const positions = packets.filter((p) => p.packet.app.type === 'position')
    const listed = await store.listPositions({ limit: 1000 })
    expect(listed.items.length).toBe(positions.length)
    const texts = packets.filter((p) => p.packet.app.type === 'text')
    expect((await store.listMessages({ limit: 1000 })).items.length).toBe(texts.length)
    expect((await store.listTelemetry({ limit: 1 })).items).toHaveLength(1)
    expect((await store.links({ since: 0 })).items.length).toBeGreaterThan(0)
    expect((await store.links({ since: 0, source: 'neighborinfo' })).items.length).toBeGreaterThan(
      0,
    )
    const traceroutes = packets.filter((p) => p.packet.app.type === 'traceroute').length
    const copies = receptions.filter((r) => r.app?.type === 'traceroute').length
    expect((await store.listTraceroutes({ limit: 1000 })).items).toHaveLength(traceroutes + copies)
    // Node counters are not counted twice by the backfill.
    expect(
      store.database.prepare('SELECT num, packets, last_heard FROM nodes ORDER BY num').all(),
    ).toEqual(nodesBefore)
    const mapped = packets.find((p) => p.packet.app.type === 'mapreport')
    expect((await store.getNode(mapped?.packet.from as number))?.firmwareVersion).toBe('2.6.11')

    // Writing continues on the upgraded file.
    const more = [...workload({ packets: 50, nodes: 40, gateways: 6, messages: false, seed: 99 })]
    for (const b of batches(more, 100)) await store.writeBatch(b)
    expect((await store.counts()).packets).toBe(
      packets.length + more.filter((r) => r.packet).length,
    )
    await store.close()
  })

  it('upgrade a version-2 file with data', async () => {
    // Versions 3 and 4 only added or changed indexes: without them, and marked 2, the file is a
    // version-2 file.
    const file = await olderFile(2)
    const upgraded = createSqliteStore({ path: file, retention: false })
    await upgraded.init()
    expect(upgraded.schemaVersion()).toBe(SCHEMA_VERSION)
    const indexes = upgraded.database
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND name LIKE '%_node'")
      .all()
    expect(indexes).toEqual([{ name: 'positions_node' }, { name: 'telemetry_node' }])
    const packets = records.flatMap((r) => (r.packet ? [r.packet] : []))
    expect((await upgraded.counts()).packets).toBe(packets.length)
    const node = packets.find((p) => p.packet.app.type === 'position')?.packet.from as number
    const plan = upgraded.database
      .prepare(
        'EXPLAIN QUERY PLAN SELECT packet_ref FROM positions WHERE node = ? AND received_at >= ? ORDER BY received_at DESC, packet_ref DESC LIMIT 10',
      )
      .all(node, 0) as { detail: string }[]
    expect(plan.map((p) => p.detail).join()).toMatch(/positions_node/)
    expect((await upgraded.listPositions({ node })).items.length).toBe(
      packets.filter((p) => p.packet.from === node && p.packet.app.type === 'position').length,
    )
    await upgraded.close()
  })

  it('upgrade a version-3 file with data: the box index covers the coordinates', async () => {
    const file = await olderFile(3)
    const old = new Database(file, { readonly: true })
    expect(
      old.prepare("SELECT name FROM sqlite_schema WHERE name LIKE 'positions_%'").all(),
    ).toContainEqual({ name: 'positions_cell' })
    old.close()
    const upgraded = createSqliteStore({ path: file, retention: false })
    await upgraded.init()
    expect(upgraded.schemaVersion()).toBe(SCHEMA_VERSION)
    const names = (
      upgraded.database
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'positions'")
        .all() as { name: string }[]
    ).map((r) => r.name)
    expect(names).toContain('positions_box')
    expect(names).not.toContain('positions_cell')
    const plan = upgraded.database
      .prepare(
        `EXPLAIN QUERY PLAN SELECT packet_ref FROM positions WHERE cell = ? AND received_at >= ?
         AND latitude BETWEEN ? AND ? AND longitude BETWEEN ? AND ?
         ORDER BY received_at DESC, packet_ref DESC LIMIT 10`,
      )
      .all(0, 0, 0, 1, 0, 1) as { detail: string }[]
    expect(plan.map((p) => p.detail).join()).toMatch(/positions_box/)
    // Every position of the records inside a box, newest first, through the new index.
    const box = { south: 37, west: -122, north: 37.5, east: -121.5 }
    const inBox = records
      .flatMap((r) => (r.packet ? [r.packet] : []))
      .filter((p) => {
        const app = p.packet.app
        return (
          app.type === 'position' &&
          app.latitude !== undefined &&
          app.longitude !== undefined &&
          app.latitude >= box.south &&
          app.latitude <= box.north &&
          app.longitude >= box.west &&
          app.longitude <= box.east
        )
      })
    expect(inBox.length).toBeGreaterThan(10)
    const listed = await upgraded.listPositions({ bbox: box, limit: 1000 })
    expect(listed.items.map((p) => p.key).sort()).toEqual(inBox.map((p) => p.key).sort())
    await upgraded.close()
  })

  it('a failed upgrade leaves the file as it was', async () => {
    const file = await versionOneFile()
    const db = new Database(file)
    db.exec('CREATE TABLE positions (x)') // makes version 2 fail half way
    const store = createSqliteStore({ database: db })
    await expect(store.init()).rejects.toThrow(/\[sqlite-store\].*already exists/)
    expect(schemaVersion(db as unknown as SqliteDatabase)).toBe(1)
    const columns = db.prepare('PRAGMA table_info(nodes)').all() as { name: string }[]
    expect(columns.map((c) => c.name)).not.toContain('map_json')
    expect(db.prepare('SELECT count(*) AS n FROM schema_migrations').get()).toEqual({ n: 1 })
    db.close()
  })
})
