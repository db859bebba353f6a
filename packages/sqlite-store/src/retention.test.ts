import { batches, workload } from '@meshtap/core/testing'
import { describe, expect, it } from 'vitest'
import { tmpFile } from '../test/helpers.js'
import { createSqliteStore } from './sqlite-store.js'

const START = 1_764_288_000_000
const DAY = 86_400_000

function data(days: number, packets: number, seed = 1) {
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

describe('retention', () => {
  it('deletes each table to its window, in chunks, and keeps recent rows', async () => {
    const records = data(20, 4000)
    let clock = START + 20 * DAY
    const store = createSqliteStore({
      path: tmpFile(),
      now: () => clock,
      retention: {
        defaultMs: 10 * DAY,
        windows: { receptions: 2 * DAY, positions: false, nodes: false },
        intervalMs: false,
        chunkSize: 100,
      },
    })
    for (const b of batches(records, 500)) await store.writeBatch(b)
    let ticks = 0
    let spinning = true
    const spin = () => {
      ticks++
      if (spinning) setImmediate(spin)
    }
    setImmediate(spin)
    const result = await store.runRetention()
    spinning = false
    const packets = records.flatMap((r) => (r.packet ? [r.packet] : []))
    const receptions = records.flatMap((r) => r.receptions)
    const keptPackets = packets.filter((p) => p.receivedAt >= clock - 10 * DAY)
    const keptKeys = new Set(keptPackets.map((p) => p.key))
    expect(result.deleted.receptions).toBe(
      receptions.filter((r) => r.receivedAt < clock - 2 * DAY).length,
    )
    expect(result.deleted.packets).toBe(packets.length - keptPackets.length)
    // The event loop ran between the chunks (a batch write never waits for more than one chunk).
    expect(ticks).toBeGreaterThan(((result.deleted.receptions ?? 0) / 100) * 0.9)
    const counts = await store.counts()
    expect(counts.packets).toBe(keptPackets.length)
    expect(counts.receptions).toBe(
      receptions.filter((r) => r.receivedAt >= clock - 2 * DAY && keptKeys.has(r.packetKey)).length,
    )
    for (const p of keptPackets.slice(-20)) {
      expect(await store.getPacket(p.key)).toEqual(JSON.parse(JSON.stringify(p)))
    }
    // `positions: false` keeps positions, but only as long as their packet: rows hang off packets.
    const positions = await store.listPositions({ limit: 1000 })
    expect(positions.items.length).toBe(
      keptPackets.filter((p) => p.packet.app.type === 'position').length,
    )
    expect((await store.listTelemetry({ limit: 1000, until: clock - 10 * DAY })).items).toEqual([])
    expect((await store.listNodes({ limit: 1000 })).items).toHaveLength(50)
    // A second run finds nothing; a later one prunes the next day.
    expect((await store.runRetention()).deleted).toEqual({})
    clock += DAY
    const later = await store.runRetention()
    expect(later.deleted.packets).toBeGreaterThan(0)
    expect(later.deleted.nodes).toBeUndefined()
    await store.close()
  })

  it('runs on its schedule and a new batch still writes meanwhile', async () => {
    const records = data(5, 500)
    const clock = START + 5 * DAY
    const store = createSqliteStore({
      path: tmpFile(),
      now: () => clock,
      retention: { defaultMs: DAY, intervalMs: 30 },
    })
    await store.init()
    for (const b of batches(records, 200)) await store.writeBatch(b)
    const packets = records.flatMap((r) => (r.packet ? [r.packet] : []))
    const kept = packets.filter((p) => p.receivedAt >= clock - DAY).length
    expect(kept).toBeLessThan(packets.length)
    // The schedule runs every 30 ms: wait for a run after the last batch (a busy machine may
    // delay the timer), without deleting what is inside the window.
    const until = Date.now() + 5000
    while ((await store.counts()).packets !== kept && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 30))
    }
    expect((await store.counts()).packets).toBe(kept)
    await store.close()
  })

  it('gives space back with incremental vacuum, and the file stops growing', async () => {
    const file = tmpFile()
    let clock = START
    const store = createSqliteStore({
      path: file,
      now: () => clock,
      retention: { defaultMs: 2 * DAY, intervalMs: false, incrementalVacuum: true },
    })
    const pages: number[] = []
    const days = 8
    const records = data(days, 8000, 3)
    for (let d = 0; d < days; d++) {
      const today = records.filter(
        (r) =>
          (r.packet?.receivedAt ?? r.receptions[0]?.receivedAt ?? 0) < START + (d + 1) * DAY &&
          (r.packet?.receivedAt ?? r.receptions[0]?.receivedAt ?? 0) >= START + d * DAY,
      )
      for (const b of batches(today, 500)) await store.writeBatch(b)
      clock = START + (d + 1) * DAY
      const r = await store.runRetention()
      if (d >= 2) expect(r.vacuumedPages).toBeGreaterThan(0)
      expect(store.database.pragma('freelist_count', { simple: true })).toBe(0)
      pages.push(Number(store.database.pragma('page_count', { simple: true })))
    }
    // Two days kept: from day 3 on the file size stays within a band.
    const steady = pages.slice(3)
    expect(Math.max(...steady)).toBeLessThan(Math.min(...steady) * 1.25)
    expect(Math.max(...steady)).toBeLessThan((pages[days - 1] as number) * 1.25)
    await store.close()
  })

  it('does nothing with retention: false', async () => {
    const store = createSqliteStore({
      path: tmpFile(),
      retention: false,
      now: () => START + 99 * DAY,
    })
    for (const b of batches(data(2, 100), 100)) await store.writeBatch(b)
    expect(await store.runRetention()).toMatchObject({ deleted: {}, vacuumedPages: 0 })
    expect((await store.counts()).packets).toBe(100)
    await store.close()
  })
})
