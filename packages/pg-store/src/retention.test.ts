import { batches, type WorkloadRecord, workload } from '@meshtap/core/testing'
import type { Reception } from '@meshtap/protocol'
import { describe, expect, it } from 'vitest'
import { eventually, testDatabase } from '../test/db.js'
import { DAY_MS, dayLabel, dayOf } from './partitions.js'
import { createPgStore } from './pg-store.js'

const db = await testDatabase()
const pool = db.pool()

const START = 1_764_288_000_000
const DAY = DAY_MS

function data(days: number, packets: number, seed = 1): WorkloadRecord[] {
  return [
    ...workload({
      packets,
      nodes: 50,
      gateways: 6,
      messages: false,
      startMs: START,
      spanMs: days * DAY,
      seed,
    }),
  ]
}

/** The partition day of a record's rows: the day its packet (or placeholder) was first written. */
const dayOfRecord = (r: WorkloadRecord) =>
  dayOf((r.packet?.receivedAt ?? r.undecoded?.receivedAt) as number)

describe('partitions', () => {
  it('are created on demand for the days a batch brings (and the next), rows land in their day', async () => {
    const schema = db.schema()
    const store = createPgStore({ pool, schema, retention: false, now: () => START })
    const records = data(5, 600)
    for (const b of batches(records, 200)) await store.writeBatch(b)
    const parts = await store.partitions()
    const days = [...new Set(parts.map((p) => p.name.slice(-8)))].sort()
    const expected = new Set<string>()
    for (let d = dayOf(START); d <= dayOf(START + 5 * DAY); d++) expected.add(dayLabel(d))
    expect(new Set(days)).toEqual(expected)
    for (const p of parts) expect(p.to - p.from).toBe(DAY)
    // Every reception is in the partition of its packet's day.
    const wrong = await db.query(
      `SELECT count(*)::int AS n FROM "${schema}".receptions r
       WHERE tableoid::regclass::text <> '"${schema}".receptions_p' || to_char(to_timestamp(r.day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD')
         AND tableoid::regclass::text <> '${schema}.receptions_p' || to_char(to_timestamp(r.day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD')`,
    )
    expect(wrong.rows[0].n).toBe(0)
    const perDay = await db.query(
      `SELECT day, count(*)::int AS n FROM "${schema}".receptions GROUP BY day ORDER BY day`,
    )
    const want = new Map<number, number>()
    for (const r of records) {
      want.set(dayOfRecord(r), (want.get(dayOfRecord(r)) ?? 0) + r.receptions.length)
    }
    expect(new Map(perDay.rows.map((r) => [r.day as number, r.n as number]))).toEqual(want)
    await store.close()
  })

  it('can be several days wide', async () => {
    const store = createPgStore({
      pool,
      schema: db.schema(),
      retention: false,
      partitionDays: 7,
      partitionsAhead: 0,
      now: () => START,
    })
    for (const b of batches(data(10, 300), 300)) await store.writeBatch(b)
    const receptions = (await store.partitions()).filter((p) => p.table === 'receptions')
    for (const p of receptions) expect(p.to - p.from).toBe(7 * DAY)
    expect(receptions.length).toBeGreaterThanOrEqual(2)
    expect((await store.counts()).packets).toBe(300)
    await store.close()
  })
})

describe('retention', () => {
  it('drops whole partitions per table window, deletes packets in chunks, keeps recent rows', async () => {
    const records = data(20, 3000)
    let clock = START + 20 * DAY
    const store = createPgStore({
      pool,
      schema: db.schema(),
      now: () => clock,
      retention: {
        defaultMs: 10 * DAY,
        windows: { receptions: 2 * DAY, positions: false, nodes: false },
        intervalMs: false,
        chunkSize: 100,
      },
    })
    for (const b of batches(records, 500)) await store.writeBatch(b)
    const before = await store.partitions()
    const result = await store.runRetention()
    const receptionsCutoff = dayOf(clock - 2 * DAY)
    const packetsCutoff = dayOf(clock - 10 * DAY)
    const packets = records.flatMap((r) => (r.packet ? [r.packet] : []))
    const kept = packets.filter((p) => dayOf(p.receivedAt) >= packetsCutoff)
    expect(result.deleted.packets).toBe(packets.length - kept.length)
    const receptionsOf = (pred: (d: number) => boolean) =>
      records.filter((r) => pred(dayOfRecord(r))).flatMap((r) => r.receptions)
    expect(result.deleted.receptions).toBe(receptionsOf((d) => d < receptionsCutoff).length)
    // Whole partitions went, per table.
    const after = await store.partitions()
    for (const p of before) {
      const cutoff = p.table === 'receptions' ? receptionsCutoff : packetsCutoff
      const gone = !after.some((a) => a.name === p.name)
      expect(gone, p.name).toBe(p.to / DAY <= cutoff)
      expect(result.droppedPartitions.includes(`${store.schema}.${p.name}`)).toBe(gone)
    }
    const counts = await store.counts()
    expect(counts.packets).toBe(kept.length)
    expect(counts.receptions).toBe(receptionsOf((d) => d >= receptionsCutoff).length)
    for (const p of kept.slice(-20)) {
      expect(await store.getPacket(p.key)).toEqual(JSON.parse(JSON.stringify(p)))
    }
    // `positions: false` keeps positions only as long as their packet's day.
    const positions = await store.listPositions({ limit: 1000, since: 0 })
    expect(positions.items.length).toBe(kept.filter((p) => p.packet.app.type === 'position').length)
    expect((await store.listNodes({ limit: 1000 })).items).toHaveLength(50)
    // A second run finds nothing; a later one prunes the next day.
    const second = await store.runRetention()
    expect(second.deleted).toEqual({})
    expect(second.droppedPartitions).toEqual([])
    clock += DAY
    const later = await store.runRetention()
    expect(later.deleted.packets).toBeGreaterThan(0)
    expect(later.droppedPartitions.length).toBeGreaterThanOrEqual(9)
    expect(later.deleted.nodes).toBeUndefined()
    await store.close()
  })

  it('runs on its schedule while batches keep writing', async () => {
    const records = data(5, 1000)
    let clock = START
    const store = createPgStore({
      pool,
      schema: db.schema(),
      now: () => clock,
      retention: { defaultMs: DAY, intervalMs: 30 },
    })
    await store.init()
    // Five days of traffic, written as it arrives, while retention runs every 30 ms.
    for (const b of batches(records, 100)) {
      clock = Math.max(...b.receptions.map((r) => r.receivedAt))
      await store.writeBatch(b)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    const packets = records.flatMap((r) => (r.packet ? [r.packet] : []))
    const cutoff = dayOf(clock - DAY)
    await eventually(async () => {
      expect((await store.counts()).packets).toBe(
        packets.filter((p) => dayOf(p.receivedAt) >= cutoff).length,
      )
    })
    const days = new Set((await store.partitions()).map((p) => p.name.slice(-8)))
    expect([...days].sort()).toEqual([cutoff, cutoff + 1, cutoff + 2].map((d) => dayLabel(d)))
    await store.close()
  })

  it('a late copy of a packet whose day was dropped recreates the partition', async () => {
    const schema = db.schema()
    const records = data(6, 400)
    const clock = START + 6 * DAY
    const writer = createPgStore({ pool, schema, retention: false, now: () => clock })
    // Another process prunes receptions (not packets) of everything older than 2 days.
    const pruner = createPgStore({
      pool,
      schema,
      now: () => clock,
      retention: { defaultMs: 2 * DAY, windows: { packets: false }, intervalMs: false },
    })
    for (const b of batches(records, 200)) await writer.writeBatch(b)
    const dropped = await pruner.runRetention()
    expect(dropped.deleted.receptions).toBeGreaterThan(0)
    const old = records.find((r) => r.packet && dayOfRecord(r) === dayOf(START)) as WorkloadRecord
    const late: Reception = {
      ...(old.receptions[0] as Reception),
      gatewayId: '!0badc0de',
      receivedAt: clock - 1000,
    }
    await writer.writeBatch({ packets: [], receptions: [late], undecoded: [] })
    const copies = await writer.getReceptions(old.packet?.key as string)
    expect(copies.map((c) => c.gatewayId)).toEqual(['!0badc0de'])
    await writer.close()
    await pruner.close()
  })

  it('does nothing with retention: false', async () => {
    const store = createPgStore({
      pool,
      schema: db.schema(),
      retention: false,
      now: () => START + 99 * DAY,
    })
    for (const b of batches(data(2, 100), 100)) await store.writeBatch(b)
    expect(await store.runRetention()).toMatchObject({ deleted: {}, droppedPartitions: [] })
    expect((await store.counts()).packets).toBe(100)
    await store.close()
  })
})
