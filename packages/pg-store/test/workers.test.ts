import { workload } from '@meshtap/core/testing'
import type { Reception, StoredPacket, UndecodedPacket, WriteBatch } from '@meshtap/protocol'
import { describe, expect, it } from 'vitest'
import { createPgStore, isTransientCode, type PgStore } from '../src/index.js'
import { testDatabase } from './db.js'

const db = await testDatabase()

function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * What each of two ingest workers on one shared subscription writes: every copy goes to one worker
 * (and 5 % of them to both, as a broker redelivers after a crash); each worker stores a packet
 * with the first copy it saw, so a packet whose copies were split is written by both.
 */
function split(seed: number) {
  const rnd = prng(seed)
  const records = [
    ...workload({
      packets: 3000,
      nodes: 80,
      gateways: 10,
      copies: 3,
      secretShare: 0.05,
      messages: false,
      seed,
    }),
  ]
  const workers: {
    items: { packet?: StoredPacket; undecoded?: UndecodedPacket; reception: Reception }[]
  }[] = [{ items: [] }, { items: [] }]
  for (const r of records) {
    const firsts = [true, true]
    for (const reception of r.receptions) {
      const to = rnd() < 0.05 ? [0, 1] : [rnd() < 0.5 ? 0 : 1]
      for (const w of to) {
        const item: (typeof workers)[number]['items'][number] = { reception }
        if (firsts[w]) {
          firsts[w] = false
          if (r.packet) item.packet = { ...r.packet, receivedAt: reception.receivedAt }
          if (r.undecoded) item.undecoded = { ...r.undecoded, receivedAt: reception.receivedAt }
        }
        ;(workers[w] as (typeof workers)[number]).items.push(item)
      }
    }
  }
  return { records, workers }
}

function toBatches(
  items: { packet?: StoredPacket; undecoded?: UndecodedPacket; reception: Reception }[],
  size: number,
): WriteBatch[] {
  const out: WriteBatch[] = []
  for (let i = 0; i < items.length; i += size) {
    const slice = items.slice(i, i + size)
    out.push({
      packets: slice.flatMap((x) => (x.packet ? [x.packet] : [])),
      receptions: slice.map((x) => x.reception),
      undecoded: slice.flatMap((x) => (x.undecoded ? [x.undecoded] : [])),
    })
  }
  return out
}

/** Writes batches like the ingest does: in order, retrying transient errors. */
async function run(store: PgStore, batches: WriteBatch[], retries: { n: number; codes: string[] }) {
  for (const b of batches) {
    for (;;) {
      try {
        await store.writeBatch(b)
        break
      } catch (e) {
        const code = (e as { code?: string }).code ?? ''
        if (!isTransientCode(code)) throw e
        retries.n++
        retries.codes.push(code)
      }
    }
  }
}

describe.runIf(db.concurrent)('two workers writing overlapping batches at once', () => {
  it('store every packet once with all its receptions, and count each once', async () => {
    const schema = db.schema()
    const { records, workers } = split(5)
    const a = createPgStore({ pool: db.pool({ max: 2 }), schema, retention: false })
    const b = createPgStore({ pool: db.pool({ max: 2 }), schema, retention: false })
    await Promise.all([a.init(), b.init()])
    const retries = { n: 0, codes: [] as string[] }
    const started = performance.now()
    await Promise.all([
      run(a, toBatches((workers[0] as (typeof workers)[0]).items, 300), retries),
      run(b, toBatches((workers[1] as (typeof workers)[1]).items, 300), retries),
    ])
    const elapsed = performance.now() - started

    // Expected, by key (the workload has a map report key twice: same node, same 10-minute bucket).
    const byKey = new Map<string, { decoded: boolean; gateways: Set<string> }>()
    for (const r of records) {
      const key = (r.packet?.key ?? r.undecoded?.key) as string
      const e = byKey.get(key) ?? { decoded: false, gateways: new Set<string>() }
      e.decoded ||= r.packet !== undefined
      for (const x of r.receptions) e.gateways.add(x.gatewayId as string)
      byKey.set(key, e)
    }
    const decoded = [...byKey.values()].filter((e) => e.decoded).length
    const copies = [...byKey.values()].reduce((n, e) => n + e.gateways.size, 0)
    expect(await a.counts()).toEqual({
      packets: decoded,
      receptions: copies,
      undecoded: byKey.size - decoded,
    })
    expect(
      (
        await db.query(
          `SELECT count(*)::int AS n, count(DISTINCT key)::int AS k FROM "${schema}".packets`,
        )
      ).rows[0],
    ).toEqual({ n: byKey.size, k: byKey.size })
    for (const [key, e] of [...byKey].slice(0, 300)) {
      const got = await b.getReceptions(key)
      expect(got.map((x) => x.gatewayId).sort()).toEqual([...e.gateways].sort())
    }
    for (const r of records.slice(0, 300)) {
      if (r.packet)
        expect((await a.getPacket(r.packet.key))?.packet).toEqual(
          JSON.parse(JSON.stringify(r.packet.packet)),
        )
    }
    // Node counters count each packet once, whichever worker stored it.
    const sum = await db.query(`SELECT sum(packets)::int AS n FROM "${schema}".nodes`)
    expect(sum.rows[0].n).toBe(decoded)
    // Links count each direct copy once.
    const direct = new Set<string>()
    for (const r of records) {
      for (const x of r.receptions) {
        const from = Number(x.packetKey.split(':')[0])
        const gw = Number.parseInt((x.gatewayId as string).slice(1), 16)
        if (x.receptionClass === 'direct' && gw !== from) direct.add(`${x.packetKey}|${gw}`)
      }
    }
    const links = await db.query(`SELECT sum(count)::int AS n FROM "${schema}".links`)
    expect(links.rows[0].n).toBe(direct.size)
    console.info(
      `two workers: ${copies} copies (${workers[0]?.items.length} + ${workers[1]?.items.length} written) in ${elapsed.toFixed(0)} ms, ${retries.n} transient retries ${JSON.stringify([...new Set(retries.codes)])}`,
    )
    await a.close()
    await b.close()
  }, 120_000)
})
