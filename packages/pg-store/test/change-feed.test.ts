import { batches, workload } from '@meshtap/core/testing'
import type {
  FlushEvent,
  NodeUpdateEvent,
  PacketEvent,
  ReceptionEvent,
  SourceStatus,
  UndecodedEvent,
  WriteBatch,
} from '@meshtap/protocol'
import { afterAll, describe, expect, it } from 'vitest'
import {
  createPgChangeFeed,
  createPgStore,
  type PgChangeFeed,
  type PgPool,
  type PgPoolClient,
} from '../src/index.js'
import { eventually, testDatabase } from './db.js'

const db = await testDatabase()

type Event =
  | { kind: 'packet'; e: PacketEvent }
  | { kind: 'reception'; e: ReceptionEvent }
  | { kind: 'undecoded'; e: UndecodedEvent }
  | { kind: 'flush'; e: FlushEvent }

/** Everything a feed emits, in order. */
function record(feed: PgChangeFeed) {
  const events: Event[] = []
  const nodes: NodeUpdateEvent[] = []
  const status: SourceStatus[] = []
  feed.on('packet', (e) => events.push({ kind: 'packet', e }))
  feed.on('reception', (e) => events.push({ kind: 'reception', e }))
  feed.on('undecoded', (e) => events.push({ kind: 'undecoded', e }))
  feed.on('flush', (e) => events.push({ kind: 'flush', e }))
  feed.on('nodeUpdate', (e) => nodes.push(e))
  feed.on('sourceStatus', (e) => status.push(e))
  return { events, nodes, status }
}

/** The events between flushes, one group per committed batch. */
function groups(events: Event[]): Event[][] {
  const out: Event[][] = [[]]
  for (const e of events) {
    if (e.kind === 'flush') out.push([])
    else (out[out.length - 1] as Event[]).push(e)
  }
  return out.slice(0, -1)
}

function keyOf(e: Event): string {
  if (e.kind === 'packet') return e.e.packet.key
  if (e.kind === 'reception') return e.e.reception.packetKey
  if (e.kind === 'undecoded') return e.e.undecoded.key
  return ''
}

const feeds: PgChangeFeed[] = []
afterAll(async () => {
  for (const f of feeds) await f.stop()
})

function data(seed: number, packets = 600) {
  return [
    ...batches(
      workload({ packets, nodes: 40, gateways: 6, secretShare: 0.05, messages: false, seed }),
      150,
    ),
  ]
}

describe.runIf(db.concurrent)('createPgChangeFeed', () => {
  it('emits a writer’s batches from another pool, in commit order, with ingest-shaped events', async () => {
    const schema = db.schema()
    const store = createPgStore({ pool: db.pool(), schema, retention: false })
    const before = data(1, 200)
    for (const b of before) await store.writeBatch(b)
    const feed = createPgChangeFeed({ pool: db.pool(), schema })
    feeds.push(feed)
    const seen = record(feed)
    await feed.start()
    expect(feed.connected).toBe(true)
    // The cache starts from the nodes table.
    const listed = (await store.listNodes({ limit: 1000 })).items
    expect(feed.cache.list().map((n) => n.num)).toEqual(listed.map((n) => n.num))
    const some = listed.find((n) => n.position) as (typeof listed)[number]
    expect(feed.cache.get(some.id)?.position).toMatchObject({
      latitude: some.position?.latitude,
      at: some.position?.at,
    })

    const all = data(2)
    for (const b of all) await store.writeBatch(b)
    await eventually(() =>
      expect(seen.events.filter((e) => e.kind === 'flush')).toHaveLength(all.length),
    )
    const perBatch = groups(seen.events)
    all.forEach((b, i) => {
      const g = perBatch[i] as Event[]
      const packets = g.filter((e) => e.kind === 'packet')
      const undecoded = g.filter((e) => e.kind === 'undecoded')
      const receptions = g.filter((e) => e.kind === 'reception')
      expect(packets.map(keyOf).sort()).toEqual(b.packets.map((p) => p.key).sort())
      expect(undecoded.map(keyOf).sort()).toEqual(b.undecoded.map((u) => u.key).sort())
      expect(packets.length + undecoded.length + receptions.length).toBe(b.receptions.length)
      for (const e of packets) {
        if (e.kind !== 'packet') continue
        const written = b.packets.find((p) => p.key === e.e.packet.key)
        expect(e.e.packet).toEqual(JSON.parse(JSON.stringify(written)))
        // Announced with its own first copy.
        expect(e.e.reception).toEqual(
          JSON.parse(
            JSON.stringify(
              b.receptions.find(
                (r) =>
                  r.packetKey === e.e.packet.key && r.gatewayId === e.e.packet.packet.gatewayId,
              ),
            ),
          ),
        )
        // Before any other copy of its packet.
        const first = g.findIndex((x) => keyOf(x) === e.e.packet.key)
        expect(g[first]).toBe(e)
      }
      for (const e of undecoded) {
        if (e.kind !== 'undecoded') continue
        const written = b.undecoded.find((u) => u.key === e.e.undecoded.key)
        expect(e.e.undecoded).toEqual(JSON.parse(JSON.stringify(written)))
      }
    })
    // Node state follows the events.
    expect(seen.nodes.length).toBeGreaterThan(0)
    const last = all.at(-1)?.packets.at(-1)
    if (last) {
      expect(feed.cache.get(last.packet.from)?.lastHeard).toBeGreaterThanOrEqual(last.receivedAt)
    }
  })

  it('delivers every worker’s batches exactly once, each worker’s in its order', async () => {
    const schema = db.schema()
    const a = createPgStore({ pool: db.pool(), schema, retention: false })
    const b = createPgStore({ pool: db.pool(), schema, retention: false })
    await Promise.all([a.init(), b.init()])
    const feed = createPgChangeFeed({ pool: db.pool(), schema })
    feeds.push(feed)
    const seen = record(feed)
    await feed.start()
    const left = data(3)
    const right = data(4)
    await Promise.all([
      (async () => {
        for (const x of left) await a.writeBatch(x)
      })(),
      (async () => {
        for (const x of right) await b.writeBatch(x)
      })(),
    ])
    await eventually(() =>
      expect(seen.events.filter((e) => e.kind === 'flush')).toHaveLength(
        left.length + right.length,
      ),
    )
    const perBatch = groups(seen.events)
    const firstKey = (g: Event[]) => keyOf(g.find((e) => e.kind === 'packet') as Event)
    const order = perBatch.map(firstKey)
    const index = (list: WriteBatch[]) =>
      list.map((x) =>
        order.indexOf(x.packets.map((p) => p.key).find((k) => order.includes(k)) as string),
      )
    for (const list of [left, right]) {
      const positions = index(list)
      expect(positions.every((p) => p >= 0)).toBe(true)
      expect([...positions].sort((x, y) => x - y)).toEqual(positions)
    }
    const packetKeys = seen.events.filter((e) => e.kind === 'packet').map(keyOf)
    expect(new Set(packetKeys).size).toBe(packetKeys.length)
  })

  it('survives its LISTEN connection being terminated, and catches up on what it missed', async () => {
    const schema = db.schema()
    const store = createPgStore({ pool: db.pool(), schema, retention: false })
    await store.init()
    const feed = createPgChangeFeed({ pool: db.pool(), schema, reconnectDelayMs: 3000 })
    feeds.push(feed)
    const seen = record(feed)
    await feed.start()
    const all = data(5)
    const half = Math.floor(all.length / 2)
    for (const x of all.slice(0, half)) await store.writeBatch(x)
    const killed = await db.query(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
       WHERE pid <> pg_backend_pid() AND query = $1`,
      [`LISTEN "${store.channel}"`],
    )
    expect(killed.rows).toEqual([{ ok: true }])
    await eventually(() => expect(feed.connected).toBe(false))
    // Committed while the feed is disconnected (it waits at least 2.25 s to reconnect): only the
    // change log can tell it about these.
    for (const x of all.slice(half)) await store.writeBatch(x)
    expect(feed.connected).toBe(false)
    await eventually(
      () => expect(seen.events.filter((e) => e.kind === 'flush')).toHaveLength(all.length),
      15_000,
    )
    await eventually(() => expect(feed.connected).toBe(true))
    expect(seen.status.map((s) => s.state)).toContain('reconnecting')
    expect(seen.status.at(-1)?.state).toBe('connected')
    const packetKeys = seen.events.filter((e) => e.kind === 'packet').map(keyOf)
    expect(packetKeys.sort()).toEqual(all.flatMap((x) => x.packets.map((p) => p.key)).sort())
    // And it keeps listening.
    const more = data(6, 100)
    for (const x of more) await store.writeBatch(x)
    await eventually(() =>
      expect(seen.events.filter((e) => e.kind === 'flush')).toHaveLength(all.length + more.length),
    )
  })

  it('announces only committed batches', async () => {
    const schema = db.schema()
    const real = db.pool()
    let failCommit = false
    // A pool whose connections turn the next COMMIT into a ROLLBACK and fail it.
    const flaky: PgPool = {
      connect: async () => {
        const c = await real.connect()
        const wrapped = Object.create(c) as PgPoolClient
        wrapped.query = (async (q: unknown, v?: unknown[]) => {
          if (q === 'COMMIT' && failCommit) {
            failCommit = false
            await c.query('ROLLBACK')
            throw Object.assign(new Error('commit failed'), { code: '40001' })
          }
          return c.query(q as string, v)
        }) as PgPoolClient['query']
        return wrapped
      },
      query: (q) => real.query(q as never),
      end: () => real.end(),
      on: (e, l) => real.on(e, l),
    }
    const store = createPgStore({ pool: flaky, schema, retention: false })
    await store.init()
    const feed = createPgChangeFeed({ pool: db.pool(), schema })
    feeds.push(feed)
    const seen = record(feed)
    await feed.start()
    const [first, second] = data(7, 300)
    failCommit = true
    await expect(store.writeBatch(first as WriteBatch)).rejects.toMatchObject({ code: '40001' })
    await store.writeBatch(second as WriteBatch)
    await eventually(() => expect(seen.events.filter((e) => e.kind === 'flush')).toHaveLength(1))
    const keys = new Set(seen.events.map(keyOf))
    expect((first as WriteBatch).packets.some((p) => keys.has(p.key))).toBe(false)
    expect((second as WriteBatch).packets.every((p) => keys.has(p.key))).toBe(true)
    expect((await store.counts()).packets).toBe((second as WriteBatch).packets.length)
  })

  it('stops cleanly, can be unsubscribed from, and refuses a schema that is not there', async () => {
    const store = createPgStore({ pool: db.pool(), schema: db.schema(), retention: false })
    await store.init()
    const feed = createPgChangeFeed({ pool: db.pool(), schema: store.schema })
    const got: unknown[] = []
    const off = feed.on('packet', (e) => got.push(e))
    await feed.start()
    off()
    await store.writeBatch(data(8, 50)[0] as WriteBatch)
    await new Promise((r) => setTimeout(r, 200))
    expect(got).toEqual([])
    await feed.stop()
    await feed.stop()
    expect(feed.status().state).toBe('closed')
    expect(feed.connected).toBe(false)
    const missing = createPgChangeFeed({ pool: db.pool(), schema: db.schema() })
    await expect(missing.start()).rejects.toThrow(/could not start/)
  })
})
