import { batches, type WorkloadRecord, workload } from '@meshtap/core/testing'
import {
  type DecodedPacket,
  isBroadcast,
  nodeIdFromNum,
  type Page,
  type PageQuery,
  PortNum,
  type Reception,
  type StoredPacket,
} from '@meshtap/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tmpFile } from '../test/helpers.js'
import { createSqliteStore, type SqliteStore } from './sqlite-store.js'

const START = 1_764_288_000_000
const DAY = 86_400_000

let store: SqliteStore
let records: WorkloadRecord[]
let packets: StoredPacket[]
let receptions: Reception[]
const end = START + 2 * DAY

/** Every page of a list, checking that no row repeats. */
async function all<T, Q extends PageQuery | undefined>(
  list: (q: Q) => Promise<Page<T>>,
  q: NoInfer<Exclude<Q, undefined>>,
  id: (row: T) => string,
): Promise<T[]> {
  const out: T[] = []
  const seen = new Set<string>()
  let cursor: string | undefined
  let pages = 0
  do {
    const page = await list({ ...q, ...(cursor ? { cursor } : {}) } as Q)
    expect(page.items.length).toBeLessThanOrEqual(q.limit ?? 100)
    for (const row of page.items) {
      expect(seen.has(id(row))).toBe(false)
      seen.add(id(row))
      out.push(row)
    }
    cursor = page.nextCursor
    if (cursor) expect(page.items).toHaveLength(q.limit ?? 100)
    pages++
  } while (cursor && pages < 10_000)
  return out
}

const app = <T extends DecodedPacket['app']['type']>(p: StoredPacket, type: T) =>
  p.packet.app.type === type

/** Sorted newest first, ties in write order reversed (the stores' keyset order). */
function newestFirst<T>(rows: T[], at: (r: T) => number): T[] {
  return rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => at(b.r) - at(a.r) || b.i - a.i)
    .map((x) => x.r)
}

beforeAll(async () => {
  records = [
    ...workload({
      packets: 4000,
      nodes: 60,
      gateways: 8,
      spanMs: 2 * DAY,
      startMs: START,
      messages: false,
      seed: 11,
    }),
  ]
  packets = records.flatMap((r) => (r.packet ? [r.packet] : []))
  receptions = records.flatMap((r) => r.receptions)
  store = createSqliteStore({ path: tmpFile(), retention: false, now: () => end })
  for (const b of batches(records, 700)) await store.writeBatch(b)
})

afterAll(async () => {
  await store.close()
})

describe('typed tables', () => {
  it('positions are stored in degrees with their precision', async () => {
    const expected = packets.filter((p) => app(p, 'position'))
    const rows = await all(store.listPositions, { limit: 1000, since: 0 }, (r) => r.key)
    expect(rows).toHaveLength(expected.length)
    const byKey = new Map(rows.map((r) => [r.key, r]))
    for (const p of expected) {
      const a = p.packet.app as Extract<DecodedPacket['app'], { type: 'position' }>
      const row = byKey.get(p.key)
      expect(row).toMatchObject({
        node: p.packet.from,
        nodeId: p.packet.fromId,
        at: p.receivedAt,
        latitude: a.latitude,
        longitude: a.longitude,
        channel: 'LongFast',
        gatewayId: p.packet.gatewayId,
      })
      expect(row?.latitude).toBeCloseTo((a.position.latitudeI as number) / 1e7, 9)
      expect(row?.precisionBits).toBe(a.precisionBits)
      expect(row?.radiusM).toBe(a.radiusM)
      expect(row?.time).toBe(a.position.time)
      expect(row?.satsInView).toBe(a.position.satsInView)
    }
  })

  it('telemetry keeps every metric, typed columns and the rest', async () => {
    const expected = packets.filter((p) => app(p, 'telemetry'))
    const rows = await all(store.listTelemetry, { limit: 500 }, (r) => r.key)
    expect(rows).toHaveLength(expected.length)
    const byKey = new Map(rows.map((r) => [r.key, r]))
    for (const p of expected) {
      const a = p.packet.app as Extract<DecodedPacket['app'], { type: 'telemetry' }>
      expect(byKey.get(p.key)).toMatchObject({ variant: a.variant, time: a.telemetry.time })
      expect(byKey.get(p.key)?.metrics).toEqual(a.metrics)
    }
    const device = store.database
      .prepare(
        "SELECT count(*) AS n FROM telemetry WHERE variant = 'device' AND battery_level IS NOT NULL AND voltage IS NOT NULL AND extra IS NULL",
      )
      .get() as { n: number }
    expect(device.n).toBe(
      expected.filter((p) => (p.packet.app as { variant: string }).variant === 'device').length,
    )
  })

  it('messages keep channel vs direct, replies and reactions', async () => {
    const expected = packets.filter((p) => app(p, 'text'))
    const rows = await all(store.listMessages, { limit: 100 }, (r) => r.key)
    expect(rows.map((r) => r.key).sort()).toEqual(expected.map((p) => p.key).sort())
    const byKey = new Map(rows.map((r) => [r.key, r]))
    let replies = 0
    let reactions = 0
    let direct = 0
    for (const p of expected) {
      const row = byKey.get(p.key)
      expect(row?.direct).toBe(!isBroadcast(p.packet.to))
      expect(row?.replyId).toBe(p.packet.replyId)
      expect(row?.emoji).toBe(p.packet.emoji)
      expect(row?.isReaction).toBe(p.packet.emoji !== undefined)
      expect(row?.text).toBe((p.packet.app as { text: string }).text)
      if (row?.replyId !== undefined) replies++
      if (row?.isReaction) reactions++
      if (row?.direct) direct++
    }
    expect(replies).toBeGreaterThan(0)
    expect(reactions).toBeGreaterThan(0)
    expect(direct).toBeGreaterThan(0)
    const directRows = await all(store.listMessages, { direct: true }, (r) => r.key)
    expect(directRows).toHaveLength(direct)
    expect(await all(store.listMessages, { direct: false }, (r) => r.key)).toHaveLength(
      expected.length - direct,
    )
  })

  it('traceroutes are kept per reception (each gateway rewrites them)', async () => {
    const trs = packets.filter((p) => app(p, 'traceroute'))
    const copies = receptions.filter((r) => r.app?.type === 'traceroute')
    const rows = await all(store.listTraceroutes, {}, (r) => `${r.key}|${r.gatewayId}`)
    expect(rows).toHaveLength(trs.length + copies.length)
    const p = trs.find((t) => copies.some((c) => c.packetKey === t.key)) as StoredPacket
    const perPacket = rows.filter((r) => r.key === p.key)
    expect(perPacket.length).toBeGreaterThan(1)
    for (const r of perPacket) {
      expect(r.from).toBe(p.packet.from)
      expect(r.to).toBe(p.packet.to)
      expect(r.route[0]?.id).toMatch(/^!/)
      expect(r.snrTowardsDb.length).toBe(2)
    }
    const node = p.packet.to
    const touching = await all(
      store.listTraceroutes,
      { node, limit: 2 },
      (r) => `${r.key}|${r.gatewayId}`,
    )
    expect(touching.map((r) => `${r.key}|${r.gatewayId}`).sort()).toEqual(
      rows
        .filter((r) => r.from === node || r.to === node)
        .map((r) => `${r.key}|${r.gatewayId}`)
        .sort(),
    )
    const gateway = perPacket[1]?.gatewayId as string
    const viaGateway = await all(store.listTraceroutes, { gateway }, (r) => r.key)
    expect(viaGateway.length).toBe(rows.filter((r) => r.gatewayId === gateway).length)
    expect(viaGateway.every((r) => r.gatewayId === gateway)).toBe(true)
  })

  it('links come from direct receptions and neighbour reports', async () => {
    const direct = new Map<string, number>()
    for (const r of receptions) {
      if (r.receptionClass !== 'direct') continue
      const from = Number(r.packetKey.split(':')[0])
      const k = `${nodeIdFromNum(from)}>${r.gatewayId}`
      direct.set(k, (direct.get(k) ?? 0) + 1)
    }
    const rows = await all(
      store.links,
      { since: 0, source: 'direct' },
      (l) => `${l.fromId}>${l.toId}`,
    )
    expect(new Map(rows.map((l) => [`${l.fromId}>${l.toId}`, l.count]))).toEqual(direct)
    const reported = new Set<string>()
    for (const p of packets) {
      if (p.packet.app.type !== 'neighborinfo') continue
      for (const n of p.packet.app.neighborInfo.neighbors ?? []) {
        reported.add(`${nodeIdFromNum(n.nodeId as number)}>${p.packet.fromId}`)
      }
    }
    const nb = await all(
      store.links,
      { since: 0, source: 'neighborinfo', limit: 7 },
      (l) => `${l.fromId}>${l.toId}`,
    )
    expect(new Set(nb.map((l) => `${l.fromId}>${l.toId}`))).toEqual(reported)
    const both = await all(store.links, { since: 0 }, (l) => `${l.source}|${l.fromId}>${l.toId}`)
    expect(both).toHaveLength(rows.length + nb.length)
    const node = rows[0]?.from as number
    const touching = await all(
      store.links,
      { since: 0, node },
      (l) => `${l.source}|${l.fromId}>${l.toId}`,
    )
    expect(touching.length).toBeGreaterThan(0)
    expect(touching.every((l) => l.from === node || l.to === node)).toBe(true)
    expect(touching).toEqual(both.filter((l) => l.from === node || l.to === node))
  })
})

describe('queries', () => {
  it('lists nodes with their latest state, last heard first', async () => {
    const nodes = await all(store.listNodes, { limit: 7 }, (n) => n.id)
    expect(nodes).toHaveLength(60)
    for (let i = 1; i < nodes.length; i++) {
      expect(nodes[i - 1]?.lastHeard).toBeGreaterThanOrEqual(nodes[i]?.lastHeard as number)
    }
    const n = nodes.find((x) => x.longName !== undefined && x.position !== undefined)
    expect(n).toBeDefined()
    const latestPosition = newestFirst(
      packets.filter((p) => p.packet.from === n?.num && app(p, 'position')),
      (p) => p.receivedAt,
    )[0] as StoredPacket
    const a = latestPosition.packet.app as Extract<DecodedPacket['app'], { type: 'position' }>
    expect(n?.position).toMatchObject({
      latitude: a.latitude,
      longitude: a.longitude,
      at: latestPosition.receivedAt,
      source: 'position',
    })
    const latestInfo = newestFirst(
      packets.filter((p) => p.packet.from === n?.num && app(p, 'nodeinfo')),
      (p) => p.receivedAt,
    )[0] as StoredPacket
    const info = latestInfo.packet.app as Extract<DecodedPacket['app'], { type: 'nodeinfo' }>
    expect(n?.longName).toBe(info.user.longName)
    expect(n?.hwModel).toBe('RAK4631')
    expect(n?.packets).toBe(packets.filter((p) => p.packet.from === n?.num).length)
    const heard = receptions.filter((r) => Number(r.packetKey.split(':')[0]) === n?.num)
    expect(n?.lastHeard).toBe(Math.max(...heard.map((r) => r.receivedAt)))

    const recent = await all(store.listNodes, { since: end - 3_600_000 }, (x) => x.id)
    expect(recent.length).toBeGreaterThan(0)
    expect(recent.every((x) => x.lastHeard >= end - 3_600_000)).toBe(true)
    const gateways = await all(store.listNodes, { gateways: true }, (x) => x.id)
    expect(gateways.map((g) => g.id).sort()).toEqual(
      [...new Set(receptions.map((r) => r.gatewayId))].sort(),
    )
    expect(gateways.every((g) => g.isGateway)).toBe(true)
    const search = await store.listNodes({ search: n?.shortName as string })
    expect(search.items.map((x) => x.id)).toContain(n?.id)
    expect(
      (await store.listNodes({ search: n?.id.slice(0, 7) as string })).items.map((x) => x.id),
    ).toContain(n?.id)
    const box = {
      south: (n?.position?.latitude as number) - 0.01,
      north: (n?.position?.latitude as number) + 0.01,
      west: (n?.position?.longitude as number) - 0.01,
      east: (n?.position?.longitude as number) + 0.01,
    }
    expect((await store.listNodes({ bbox: box })).items.map((x) => x.id)).toContain(n?.id)
  })

  it('gets one node with its telemetry, map report and links', async () => {
    const withEnv = packets.find(
      (p) => p.packet.app.type === 'telemetry' && p.packet.app.variant === 'environment',
    ) as StoredPacket
    const node = await store.getNode(withEnv.packet.fromId)
    expect(node?.num).toBe(withEnv.packet.from)
    expect(node?.telemetry.environment?.metrics.temperature).toEqual(expect.any(Number))
    expect(node?.telemetry.device?.metrics.batteryLevel).toEqual(expect.any(Number))
    expect(node?.deviceMetrics?.batteryLevel).toEqual(node?.telemetry.device?.metrics.batteryLevel)
    expect(node?.user?.hwModel).toBe('RAK4631')
    expect(node?.links.length).toBeGreaterThan(0)
    const mapped = packets.find((p) => p.packet.app.type === 'mapreport') as StoredPacket
    expect((await store.getNode(mapped.packet.from))?.mapReport?.firmwareVersion).toBe('2.6.11')
    expect((await store.getNode(mapped.packet.from))?.firmwareVersion).toBe('2.6.11')
    expect(await store.getNode(0x7fffffff)).toBeUndefined()
    await expect(store.getNode('not a node')).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
  })

  it('filters positions by node, time, box, channel and gateway, in both orders', async () => {
    const positions = packets.filter((p) => app(p, 'position'))
    const node = positions[0]?.packet.from as number
    const since = START + DAY / 2
    const until = START + DAY
    const expected = newestFirst(
      positions.filter(
        (p) => p.packet.from === node && p.receivedAt >= since && p.receivedAt < until,
      ),
      (p) => p.receivedAt,
    )
    const got = await all(store.listPositions, { node, since, until, limit: 2 }, (r) => r.key)
    expect(got.map((r) => r.key)).toEqual(expected.map((p) => p.key))
    const asc = await all(
      store.listPositions,
      { node: nodeIdFromNum(node), since, until, limit: 3, order: 'asc' as const },
      (r) => r.key,
    )
    expect(asc.map((r) => r.key)).toEqual([...expected].reverse().map((p) => p.key))

    const lat = (p: StoredPacket) => (p.packet.app as { latitude: number }).latitude
    const lon = (p: StoredPacket) => (p.packet.app as { longitude: number }).longitude
    const bbox = { south: 38.4, west: -120.4, north: 39.2, east: -119.1 }
    const inBox = positions.filter(
      (p) =>
        lat(p) >= bbox.south && lat(p) <= bbox.north && lon(p) >= bbox.west && lon(p) <= bbox.east,
    )
    expect(inBox.length).toBeGreaterThan(0)
    const boxed = await all(store.listPositions, { bbox, limit: 50 }, (r) => r.key)
    expect(boxed.map((r) => r.key).sort()).toEqual(inBox.map((p) => p.key).sort())
    const wide = { south: -80, west: -179, north: 80, east: 179 }
    expect(await all(store.listPositions, { bbox: wide, limit: 1000 }, (r) => r.key)).toHaveLength(
      positions.length,
    )
    const across = { south: -80, west: 170, north: 80, east: -121 }
    const acrossExpected = positions.filter((p) => lon(p) <= -121 || lon(p) >= 170)
    expect(
      (await all(store.listPositions, { bbox: across, limit: 1000 }, (r) => r.key)).length,
    ).toBe(acrossExpected.length)

    const gateway = receptions[0]?.gatewayId as string
    const heardBy = new Set(
      receptions.filter((r) => r.gatewayId === gateway).map((r) => r.packetKey),
    )
    const viaGateway = await all(store.listPositions, { gateway, limit: 1000 }, (r) => r.key)
    expect(viaGateway.map((r) => r.key).sort()).toEqual(
      positions
        .filter((p) => heardBy.has(p.key))
        .map((p) => p.key)
        .sort(),
    )
    expect((await store.listPositions({ channel: 'LongFast' })).items).toHaveLength(100)
    expect((await store.listPositions({ channel: 'Nope' })).items).toEqual([])
    expect((await store.listPositions({ gateway: '!00000000' })).items).toEqual([])
  })

  it('pages through a list while rows are written, without gaps or repeats', async () => {
    const file = tmpFile()
    const s = createSqliteStore({ path: file, retention: false })
    const recs = [...workload({ packets: 600, nodes: 20, gateways: 4, messages: false, seed: 3 })]
    const [first, second] = [recs.slice(0, 300), recs.slice(300)]
    for (const b of batches(first, 200)) await s.writeBatch(b)
    const seen: string[] = []
    let page = await s.listPackets({ limit: 25, until: START + 10 * DAY })
    seen.push(...page.items.map((p) => p.key))
    for (const b of batches(second, 200)) await s.writeBatch(b) // newer rows arrive meanwhile
    while (page.nextCursor) {
      page = await s.listPackets({ limit: 25, until: START + 10 * DAY, cursor: page.nextCursor })
      seen.push(...page.items.map((p) => p.key))
    }
    expect(new Set(seen).size).toBe(seen.length)
    expect(seen.sort()).toEqual(first.flatMap((r) => (r.packet ? [r.packet.key] : [])).sort())
    await s.close()
  })

  it('filters telemetry by variant and node', async () => {
    const env = packets.filter(
      (p) => p.packet.app.type === 'telemetry' && p.packet.app.variant === 'environment',
    )
    const got = await all(store.listTelemetry, { variant: 'environment', limit: 33 }, (r) => r.key)
    expect(got.map((r) => r.key)).toEqual(newestFirst(env, (p) => p.receivedAt).map((p) => p.key))
    const node = env[0]?.packet.from as number
    const mine = await all(store.listTelemetry, { node, variant: 'environment' }, (r) => r.key)
    expect(mine.map((r) => r.key).sort()).toEqual(
      env
        .filter((p) => p.packet.from === node)
        .map((p) => p.key)
        .sort(),
    )
  })

  it('filters packets by node, destination, port, channel and gateway', async () => {
    const got = await all(store.listPackets, { limit: 1000 }, (r) => r.key)
    expect(got).toHaveLength(packets.length)
    const byKey = new Map(got.map((r) => [r.key, r]))
    for (const p of packets.slice(0, 200)) {
      expect(byKey.get(p.key)?.packet).toEqual(JSON.parse(JSON.stringify(p.packet)))
      expect(byKey.get(p.key)?.receptions).toBe(
        receptions.filter((r) => r.packetKey === p.key).length,
      )
    }
    const ports: number[] = [PortNum.TEXT_MESSAGE_APP, PortNum.ROUTING_APP]
    const some = await all(store.listPackets, { portnum: ports, limit: 100 }, (r) => r.key)
    expect(some).toHaveLength(packets.filter((p) => ports.includes(p.packet.portnum)).length)
    const one = await all(store.listPackets, { portnum: PortNum.MAP_REPORT_APP }, (r) => r.key)
    expect(one.every((r) => r.portnumName === 'MAP_REPORT_APP')).toBe(true)
    expect(one).toHaveLength(
      packets.filter((p) => p.packet.portnum === PortNum.MAP_REPORT_APP).length,
    )
    const routed = packets.find((p) => p.packet.app.type === 'routing') as StoredPacket
    const to = await all(store.listPackets, { to: routed.packet.to }, (r) => r.key)
    expect(to.map((r) => r.key).sort()).toEqual(
      packets
        .filter((p) => p.packet.to === routed.packet.to)
        .map((p) => p.key)
        .sort(),
    )
    const node = routed.packet.from
    const from = await all(store.listPackets, { node, portnum: PortNum.ROUTING_APP }, (r) => r.key)
    expect(from.map((r) => r.key).sort()).toEqual(
      packets
        .filter((p) => p.packet.from === node && p.packet.portnum === PortNum.ROUTING_APP)
        .map((p) => p.key)
        .sort(),
    )
  })

  it('filters receptions by packet, node, gateway, class and port', async () => {
    const got = await all(
      store.listReceptions,
      { limit: 1000, order: 'asc' as const },
      (r) => `${r.packetKey}|${r.gatewayId}`,
    )
    expect(got).toHaveLength(receptions.length)
    const key = packets[5]?.key as string
    const copies = await all(store.listReceptions, { packetKey: key }, (r) => r.gatewayId as string)
    expect(
      copies
        .map(({ from, fromId, portnum, ...r }) => r)
        .sort((a, b) => a.receivedAt - b.receivedAt),
    ).toEqual(JSON.parse(JSON.stringify(receptions.filter((r) => r.packetKey === key))))
    expect(copies[0]?.from).toBe(packets[5]?.packet.from)
    expect(copies[0]?.portnum).toBe(packets[5]?.packet.portnum)
    const gw = receptions[3]?.gatewayId as string
    const direct = await all(
      store.listReceptions,
      { gateway: gw, receptionClass: 'direct' as const, limit: 500 },
      (r) => r.packetKey,
    )
    expect(direct).toHaveLength(
      receptions.filter((r) => r.gatewayId === gw && r.receptionClass === 'direct').length,
    )
    const node = packets[9]?.packet.from as number
    const fromNode = await all(
      store.listReceptions,
      { node, limit: 500 },
      (r) => `${r.packetKey}|${r.gatewayId}`,
    )
    expect(fromNode).toHaveLength(
      receptions.filter((r) => Number(r.packetKey.split(':')[0]) === node).length,
    )
    const texts = await all(
      store.listReceptions,
      { portnum: PortNum.TEXT_MESSAGE_APP, limit: 500 },
      (r) => `${r.packetKey}|${r.gatewayId}`,
    )
    const textKeys = new Set(packets.filter((p) => app(p, 'text')).map((p) => p.key))
    expect(texts).toHaveLength(receptions.filter((r) => textKeys.has(r.packetKey)).length)
    const since = START + DAY
    const late = await all(
      store.listReceptions,
      { since, limit: 1000 },
      (r) => `${r.packetKey}|${r.gatewayId}`,
    )
    expect(late).toHaveLength(receptions.filter((r) => r.receivedAt >= since).length)
    expect((await store.listReceptions({ channel: 'LongFast' })).items).toHaveLength(100)
  })

  it('computes per-gateway statistics over a window', async () => {
    const rows = await all(store.gatewayStats, { since: 0, limit: 3 }, (g) => g.gatewayId)
    const gws = [...new Set(receptions.map((r) => r.gatewayId as string))].sort()
    expect(rows.map((g) => g.gatewayId)).toEqual(gws)
    const median = (v: number[]) => {
      const s = [...v].sort((a, b) => a - b)
      const m = s.length >> 1
      return s.length % 2 ? s[m] : ((s[m - 1] as number) + (s[m] as number)) / 2
    }
    for (const g of rows) {
      const mine = receptions.filter((r) => r.gatewayId === g.gatewayId)
      const radio = mine.filter(
        (r) => r.rxRssi !== 0 && r.receptionClass !== 'self' && r.receptionClass !== 'injected',
      )
      expect(g).toMatchObject({
        packets: mine.length,
        nodes: new Set(mine.map((r) => r.packetKey.split(':')[0])).size,
        direct: mine.filter((r) => r.receptionClass === 'direct').length,
        firstHeard: Math.min(...mine.map((r) => r.receivedAt)),
        lastHeard: Math.max(...mine.map((r) => r.receivedAt)),
        num: Number.parseInt(g.gatewayId.slice(1), 16),
      })
      if (radio.length === 0) {
        expect(g.medianSnr).toBeUndefined()
        continue
      }
      expect(g.medianSnr).toBeCloseTo(median(radio.map((r) => r.rxSnr)) as number, 9)
      expect(g.medianRssi).toBeCloseTo(median(radio.map((r) => r.rxRssi)) as number, 9)
    }
    const one = await store.gatewayStats({ gateway: gws[0] as string, since: START + DAY })
    expect(one.items).toHaveLength(1)
    expect(one.items[0]?.packets).toBe(
      receptions.filter((r) => r.gatewayId === gws[0] && r.receivedAt >= START + DAY).length,
    )
    expect((await store.gatewayStats()).items.length).toBeGreaterThan(0) // default: the last 24 h
  })

  it('rejects bad cursors and options', async () => {
    const page = await store.listPositions({ limit: 1 })
    await expect(store.listTelemetry({ cursor: page.nextCursor as string })).rejects.toMatchObject({
      code: 'INVALID_CURSOR',
    })
    await expect(store.listPositions({ cursor: 'garbage!' })).rejects.toMatchObject({
      code: 'INVALID_CURSOR',
    })
    await expect(store.listPositions({ limit: 0 })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    })
    expect((await store.listPositions({ limit: 5000 })).items).toHaveLength(1000)
    await expect(store.listPackets({ portnum: [] })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    })
  })
})
