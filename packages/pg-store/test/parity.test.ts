import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { batches, sampleUndecoded, type WorkloadRecord, workload } from '@meshtap/core/testing'
import type { Page, PageQuery, QueryableStore } from '@meshtap/protocol'
import { createSqliteStore } from '@meshtap/sqlite-store'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPgStore, type PgStore } from '../src/index.js'
import { testDatabase } from './db.js'

/**
 * The same records written to the SQLite store and to this store: every list, every filter, every
 * page must come out the same (rows and their order; cursors are opaque and may differ).
 */

const START = 1_764_288_000_000
const DAY = 86_400_000
const end = START + 2 * DAY
const dir = mkdtempSync(join(tmpdir(), 'meshtap-pg-parity-'))

const db = await testDatabase()
let pgStore: PgStore
let sqlite: ReturnType<typeof createSqliteStore>
let records: WorkloadRecord[]

beforeAll(async () => {
  records = [
    ...workload({
      packets: 3000,
      nodes: 60,
      gateways: 8,
      spanMs: 2 * DAY,
      startMs: START,
      secretShare: 0.05,
      messages: false,
      seed: 11,
    }),
  ]
  sqlite = createSqliteStore({ path: join(dir, 'mesh.db'), retention: false, now: () => end })
  pgStore = createPgStore({
    pool: db.pool(),
    schema: db.schema(),
    retention: false,
    now: () => end,
  })
  const all = [...batches(records, 500)]
  all.push({ packets: [], receptions: [], undecoded: [sampleUndecoded(3)] })
  for (const b of all) {
    await sqlite.writeBatch(b)
    await pgStore.writeBatch(b)
  }
}, 120_000)

afterAll(async () => {
  await pgStore?.close()
  await sqlite?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Every page of a list. */
async function pages<T, Q extends PageQuery>(
  store: QueryableStore,
  list: (s: QueryableStore, q: Q) => Promise<Page<T>>,
  q: Q,
): Promise<{ items: T[]; sizes: number[] }> {
  const items: T[] = []
  const sizes: number[] = []
  let cursor: string | undefined
  do {
    const page = await list(store, { ...q, ...(cursor ? { cursor } : {}) })
    items.push(...page.items)
    sizes.push(page.items.length)
    cursor = page.nextCursor
  } while (cursor && sizes.length < 1000)
  return { items, sizes }
}

function same<T, Q extends PageQuery>(
  title: string,
  list: (s: QueryableStore, q: Q) => Promise<Page<T>>,
  queries: () => Q[],
  atLeast = 1,
): void {
  it(title, async () => {
    for (const q of queries()) {
      const expected = await pages(sqlite, list, q)
      const actual = await pages(pgStore, list, q)
      expect(expected.items.length, JSON.stringify(q)).toBeGreaterThanOrEqual(atLeast)
      expect(actual.sizes, JSON.stringify(q)).toEqual(expected.sizes)
      expect(actual.items, JSON.stringify(q)).toEqual(expected.items)
    }
  })
}

const packets = () => records.flatMap((r) => (r.packet ? [r.packet] : []))
const someNode = () => packets()[7]?.packet.from as number
const someGateway = () => packets()[3]?.packet.gatewayId as string
const bbox = { south: 37, west: -122, north: 39, east: -119 }

describe('queries: the same answers as the SQLite store', () => {
  it('counts, packets and receptions', async () => {
    expect(await pgStore.counts()).toEqual(await sqlite.counts())
    for (const p of packets().slice(0, 200)) {
      expect(await pgStore.getPacket(p.key)).toEqual(await sqlite.getPacket(p.key))
      expect(await pgStore.getReceptions(p.key)).toEqual(await sqlite.getReceptions(p.key))
    }
  })

  same(
    'listNodes',
    (s, q) => s.listNodes(q),
    () => [
      { limit: 7 },
      { limit: 1000 },
      { search: 'node' },
      { search: '!1' },
      { gateways: true, limit: 3 },
      { bbox, limit: 5 },
      { since: end - DAY / 2 },
    ],
  )

  it('getNode', async () => {
    const nodes = (await sqlite.listNodes({ limit: 1000 })).items
    for (const n of nodes.slice(0, 25)) {
      expect(await pgStore.getNode(n.id)).toEqual(await sqlite.getNode(n.num))
    }
    expect(await pgStore.getNode('!00000001')).toBeUndefined()
  })

  same(
    'listPositions',
    (s, q) => s.listPositions(q),
    () => [
      { limit: 333 },
      { limit: 100, order: 'asc' as const },
      { node: someNode(), limit: 5 },
      { bbox, limit: 50 },
      { bbox: { south: 37, west: 170, north: 40, east: -119 }, limit: 50 },
      { gateway: someGateway(), limit: 77 },
      { channel: 'LongFast', since: START + DAY / 2, until: START + DAY, limit: 40 },
    ],
  )

  same(
    'listTelemetry',
    (s, q) => s.listTelemetry(q),
    () => [
      { limit: 250 },
      { variant: 'environment' as const, limit: 30 },
      { node: someNode(), limit: 3 },
      { channel: 'Secret', limit: 3 },
    ],
    0,
  )

  same(
    'listMessages',
    (s, q) => s.listMessages(q),
    () => [
      { limit: 50 },
      { direct: true },
      { direct: false, order: 'asc' as const, limit: 33 },
      { node: someNode() },
    ],
  )

  same(
    'listPackets',
    (s, q) => s.listPackets(q),
    () => [
      { limit: 400 },
      { portnum: [1, 3], limit: 99 },
      { portnum: 67, gateway: someGateway(), limit: 10 },
      { node: someNode(), order: 'asc' as const, limit: 6 },
      { channel: 'nope' },
    ],
    0,
  )

  same(
    'listReceptions',
    (s, q) => s.listReceptions(q),
    () => [
      { limit: 1000 },
      { gateway: someGateway(), limit: 150 },
      { receptionClass: 'direct' as const, limit: 200 },
      { packetKey: packets()[11]?.key as string },
      { portnum: [4], limit: 100 },
      { node: someNode(), limit: 10 },
      { channel: 'Secret', limit: 10 },
    ],
  )

  same(
    'listTraceroutes',
    (s, q) => s.listTraceroutes(q),
    () => [{ limit: 20 }, { node: someNode() }, { gateway: someGateway(), order: 'asc' as const }],
    0,
  )

  same(
    'gatewayStats',
    (s, q) => s.gatewayStats(q),
    () => [
      { since: 0 },
      { since: 0, limit: 3 },
      { since: START + DAY, until: end },
      { since: 0, gateway: someGateway() },
    ],
  )

  same(
    'links',
    (s, q) => s.links(q),
    () => [
      { since: 0 },
      { since: 0, limit: 9 },
      { since: 0, node: someNode() },
      { since: 0, source: 'neighborinfo' as const, limit: 4 },
      { since: end - DAY / 3, source: 'direct' as const },
    ],
  )

  it('rejects cursors and limits it did not hand out', async () => {
    await expect(pgStore.listPositions({ cursor: 'nope' })).rejects.toMatchObject({
      code: 'INVALID_CURSOR',
    })
    const page = await pgStore.listPositions({ limit: 2 })
    await expect(
      pgStore.listTelemetry({ cursor: page.nextCursor as string }),
    ).rejects.toMatchObject({ code: 'INVALID_CURSOR' })
    await expect(pgStore.listNodes({ limit: 0 })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    })
    await expect(pgStore.getNode('nonsense')).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
  })
})
