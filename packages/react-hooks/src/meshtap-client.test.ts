import type { AppPayload, DecodedPacket, WireEvent } from '@meshtap/protocol'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { FakeSocket, FakeWebSocket, hello, node } from '../test/fake-socket.js'
import type { UpdateScheduler } from './frame-scheduler.js'
import { createMeshtapClient, type MeshtapClientOptions } from './meshtap-client.js'

let nextEventId = 1

function packet(
  from: number,
  app: AppPayload,
  extra: Partial<DecodedPacket> = {},
  to = 0xffffffff,
): WireEvent {
  const id = nextEventId++
  const p = {
    kind: 'envelope',
    from,
    to,
    id,
    fromId: `!${from.toString(16).padStart(8, '0')}`,
    toId: `!${to.toString(16).padStart(8, '0')}`,
    channel: 8,
    hopLimit: 3,
    hopStart: 3,
    wantAck: false,
    viaMqtt: false,
    rxTime: 0,
    rxSnr: 5,
    rxRssi: -90,
    encrypted: true,
    portnum: 1,
    payload: '',
    receptionClass: 'direct',
    channelId: 'LongFast',
    gatewayId: '!0000aaaa',
    app,
    ...extra,
  } as DecodedPacket
  return { id, kind: 'packet', packet: { key: `${from}:${id}`, packet: p, receivedAt: Date.now() } }
}

const position = (lat: number, lon: number): AppPayload => ({
  type: 'position',
  position: {},
  latitude: lat,
  longitude: lon,
})
const text = (t: string): AppPayload => ({ type: 'text', text: t, isReaction: false })

function nodeEvent(num: number, patch: Record<string, unknown>): WireEvent {
  return { id: nextEventId++, kind: 'node', num, op: 'patch', patch }
}

/** Updates run only when the test says so. */
function manualScheduler() {
  let pending: (() => void) | undefined
  const schedule: UpdateScheduler = (flush) => {
    pending = flush
    return () => {
      pending = undefined
    }
  }
  return {
    schedule,
    run() {
      const f = pending
      pending = undefined
      f?.()
    },
    get pending() {
      return pending !== undefined
    },
  }
}

function makeClient(options: Partial<MeshtapClientOptions> = {}) {
  const scheduler = manualScheduler()
  const client = createMeshtapClient({
    url: 'ws://mesh.test/live',
    WebSocket: FakeWebSocket,
    scheduleUpdate: scheduler.schedule,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 },
    ...options,
  })
  return { client, scheduler }
}

const lastSocket = () => FakeSocket.instances.at(-1) as FakeSocket

beforeEach(() => {
  FakeSocket.instances = []
})
afterEach(() => {
  vi.useRealTimers()
})

describe('createMeshtapClient: protocol', () => {
  it('does nothing until connect(), then says hello, subscribes and loads the snapshot', async () => {
    const { client } = makeClient({ filter: { channels: ['LongFast'] } })
    expect(FakeSocket.instances).toHaveLength(0)
    expect(client.getStatus().state).toBe('closed')
    client.connect()
    await vi.waitFor(() => expect(FakeSocket.instances).toHaveLength(1))
    const ws = lastSocket()
    expect(ws.protocols).toEqual(['meshtap.v1'])
    expect(client.getStatus().state).toBe('connecting')
    ws.open()
    expect(client.getStatus().state).toBe('open')
    expect(ws.sent[0]).toMatchObject({ type: 'hello', protocol: 1 })
    ws.receive(hello('e1', 5))
    const sub = ws.lastSent('subscribe')
    expect(sub).toMatchObject({ type: 'subscribe', filter: { channels: ['LongFast'] } })
    expect(sub).not.toHaveProperty('resume')
    ws.receive({
      type: 'subscribed',
      id: sub?.id,
      epoch: 'e1',
      seq: 5,
      filter: {},
      resumed: false,
      snapshot: true,
    })
    ws.receive({ type: 'snapshot', seq: 5, part: 0, nodes: [node(1), node(2)], done: false })
    expect(client.getStatus().synced).toBe(false)
    ws.receive({ type: 'snapshot', seq: 5, part: 1, nodes: [node(3)], done: true })
    client.flush()
    const s = client.getSnapshot()
    expect([...s.nodes.keys()].sort()).toEqual([1, 2, 3])
    expect(s.connection).toMatchObject({ state: 'open', synced: true, epoch: 'e1', retries: 0 })
    expect(s.stats).toMatchObject({ seq: 5, snapshots: 1 })
  })

  it('applies batches: node patches, buffers, links, gateways; shares what did not change', async () => {
    const { client } = makeClient()
    client.connect()
    await vi.waitFor(() => expect(FakeSocket.instances).toHaveLength(1))
    const ws = lastSocket()
    ws.handshake({ nodes: [node(1), node(2)] })
    client.flush()
    const s0 = client.getSnapshot()
    ws.batch(1, [
      packet(1, position(37.5, -122.1)),
      packet(1, text('hello'), {}, 2),
      nodeEvent(1, { lastHeard: 5000, user: { longName: 'One' } }),
    ])
    client.flush()
    const s1 = client.getSnapshot()
    expect(s1).not.toBe(s0)
    expect(s1.nodes.get(1)?.user?.longName).toBe('One')
    expect(s1.nodes.get(2)).toBe(s0.nodes.get(2))
    expect(s1.positions.byNode.get(1)).toHaveLength(1)
    expect(s1.positions.all[0]).toMatchObject({ num: 1, latitude: 37.5, longitude: -122.1 })
    expect(s1.messages.byChannel.get('LongFast')?.[0]).toMatchObject({
      text: 'hello',
      to: 2,
      direct: true,
    })
    expect(s1.messages.byNode.get(2)).toHaveLength(1)
    expect(s1.gateways).toMatchObject([{ id: '!0000aaaa', copies: 2, firstCopies: 2 }])
    expect(s1.links.map((l) => l.key)).toEqual([`1>${0xaaaa}`])
    expect(s1.stats).toMatchObject({ packets: 2, nodeEvents: 1, seq: 1, byPort: { '1': 2 } })

    ws.batch(2, [packet(2, position(1, 2))])
    client.flush()
    const s2 = client.getSnapshot()
    expect(s2.positions.byNode.get(1)).toBe(s1.positions.byNode.get(1))
    expect(s2.messages).toBe(s1.messages)
    expect(s2.nodes).toBe(s1.nodes)
    expect(s2.positions.byNode.get(2)).toHaveLength(1)
  })

  it('ignores batches and events it already has', async () => {
    const { client } = makeClient()
    client.connect()
    await vi.waitFor(() => expect(FakeSocket.instances).toHaveLength(1))
    const ws = lastSocket()
    ws.handshake()
    const e = packet(1, text('once'))
    ws.batch(1, [e])
    ws.batch(1, [e])
    ws.batch(2, [e, packet(1, text('twice'))])
    client.flush()
    const s = client.getSnapshot()
    expect(s.messages.all.map((m) => m.text)).toEqual(['once', 'twice'])
    expect(s.stats.duplicates).toBe(2)
    expect(s.stats.seq).toBe(2)
  })

  it('reconnects with backoff and resumes from the next sequence number', async () => {
    vi.useFakeTimers({ now: 1_000_000 })
    const { client } = makeClient()
    client.connect()
    await vi.advanceTimersByTimeAsync(0)
    const ws = lastSocket()
    ws.handshake({ nodes: [node(1)] })
    ws.batch(7, [packet(1, text('a'))])
    ws.drop(1006)
    const st = client.getStatus()
    expect(st).toMatchObject({
      state: 'reconnecting',
      retries: 1,
      nextRetryAt: 1_000_100,
      synced: false,
    })
    expect(st.error?.code).toBe('CONNECTION_LOST')
    await vi.advanceTimersByTimeAsync(99)
    expect(FakeSocket.instances).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(FakeSocket.instances).toHaveLength(2)
    const ws2 = lastSocket()
    ws2.open()
    ws2.receive(hello('e1', 9))
    const sub = ws2.lastSent('subscribe')
    expect(sub?.resume).toEqual({ epoch: 'e1', fromSeq: 8 })
    ws2.receive({
      type: 'subscribed',
      id: sub?.id,
      epoch: 'e1',
      seq: 9,
      filter: {},
      resumed: true,
      snapshot: false,
    })
    ws2.batch(8, [packet(1, text('b'))])
    ws2.batch(9, [packet(1, text('c'))])
    client.flush()
    const s = client.getSnapshot()
    expect(s.messages.all.map((m) => m.text)).toEqual(['a', 'b', 'c'])
    expect(s.nodes.has(1)).toBe(true)
    expect(s.stats).toMatchObject({
      resumes: 1,
      reconnects: 1,
      snapshots: 1,
      duplicates: 0,
      seq: 9,
    })
    expect(s.connection).toMatchObject({ state: 'open', synced: true, retries: 0 })
  })

  it('falls back to a snapshot when the server cannot resume', async () => {
    vi.useFakeTimers()
    const { client } = makeClient()
    client.connect()
    await vi.advanceTimersByTimeAsync(0)
    lastSocket().handshake({ nodes: [node(1), node(2)] })
    lastSocket().batch(3, [])
    lastSocket().drop(1001)
    await vi.advanceTimersByTimeAsync(100)
    const ws = lastSocket()
    ws.open()
    ws.receive(hello('e2', 1))
    const sub = ws.lastSent('subscribe')
    expect(sub?.resume).toEqual({ epoch: 'e1', fromSeq: 4 })
    ws.receive({
      type: 'subscribed',
      id: sub?.id,
      epoch: 'e2',
      seq: 1,
      filter: {},
      resumed: false,
      snapshot: true,
    })
    ws.receive({ type: 'snapshotNeeded', fromSeq: 4, oldestSeq: 1, seq: 1, reason: 'epoch' })
    ws.receive({ type: 'snapshot', seq: 1, part: 0, nodes: [node(2), node(3)], done: true })
    ws.batch(2, [{ id: 1, kind: 'node', num: 3, op: 'leave' }])
    client.flush()
    const s = client.getSnapshot()
    expect([...s.nodes.keys()]).toEqual([2])
    expect(s.stats).toMatchObject({ resumesRefused: 1, snapshots: 2, seq: 2, epoch: 'e2' })
  })

  it('reloads after lagged, holding batches until the snapshot is complete', async () => {
    const { client } = makeClient()
    client.connect()
    await vi.waitFor(() => expect(FakeSocket.instances).toHaveLength(1))
    const ws = lastSocket()
    ws.handshake({ nodes: [node(1)] })
    ws.batch(1, [packet(1, text('a'))])
    ws.receive({ type: 'lagged', fromSeq: 2, seq: 40 })
    expect(client.getStatus().synced).toBe(false)
    ws.batch(41, [packet(2, text('held'))])
    ws.receive({ type: 'snapshot', seq: 40, part: 0, nodes: [node(2)], done: false })
    ws.receive({ type: 'snapshot', seq: 40, part: 1, nodes: [node(3)], done: true })
    ws.batch(42, [packet(3, text('c'))])
    client.flush()
    const s = client.getSnapshot()
    expect([...s.nodes.keys()].sort()).toEqual([2, 3])
    expect(s.messages.all.map((m) => m.text)).toEqual(['a', 'held', 'c'])
    expect(s.stats).toMatchObject({ lagged: 1, snapshots: 2, seq: 42, duplicates: 0 })
    expect(client.getStatus().synced).toBe(true)
  })

  it('close() then connect() resumes where it stopped', async () => {
    const { client } = makeClient()
    client.connect()
    await vi.waitFor(() => expect(FakeSocket.instances).toHaveLength(1))
    lastSocket().handshake({ nodes: [node(1)] })
    lastSocket().batch(3, [])
    client.close()
    expect(client.getStatus().state).toBe('closed')
    expect(lastSocket().readyState).toBe(3)
    client.connect()
    await vi.waitFor(() => expect(FakeSocket.instances).toHaveLength(2))
    lastSocket().open()
    lastSocket().receive(hello('e1', 3))
    expect(lastSocket().lastSent('subscribe')?.resume).toEqual({ epoch: 'e1', fromSeq: 4 })
  })

  it('caps the backoff, adds jitter, and gives up after maxRetries', async () => {
    vi.useFakeTimers({ now: 0 })
    vi.spyOn(Math, 'random').mockReturnValue(1)
    const { client } = makeClient({
      reconnect: { initialDelayMs: 100, maxDelayMs: 350, jitter: 0.5, maxRetries: 5 },
    })
    client.connect()
    const delays: number[] = []
    for (let i = 0; i < 6; i++) {
      await vi.advanceTimersByTimeAsync(0)
      lastSocket().drop(1006)
      const { nextRetryAt, state } = client.getStatus()
      if (state === 'closed') break
      delays.push((nextRetryAt as number) - Date.now())
      await vi.advanceTimersByTimeAsync(nextRetryAt as number)
    }
    // 100, 200, 400→350, 350, 350 each halved by the jitter (random() = 1)
    expect(delays).toEqual([50, 100, 175, 175, 175])
    const st = client.getStatus()
    expect(st.state).toBe('closed')
    expect(st.error?.code).toBe('CONNECT_FAILED')
    vi.mocked(Math.random).mockRestore()
    client.retry()
    expect(client.getStatus().state).toBe('connecting')
  })

  it('retry() skips the wait', async () => {
    vi.useFakeTimers()
    const { client } = makeClient({ reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 } })
    client.connect()
    await vi.advanceTimersByTimeAsync(0)
    lastSocket().drop()
    expect(client.getStatus().state).toBe('reconnecting')
    client.retry()
    await vi.advanceTimersByTimeAsync(0)
    expect(FakeSocket.instances).toHaveLength(2)
    expect(client.getStatus().nextRetryAt).toBeUndefined()
  })

  it('stops on a protocol version it does not speak', async () => {
    const { client } = makeClient()
    client.connect()
    await vi.waitFor(() => expect(FakeSocket.instances).toHaveLength(1))
    const ws = lastSocket()
    ws.open()
    ws.receive({ ...hello('e1', 0), protocol: 2 })
    const st = client.getStatus()
    expect(st.state).toBe('closed')
    expect(st.error?.code).toBe('UNSUPPORTED_PROTOCOL')
    expect(ws.readyState).toBe(3)
  })

  it('drops a silent connection and reconnects', async () => {
    vi.useFakeTimers()
    const { client } = makeClient({ pingIntervalMs: 1000 })
    client.connect()
    await vi.advanceTimersByTimeAsync(0)
    const ws = lastSocket()
    ws.handshake()
    await vi.advanceTimersByTimeAsync(1000)
    expect(ws.lastSent('ping')).toBeDefined()
    await vi.advanceTimersByTimeAsync(1000)
    expect(client.getStatus().error?.code).toBe('TIMEOUT')
    expect(client.getStatus().state).toBe('reconnecting')
    expect(ws.readyState).toBe(3)
  })

  it('sends the token as a subprotocol, or in the query when it cannot be one', async () => {
    const a = makeClient({ token: 'abc.DEF_123-x' }).client
    a.connect()
    await vi.waitFor(() => expect(FakeSocket.instances).toHaveLength(1))
    expect(lastSocket().protocols).toEqual(['meshtap.v1', 'meshtap.token.abc.DEF_123-x'])
    const b = makeClient({ url: 'ws://h/live?x=1', token: async () => 'a b/c' }).client
    b.connect()
    await vi.waitFor(() => expect(FakeSocket.instances).toHaveLength(2))
    expect(lastSocket().url).toBe('ws://h/live?x=1&token=a%20b%2Fc')
    const c = makeClient({
      token: () => {
        throw new Error('no session')
      },
    }).client
    c.connect()
    await vi.waitFor(() => expect(c.getStatus().error?.code).toBe('TOKEN_FAILED'))
    expect(c.getStatus().state).toBe('reconnecting')
    for (const x of [a, b, c]) x.close()
  })

  it('re-subscribes on setFilter, forgetting the previous selection', async () => {
    const { client } = makeClient()
    client.connect()
    await vi.waitFor(() => expect(FakeSocket.instances).toHaveLength(1))
    const ws = lastSocket()
    ws.handshake({ nodes: [node(1)] })
    ws.batch(1, [packet(1, text('x'))])
    expect(() => client.setFilter({ channels: [] })).toThrow(/invalid filter: filter.channels/)
    client.setFilter({ nodes: [2] })
    const sub = ws.lastSent('subscribe')
    expect(sub).toMatchObject({ filter: { nodes: [2] } })
    expect(sub).not.toHaveProperty('resume')
    ws.batch(2, [packet(1, text('old filter'))])
    ws.receive({
      type: 'subscribed',
      id: sub?.id,
      epoch: 'e1',
      seq: 2,
      filter: {},
      resumed: false,
      snapshot: true,
    })
    ws.receive({ type: 'snapshot', seq: 2, part: 0, nodes: [node(2)], done: true })
    client.flush()
    const s = client.getSnapshot()
    expect([...s.nodes.keys()]).toEqual([2])
    expect(s.messages.all).toHaveLength(0)
    client.setFilter({ nodes: [2] })
    expect(ws.sent.filter((m) => m.type === 'subscribe')).toHaveLength(2)
  })

  it('validates its options', () => {
    expect(() => createMeshtapClient({ url: '' })).toThrow(/`url` is required/)
    expect(() => createMeshtapClient({ url: 'ws://x', reconnect: { jitter: 2 } })).toThrow(/jitter/)
    expect(() => createMeshtapClient({ url: 'ws://x', limits: { positions: 0 } })).toThrow(
      /limits.positions/,
    )
    expect(() =>
      createMeshtapClient({ url: 'ws://x', filter: { kinds: ['nope' as never] } }),
    ).toThrow(/INVALID|filter.kinds/)
  })
})

describe('createMeshtapClient: updates', () => {
  it('publishes a burst of 10,000 events as one update, with bounded buffers', async () => {
    const { client, scheduler } = makeClient({
      limits: { positions: 100, positionsPerNode: 10, maxBufferedNodes: 50, messages: 20 },
    })
    let notified = 0
    const unsubscribe = client.subscribe(() => notified++)
    client.connect()
    await vi.waitFor(() => expect(FakeSocket.instances).toHaveLength(1))
    lastSocket().handshake()
    scheduler.run()
    notified = 0
    let seq = 0
    for (let i = 0; i < 100; i++) {
      const events: WireEvent[] = []
      for (let j = 0; j < 100; j++) {
        const from = 1 + ((i * 100 + j) % 500)
        events.push(j % 2 ? packet(from, position(10, 10 + j / 100)) : packet(from, text(`m${j}`)))
      }
      lastSocket().batch(++seq, events)
    }
    expect(notified).toBe(0)
    scheduler.run()
    expect(notified).toBe(1)
    const s = client.getSnapshot()
    expect(s.stats.events).toBe(10_000)
    expect(s.positions.all).toHaveLength(100)
    expect(s.positions.byNode.size).toBe(50)
    for (const track of s.positions.byNode.values()) expect(track.length).toBeLessThanOrEqual(10)
    expect(s.messages.all).toHaveLength(20)
    expect(s.messages.byNode.size).toBe(50)
    unsubscribe()
    expect(client.listenerCount()).toBe(0)
  })

  it('counts its listeners', () => {
    const { client } = makeClient()
    const a = client.subscribe(() => {})
    const b = client.on('event', () => {})
    expect(client.listenerCount()).toBe(2)
    a()
    b()
    b()
    expect(client.listenerCount()).toBe(0)
  })
})
