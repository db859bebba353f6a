import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createMeshSimulator, type Ingest } from '@meshtap/core'
import {
  type LiveSource,
  type NodeState,
  WIRE_SUBPROTOCOL,
  WIRE_TOKEN_PROTOCOL_PREFIX,
  type WireEvent,
  type WireFilter,
} from '@meshtap/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { createWsServer, type WsServerError, type WsStoreNode } from '../src/index.js'
import {
  connect,
  createMesh,
  type Harness,
  PRIVATE_KEY,
  plain,
  sleep,
  startServer,
  type TestClient,
  waitFor,
} from './helpers.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})

async function setup(
  options: Omit<Parameters<typeof startServer>[0], 'source'> = {},
  sim?: Parameters<typeof createMesh>[0],
  keys = false,
) {
  const mesh = await createMesh(sim, { keys })
  const h = await startServer({ source: mesh.ingest, ...options })
  cleanups.push(async () => {
    await h.close()
    await mesh.ingest.stop()
  })
  return { mesh, h }
}

async function client(
  h: Harness,
  options?: Parameters<typeof connect>[1],
  url = h.url,
): Promise<TestClient> {
  const c = await connect(url, options)
  cleanups.push(() => c.close())
  await c.next('hello')
  return c
}

async function subscribe(c: TestClient, message: Record<string, unknown> = {}) {
  const from = c.messages.length
  c.send({ type: 'subscribe', ...message })
  const sub = await c.next('subscribed', () => true, { from })
  if (sub.snapshot) await c.next('snapshot', (m) => m.done, { from })
  return sub
}

const byNum = (a: NodeState, b: NodeState) => a.num - b.num

function cacheNodes(ingest: Ingest, keep: (n: NodeState) => boolean = () => true): NodeState[] {
  return plain(ingest.cache.list().filter(keep).sort(byNum))
}

function clientNodes(c: TestClient): NodeState[] {
  return plain([...c.nodes.values()].sort(byNum))
}

function ids(events: readonly WireEvent[], keep: (e: WireEvent) => boolean = () => true) {
  return events.filter(keep).map((e) => e.id)
}

function senderOf(e: WireEvent): number | undefined {
  switch (e.kind) {
    case 'packet':
      return e.packet.packet.from
    case 'reception':
      return Number(e.reception.packetKey.split(':')[0])
    case 'undecoded':
      return e.undecoded.failure.packet.from
    case 'node':
      return e.num
    default:
      return undefined
  }
}

function strictlyIncreasing(values: readonly number[]): boolean {
  return values.every((v, i) => i === 0 || v > (values[i - 1] as number))
}

/** Feeds traffic fast (filling the kernel's socket buffers of a paused client) until `done`. */
async function flood(feed: (n: number) => number, done: () => boolean, timeoutMs = 15_000) {
  const t0 = Date.now()
  while (!done()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('flood: timed out')
    feed(150)
    await sleep(5)
  }
}

/** Feeds traffic in small steps (so that it spreads over several batches), then lets it drain. */
async function traffic(feed: (n: number) => number, steps: number, perStep: number) {
  for (let i = 0; i < steps; i++) {
    feed(perStep)
    await sleep(7)
  }
  await sleep(80)
}

describe('createWsServer: stream', () => {
  it('sends hello, a snapshot, then batches whose node patches rebuild the cache exactly', async () => {
    const { mesh, h } = await setup()
    mesh.feed(400)
    const c = await client(h)
    const hello = c.messages[0]
    expect(hello).toMatchObject({
      type: 'hello',
      protocol: 1,
      server: '@meshtap/ws-server',
      epoch: h.live.epoch,
      flushMs: 20,
      kinds: ['packet', 'reception', 'undecoded', 'node', 'status'],
      capabilities: ['resume', 'snapshot', 'node-patch'],
    })
    const sub = await subscribe(c, { id: 's1' })
    expect(sub).toMatchObject({ id: 's1', resumed: false, snapshot: true })
    expect(sub.filter.kinds).toEqual(['node', 'packet', 'reception', 'undecoded'])
    expect(clientNodes(c)).toEqual(cacheNodes(mesh.ingest))

    await traffic(mesh.feed, 20, 60)
    await c.sync()
    expect(c.seqs.length).toBeGreaterThan(5)
    expect(strictlyIncreasing(c.seqs)).toBe(true)
    expect(strictlyIncreasing(ids(c.events))).toBe(true)
    expect(clientNodes(c)).toEqual(cacheNodes(mesh.ingest))

    const kinds = new Set(c.events.map((e) => e.kind))
    expect(kinds).toEqual(new Set(['packet', 'reception', 'undecoded', 'node']))
    // Node updates are differences: a patch is much smaller than the node it changes.
    let patchBytes = 0
    let fullBytes = 0
    for (const e of c.events) {
      if (e.kind !== 'node' || e.op !== 'patch') continue
      patchBytes += JSON.stringify(e.patch).length
      fullBytes += JSON.stringify(mesh.ingest.cache.get(e.num)).length
      expect(Object.keys(e.patch)).not.toContain('num')
    }
    expect(patchBytes).toBeGreaterThan(0)
    expect(patchBytes / fullBytes).toBeLessThan(0.6)
    expect(h.live.metrics()).toMatchObject({ clients: 1, subscribed: 1, behind: 0, filters: 1 })
  })

  it('delivers exactly what each filter matches', async () => {
    const { mesh, h } = await setup(
      {},
      {
        seed: 5,
        nodes: 40,
        gateways: 5,
        channels: [{ name: 'LongFast', psk: 'AQ==' }, PRIVATE_KEY],
      },
      true,
    )
    const eu = createMeshSimulator({ seed: 11, nodes: 20, gateways: 3, root: 'msh/EU_868' })
    const us = mesh.simulator
    const usNode = us.nodes.find((n) => !n.isGateway) as (typeof us.nodes)[number]
    const euNode = eu.nodes[4] as (typeof eu.nodes)[number]
    const gateway = us.nodes.find((n) => n.isGateway)?.id as string
    const box = { south: 37.5, west: -122.5, north: 38.2, east: -121.5 }

    const all = await client(h)
    await subscribe(all, { snapshot: false })
    const filters: Record<string, WireFilter> = {
      nodes: { nodes: [usNode.num, euNode.id] },
      channel: { channels: ['Private'], kinds: ['packet', 'reception'] },
      gateway: { gateways: [gateway.toUpperCase()], kinds: ['packet', 'reception', 'node'] },
      root: { roots: ['msh/EU_868'] },
      kinds: { kinds: ['reception'] },
      bboxNodes: { kinds: ['node'], bbox: box },
      bboxPackets: { kinds: ['packet'], bbox: box },
    }
    const cs: Record<string, TestClient> = {}
    for (const [name, filter] of Object.entries(filters)) {
      cs[name] = await client(h)
      const sub = await subscribe(cs[name] as TestClient, { filter })
      if (name === 'gateway') expect(sub.filter.gateways).toEqual([gateway])
      if (name === 'nodes') {
        expect(sub.filter.nodes).toEqual([usNode.num, euNode.num].sort((a, b) => a - b))
      }
    }
    const feed = (n: number) => mesh.feed(n, us) + mesh.feed(Math.ceil(n / 2), eu)
    await traffic(feed, 25, 60)
    for (const c of [all, ...Object.values(cs)]) await c.sync()

    const get = (name: string) => cs[name] as TestClient
    const ev = all.events
    expect(ev.length).toBeGreaterThan(1000)
    const nodeSet = new Set([usNode.num, euNode.num])
    expect(ids(get('nodes').events)).toEqual(
      ids(ev, (e) => {
        if (e.kind === 'packet' && nodeSet.has(e.packet.packet.to)) return true
        const s = senderOf(e)
        return s !== undefined && nodeSet.has(s)
      }),
    )
    expect(get('nodes').events.length).toBeGreaterThan(10)

    const channelOf = (e: WireEvent) =>
      e.kind === 'packet'
        ? e.packet.packet.channelId
        : e.kind === 'reception'
          ? e.reception.channelId
          : undefined
    const privateIds = ids(ev, (e) => channelOf(e) === 'Private')
    expect(privateIds.length).toBeGreaterThan(10)
    expect(ids(get('channel').events)).toEqual(privateIds)

    const gatewayOf = (e: WireEvent) =>
      e.kind === 'packet'
        ? e.packet.packet.gatewayId
        : e.kind === 'reception'
          ? e.reception.gatewayId
          : undefined
    const g = get('gateway')
    expect(ids(g.events, (e) => e.kind !== 'node')).toEqual(
      ids(ev, (e) => gatewayOf(e) === gateway),
    )
    const heardBy = (n: NodeState) => n.id === gateway || gateway in n.gateways
    expect(clientNodes(g)).toEqual(cacheNodes(mesh.ingest, heardBy))

    const topicOf = (e: WireEvent) =>
      e.kind === 'packet'
        ? e.packet.packet.topic
        : e.kind === 'reception'
          ? e.reception.topic
          : e.kind === 'undecoded'
            ? e.undecoded.failure.packet.topic
            : undefined
    const euIds = ids(
      ev,
      (e) => e.kind === 'node' || topicOf(e)?.startsWith('msh/EU_868/') === true,
    )
    expect(ids(get('root').events)).toEqual(euIds)
    expect(get('root').events.some((e) => e.kind === 'packet')).toBe(true)

    expect(ids(get('kinds').events)).toEqual(ids(ev, (e) => e.kind === 'reception'))

    const inBox = (lat?: number, lon?: number) =>
      lat !== undefined &&
      lon !== undefined &&
      lat >= box.south &&
      lat <= box.north &&
      lon >= box.west &&
      lon <= box.east
    const boxed = cacheNodes(mesh.ingest, (n) => inBox(n.position?.latitude, n.position?.longitude))
    expect(boxed.length).toBeGreaterThan(0)
    expect(boxed.length).toBeLessThan(mesh.ingest.cache.list().length)
    expect(clientNodes(get('bboxNodes'))).toEqual(boxed)

    const ownPosition = (e: WireEvent) => {
      if (e.kind !== 'packet') return undefined
      const app = e.packet.packet.app as { latitude?: number; longitude?: number }
      return app.latitude === undefined ? undefined : app
    }
    const bp = get('bboxPackets').events
    expect(bp.every((e) => e.kind === 'packet')).toBe(true)
    expect(ids(bp, (e) => ownPosition(e) !== undefined)).toEqual(
      ids(ev, (e) => {
        const p = ownPosition(e)
        return p !== undefined && inBox(p.latitude, p.longitude)
      }),
    )
    // Each distinct filter is serialised once per batch, not once per client.
    expect(h.live.metrics().filters).toBe(8)
  })

  it('resumes after a dropped connection without losing or repeating anything', async () => {
    const { mesh, h } = await setup({ resumeBatches: 1000 })
    const filter = { kinds: ['packet', 'reception', 'node'] }
    const ref = await client(h)
    await subscribe(ref, { filter, snapshot: false })
    const a = await client(h)
    const hello = a.messages[0] as { epoch: string }
    await subscribe(a, { filter, snapshot: false })

    await traffic(mesh.feed, 10, 50)
    await a.sync()
    const before = a.events.slice()
    const lastSeq = a.seqs.at(-1) as number
    expect(before.length).toBeGreaterThan(100)
    a.ws.terminate()
    await a.closed

    await traffic(mesh.feed, 10, 50) // missed while away
    const b = await client(h)
    const sub = await subscribe(b, { filter, resume: { epoch: hello.epoch, fromSeq: lastSeq + 1 } })
    expect(sub).toMatchObject({ resumed: true, snapshot: false })
    await traffic(mesh.feed, 5, 50) // live again
    await ref.sync()
    await b.sync()

    expect(b.seqs[0]).toBeGreaterThan(lastSeq)
    expect(strictlyIncreasing([...a.seqs, ...b.seqs])).toBe(true)
    const joined = [...before, ...b.events]
    expect(ids(joined)).toEqual(ids(ref.events))
    expect(new Set(ids(joined)).size).toBe(joined.length)
    expect(h.live.metrics().resumes).toBe(1)
  })

  it('answers snapshotNeeded (then a snapshot) when resume is impossible', async () => {
    const { mesh, h } = await setup({ resumeBatches: 3 })
    const a = await client(h)
    const epoch = (a.messages[0] as { epoch: string }).epoch
    await subscribe(a, { snapshot: false })
    await traffic(mesh.feed, 12, 40)
    await a.sync()
    expect(a.seqs.length).toBeGreaterThan(4)

    const b = await client(h)
    const from = b.messages.length
    b.send({ type: 'subscribe', resume: { epoch, fromSeq: 1 } })
    const sub = await b.next('subscribed', () => true, { from })
    expect(sub).toMatchObject({ resumed: false, snapshot: true })
    const needed = await b.next('snapshotNeeded')
    expect(needed).toMatchObject({ fromSeq: 1, reason: 'too-old', seq: sub.seq })
    expect(needed.oldestSeq).toBeGreaterThan(1)
    await b.next('snapshot', (m) => m.done)
    expect(clientNodes(b)).toEqual(cacheNodes(mesh.ingest))

    const c = await client(h)
    c.send({ type: 'subscribe', resume: { epoch: 'another-server', fromSeq: 2 }, snapshot: false })
    expect(await c.next('snapshotNeeded')).toMatchObject({ reason: 'epoch' })
    expect(c.messages.some((m) => m.type === 'snapshot')).toBe(false)

    const d = await client(h)
    d.send({ type: 'subscribe', resume: { epoch, fromSeq: sub.seq + 50 } })
    expect(await d.next('snapshotNeeded')).toMatchObject({ reason: 'ahead' })
    expect(h.live.metrics().resumesRefused).toBe(3)
  })

  it('stops, restarts and replaces subscriptions', async () => {
    const { mesh, h } = await setup()
    const c = await client(h)
    await subscribe(c, { filter: { kinds: ['reception'] }, snapshot: false })
    await traffic(mesh.feed, 3, 50)
    await c.sync()
    expect(c.events.length).toBeGreaterThan(0)
    c.send({ type: 'unsubscribe', id: 'u' })
    expect(await c.next('unsubscribed')).toEqual({ type: 'unsubscribed', id: 'u' })
    const n = c.events.length
    await traffic(mesh.feed, 3, 50)
    await c.sync()
    expect(c.events.length).toBe(n)
    await subscribe(c, { filter: { kinds: ['packet'] }, snapshot: false })
    await traffic(mesh.feed, 3, 50)
    await c.sync()
    expect(c.events.slice(n).every((e) => e.kind === 'packet')).toBe(true)
    expect(c.events.length).toBeGreaterThan(n)
    c.send({ type: 'ping', id: 42 })
    const pong = await c.next('pong', (m) => m.id === 42)
    expect(pong.seq).toBe(h.live.metrics().seq)
  })

  it('sends an empty batch as a checkpoint when nothing matched for a while', async () => {
    const { mesh, h } = await setup({ checkpointMs: 50 })
    const c = await client(h)
    await subscribe(c, { filter: { nodes: [1] }, snapshot: false })
    await traffic(mesh.feed, 5, 40)
    // Checkpoints may come while the traffic runs; wait for the one that catches up with the end.
    await waitFor(() => c.seqs.at(-1) === h.live.metrics().seq, 2000, 'the last checkpoint')
    const batches = c.messages.filter((m) => m.type === 'batch')
    expect(batches.length).toBeGreaterThan(0)
    for (const b of batches) expect(b).toMatchObject({ type: 'batch', events: [] })
  })
})

describe('createWsServer: slow clients', () => {
  it('cuts off a client that stops reading while another keeps its rate', async () => {
    const cap = 256 * 1024
    const { mesh, h } = await setup({ maxBufferedBytes: cap, maxStallMs: 500 })
    const fast = await client(h)
    await subscribe(fast, { snapshot: false })
    const slow = await client(h)
    await subscribe(slow, { snapshot: false })
    const socket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
    socket.pause()

    let maxBuffered = 0
    const watch = setInterval(() => {
      for (const info of h.live.connections()) {
        maxBuffered = Math.max(maxBuffered, info.bufferedAmount)
      }
    }, 2)
    await flood(mesh.feed, () => h.live.metrics().lagged >= 1)
    await flood(mesh.feed, () => h.live.metrics().closedSlow >= 1)
    clearInterval(watch)
    await sleep(60)
    await fast.sync()
    const m = h.live.metrics()
    expect(m).toMatchObject({ lagged: 1, closedSlow: 1, subscribed: 1, behind: 0 })
    // The fast client got every batch (consecutive sequence numbers) and everything in them.
    const first = fast.seqs[0] as number
    expect(fast.seqs).toEqual(Array.from({ length: fast.seqs.length }, (_, i) => first + i))
    expect(fast.seqs.at(-1)).toBe(m.seq)
    expect(fast.events.length).toBeGreaterThan(2000)
    // The slow client's backlog stayed bounded: the cap plus at most one batch.
    expect(maxBuffered).toBeGreaterThan(cap / 2)
    expect(maxBuffered).toBeLessThanOrEqual(cap + fast.largestMessage + 64)
    socket.resume()
    expect([1013, 1006]).toContain((await slow.closed).code)
    await waitFor(() => h.live.metrics().clients === 1, 2000, 'the slow client to be gone')
  })

  it('closes a lagging client with 1013 at once when onLag is "close"', async () => {
    const { mesh, h } = await setup({ maxBufferedBytes: 32 * 1024, onLag: 'close' })
    const slow = await client(h)
    await subscribe(slow, { snapshot: false })
    const socket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
    socket.pause()
    await flood(mesh.feed, () => h.live.metrics().closedSlow === 1)
    expect(h.live.metrics().lagged).toBe(1)
    socket.resume()
    expect([1013, 1006]).toContain((await slow.closed).code)
  })

  it('sends lagged + a fresh snapshot to a client that fell out of the resume window', async () => {
    const { mesh, h } = await setup({
      maxBufferedBytes: 16 * 1024,
      resumeBatches: 4,
      maxStallMs: 20_000,
    })
    const c = await client(h)
    await subscribe(c)
    const socket = (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
    socket.pause()
    await flood(mesh.feed, () => h.live.metrics().lagged >= 1)
    const seq = h.live.metrics().seq
    await flood(mesh.feed, () => h.live.metrics().seq > seq + 6)
    socket.resume()
    const lagged = await c.next('lagged', () => true, { timeoutMs: 10_000 })
    expect(lagged.fromSeq).toBeLessThan(lagged.seq)
    await c.next('snapshot', (m) => m.done && m.seq >= lagged.seq, { timeoutMs: 10_000 })
    await traffic(mesh.feed, 5, 30)
    await waitFor(() => h.live.metrics().behind === 0, 10_000, 'the client to catch up')
    await sleep(60)
    await c.sync()
    expect(clientNodes(c)).toEqual(cacheNodes(mesh.ingest))
    expect(h.live.metrics()).toMatchObject({ resyncs: 1, closedSlow: 0 })
    expect(h.live.metrics().droppedBatches).toBeGreaterThan(0)
  })

  it('catches a briefly slow client up from the ring without loss', async () => {
    const { mesh, h } = await setup({ maxBufferedBytes: 16 * 1024, resumeBatches: 10_000 })
    const ref = await client(h)
    await subscribe(ref, { snapshot: false })
    const c = await client(h)
    await subscribe(c, { snapshot: false })
    const socket = (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
    socket.pause()
    await flood(mesh.feed, () => h.live.metrics().lagged >= 1)
    socket.resume()
    await traffic(mesh.feed, 5, 30)
    await waitFor(() => h.live.metrics().behind === 0, 10_000, 'the client to catch up')
    await sleep(60)
    await ref.sync()
    await c.sync()
    expect(c.messages.some((m) => m.type === 'lagged')).toBe(false)
    expect(ids(c.events)).toEqual(ids(ref.events))
    expect(c.seqs).toEqual(ref.seqs)
  })
})

describe('createWsServer: bad clients', () => {
  it('answers malformed, unknown and oversized messages with error frames, and never crashes', async () => {
    const { h } = await setup({ maxMessageBytes: 256, messageBurst: 50 })
    const c = await client(h)
    const err = async (send: () => void, code: string) => {
      const from = c.messages.length
      send()
      return c.next('error', (m) => m.code === code, { from })
    }
    await err(() => c.send('{not json'), 'BAD_JSON')
    expect(await err(() => c.send({ type: 'nope', id: 'x' }), 'UNKNOWN_TYPE')).toMatchObject({
      id: 'x',
    })
    expect(
      await err(() => c.send({ type: 'subscribe', filter: { bbox: { south: 99 } } }), 'BAD_FILTER'),
    ).toMatchObject({ path: 'filter.bbox.south' })
    await err(() => c.send({ type: 'subscribe', filter: { kinds: ['drop'] } }), 'BAD_FILTER')
    await err(() => c.ws.send(new Uint8Array([1, 2, 3])), 'BAD_MESSAGE')
    await err(() => c.send({ type: 'ping', pad: 'x'.repeat(300) }), 'TOO_LARGE')
    await err(() => c.send(JSON.stringify(Array.from({ length: 60 }, () => 1))), 'BAD_MESSAGE')
    c.send({ type: 'ping', id: 'still-alive' })
    await c.next('pong', (m) => m.id === 'still-alive')
    expect(h.live.metrics().clientErrors).toBe(7)

    // Over the hard frame limit (4 × 256 bytes): closed with 1009.
    c.send({ type: 'ping', pad: 'x'.repeat(2000) })
    expect((await c.closed).code).toBe(1009)

    const d = await client(h)
    d.send({ type: 'hello', protocol: 7 })
    expect(await d.next('error')).toMatchObject({ code: 'UNSUPPORTED_PROTOCOL' })
    expect((await d.closed).code).toBe(1002)

    const e = await client(h)
    e.send({ type: 'hello', protocol: 1, client: 'test' })
    e.send({ type: 'ping', id: 1 })
    await e.next('pong')
    expect(e.messages.filter((m) => m.type === 'error')).toEqual([])
  })

  it('rate-limits a flood with an error frame, then closes it with 1008', async () => {
    const { h } = await setup({ messagesPerSecond: 5, messageBurst: 10 })
    const flood = await client(h)
    const calm = await client(h)
    for (let i = 0; i < 200; i++) flood.send({ type: 'ping', id: i })
    expect(await flood.next('error')).toMatchObject({ code: 'RATE_LIMITED' })
    expect((await flood.closed).code).toBe(1008)
    expect(flood.messages.filter((m) => m.type === 'pong').length).toBe(10)
    calm.send({ type: 'ping', id: 'ok' })
    await calm.next('pong')
    expect(h.live.metrics()).toMatchObject({ closedFlooding: 1, clients: 1 })
    expect(h.live.metrics().rateLimited).toBeGreaterThanOrEqual(11)
  })

  it('terminates a client that does not answer pings', async () => {
    // A timeout several heartbeats long, so that a stalled event loop on a busy machine (a pong
    // read late) does not make the client that answers look dead too.
    const { h } = await setup({ heartbeatMs: 100, heartbeatTimeoutMs: 600 })
    const dead = await client(h, { autoPong: false })
    const alive = await client(h)
    await waitFor(() => h.live.metrics().heartbeatTimeouts >= 1, 5000, 'the dead client')
    expect((await dead.closed).code).toBe(1006)
    await sleep(700) // more than a whole timeout: the client that answers pings stays
    alive.send({ type: 'ping', id: 'x' })
    await alive.next('pong')
    expect(h.live.metrics()).toMatchObject({ heartbeatTimeouts: 1, clients: 1 })
  })

  it('caps connections with HTTP 503', async () => {
    const { h } = await setup({ maxClients: 2 })
    const a = await client(h)
    await client(h)
    await expect(connect(h.url)).rejects.toThrow(/503/)
    expect(h.live.metrics().rejectedFull).toBe(1)
    await a.close()
    await waitFor(() => h.live.metrics().clients === 1)
    await client(h)
  })
})

describe('createWsServer: authentication', () => {
  it('refuses with 401 before the upgrade, and accepts a token from a header, the query or the subprotocol', async () => {
    const errors: WsServerError[] = []
    const { h } = await setup({
      onError: (e) => errors.push(e),
      authenticate: async (req, { token, via }) => {
        if (req.headers['x-explode']) throw new Error('boom')
        return token === 's3cret' ? { user: 'viewer', via } : undefined
      },
    })
    await expect(connect(h.url)).rejects.toThrow(/401/)
    await expect(connect(`${h.url}?token=wrong`)).rejects.toThrow(/401/)
    await expect(connect(h.url, { headers: { 'x-explode': '1' } })).rejects.toThrow(/401/)
    expect(errors.map((e) => e.code)).toEqual(['AUTH_FAILED'])

    const byHeader = await client(h, { headers: { authorization: 'Bearer s3cret' } })
    const byQuery = await client(h, {}, `${h.url}?token=s3cret`)
    const bySubprotocol = await client(h, {
      protocols: [WIRE_SUBPROTOCOL, `${WIRE_TOKEN_PROTOCOL_PREFIX}s3cret`],
    })
    expect(bySubprotocol.ws.protocol).toBe(WIRE_SUBPROTOCOL)
    expect(byHeader.ws.protocol).toBe('')
    expect(h.live.connections().map((c) => c.principal)).toEqual([
      { user: 'viewer', via: 'header' },
      { user: 'viewer', via: 'query' },
      { user: 'viewer', via: 'subprotocol' },
    ])
    expect(h.live.metrics().rejectedUnauthorized).toBe(3)
    void byQuery
  })
})

describe('createWsServer: compression', () => {
  it('negotiates permessage-deflate only when enabled, and compresses big batches once', async () => {
    const off = await setup()
    const plainClient = await client(off.h, { perMessageDeflate: true })
    expect(plainClient.ws.extensions).toBe('')

    const { mesh, h } = await setup({ perMessageDeflate: true })
    const a = await client(h, { perMessageDeflate: true })
    const b = await client(h, { perMessageDeflate: true })
    const raw = await client(h, { perMessageDeflate: false })
    expect(a.ws.extensions).toBe('permessage-deflate')
    expect(raw.ws.extensions).toBe('')
    expect((a.messages[0] as { capabilities: string[] }).capabilities).toContain('deflate')
    expect((raw.messages[0] as { capabilities: string[] }).capabilities).not.toContain('deflate')
    for (const c of [a, b, raw]) await subscribe(c, { snapshot: false })
    await traffic(mesh.feed, 10, 60)
    for (const c of [a, b, raw]) await c.sync()
    expect(ids(a.events)).toEqual(ids(raw.events))
    expect(plain(b.events)).toEqual(plain(raw.events))
    const m = h.live.metrics()
    expect(m.messagesCompressed).toBeGreaterThan(0)
    expect(a.events.length).toBeGreaterThan(100)
  })
})

describe('createWsServer: lifecycle and snapshots', () => {
  it('listens by itself on a port, answers plain HTTP with 426, and close() sends 1001', async () => {
    const mesh = await createMesh()
    const live = createWsServer({ port: 0, host: '127.0.0.1', path: '/ws', source: mesh.ingest })
    await live.ready
    const port = (live.address() as AddressInfo).port
    const status = await new Promise<number>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port, path: '/ws' }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
        .on('error', reject)
        .end()
    })
    expect(status).toBe(426)
    await expect(connect(`ws://127.0.0.1:${port}/elsewhere`)).rejects.toThrow(/404/)
    const c = await connect(`ws://127.0.0.1:${port}/ws`)
    await c.next('hello')
    await live.close()
    expect((await c.closed).code).toBe(1001)
    expect(live.address()).toBeNull()
    await mesh.ingest.stop()
  })

  it('leaves other upgrade paths of an attached server alone', async () => {
    const mesh = await createMesh()
    const http = createServer()
    const live = createWsServer({ server: http, path: '/live', source: mesh.ingest })
    const seen: string[] = []
    http.on('upgrade', (req, socket) => {
      if (req.url === '/other') {
        seen.push(req.url)
        socket.end('HTTP/1.1 418 I am a teapot\r\nConnection: close\r\n\r\n')
      }
    })
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()))
    const { port } = http.address() as AddressInfo
    await expect(connect(`ws://127.0.0.1:${port}/other`)).rejects.toThrow(/418/)
    expect(seen).toEqual(['/other'])
    await live.close()
    expect(http.listening).toBe(true)
    http.close()
    await mesh.ingest.stop()
  })

  it('adds nodes only the store remembers to snapshots', async () => {
    const row: WsStoreNode = {
      num: 0xdeadbeef,
      id: '!deadbeef',
      longName: 'Old Timer',
      shortName: 'OLD',
      lastHeard: Date.now() - 60_000,
      packets: 7,
      isGateway: false,
      position: { latitude: 1, longitude: 2, at: Date.now() - 60_000, source: 'position' },
      deviceMetrics: { batteryLevel: 50, at: Date.now() - 90_000 },
      lastGatewayId: '!a0c0ffee',
      lastSnr: 5,
      lastRssi: -90,
    }
    const queries: unknown[] = []
    const store = {
      async listNodes(q?: unknown) {
        queries.push(q)
        return { items: [row] }
      },
    }
    const { mesh, h } = await setup({ store })
    mesh.feed(100)
    const c = await client(h)
    expect((c.messages[0] as { capabilities: string[] }).capabilities).toContain('store-snapshot')
    await subscribe(c)
    expect(c.nodes.get(0xdeadbeef)).toMatchObject({
      id: '!deadbeef',
      user: { longName: 'Old Timer', shortName: 'OLD' },
      position: { latitude: 1, longitude: 2, from: 'position' },
      telemetry: { device: { metrics: { batteryLevel: 50 } } },
      gateways: { '!a0c0ffee': { rxSnr: 5, rxRssi: -90, count: 1 } },
    })
    expect(c.nodes.size).toBe(mesh.ingest.cache.list().length + 1)
    expect(queries[0]).toMatchObject({ limit: 500 })
  })

  it('sends big snapshots in parts', async () => {
    const { mesh, h } = await setup({ snapshotChunkNodes: 7 }, { nodes: 50 })
    mesh.feed(600)
    const c = await client(h)
    await subscribe(c)
    const parts = c.messages.filter((m) => m.type === 'snapshot')
    expect(parts.length).toBe(Math.ceil(mesh.ingest.cache.list().length / 7))
    expect(parts.map((p) => (p as { part: number }).part)).toEqual(parts.map((_, i) => i))
    expect(clientNodes(c)).toEqual(cacheNodes(mesh.ingest))
  })

  it('carries operational kinds on request, and skips (and reports) an event it cannot serialise', async () => {
    const listeners = new Map<string, Set<(payload: unknown) => void>>()
    const source: LiveSource = {
      on(event, listener) {
        const set = listeners.get(event) ?? new Set()
        listeners.set(event, set)
        set.add(listener as (payload: unknown) => void)
        return () => set.delete(listener as (payload: unknown) => void)
      },
      cache: { get: () => undefined, list: () => [] },
    }
    const emit = (event: string, payload: unknown) => {
      for (const l of listeners.get(event) ?? []) l(payload)
    }
    const errors: WsServerError[] = []
    const h = await startServer({
      source,
      kinds: ['drop', 'flush', 'status', 'packet'],
      onError: (e) => {
        errors.push(e)
        throw new Error('a throwing error handler is ignored')
      },
    })
    cleanups.push(() => h.close())
    const c = await client(h)
    expect((c.messages[0] as { kinds: string[] }).kinds).toEqual([
      'drop',
      'flush',
      'status',
      'packet',
    ])
    await subscribe(c, { filter: { kinds: ['drop', 'flush', 'status'] } })
    emit('drop', { reason: 'decode-failed', count: 1, code: 'MALFORMED_ENVELOPE' })
    emit('drop', { reason: 'rate-limited', count: 1, from: 5, big: 1n })
    emit('flush', { packets: 1, receptions: 2, undecoded: 0, durationMs: 1, attempt: 1 })
    emit('sourceStatus', { source: 'mqtt', state: 'connected', at: 1 })
    await waitFor(() => c.events.length === 3)
    expect(c.events.map((e) => e.kind)).toEqual(['drop', 'flush', 'status'])
    expect(errors.map((e) => e.code)).toEqual(['SOURCE_FAILED'])
    expect(listeners.get('nodeUpdate')).toBeUndefined()
    await h.live.close()
    expect([...listeners.values()].every((set) => set.size === 0)).toBe(true)
  })

  it('rejects unusable options', () => {
    const source = { on: () => () => {}, cache: { get: () => undefined, list: () => [] } }
    expect(() => createWsServer({ source } as never)).toThrow(/server.*port/)
    expect(() => createWsServer({ port: 0, server: createServer(), source })).toThrow(/not both/)
    expect(() => createWsServer({ port: 0 } as never)).toThrow(/source/)
    expect(() => createWsServer({ server: createServer(), source, flushMs: 0 })).toThrow(/flushMs/)
    expect(() => createWsServer({ server: createServer(), source, path: 'live' })).toThrow(/path/)
    expect(() =>
      createWsServer({ server: createServer(), source, kinds: ['packet', 'bogus' as never] }),
    ).toThrow(/bogus/)
    expect(() =>
      createWsServer({ server: createServer(), source, perMessageDeflate: { level: 12 } }),
    ).toThrow(/level/)
  })
})

void WebSocket
