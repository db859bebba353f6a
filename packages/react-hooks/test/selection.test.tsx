import type { AppPayload, DecodedPacket, WireEvent } from '@meshtap/protocol'
import { act, cleanup, render } from '@testing-library/react'
import { useRef } from 'react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  createMeshtapClient,
  type MeshtapClient,
  MeshtapProvider,
  sameItems,
  selectLinks,
  selectNodes,
  selectPositions,
  useLinks,
  useMeshEvents,
  useMeshtap,
  useMessages,
  useNode,
  useNodes,
  usePositions,
  useTelemetry,
  useTraceroutes,
} from '../src/index.js'
import { FakeSocket, FakeWebSocket, node } from './fake-socket.js'

let nextId = 1
function packet(from: number, app: AppPayload, extra: Partial<DecodedPacket> = {}): WireEvent {
  const id = nextId++
  const p = {
    kind: 'envelope',
    from,
    to: extra.to ?? 0xffffffff,
    id,
    fromId: `!${from.toString(16).padStart(8, '0')}`,
    toId: '!ffffffff',
    channel: 8,
    hopLimit: 3,
    hopStart: 3,
    wantAck: false,
    viaMqtt: false,
    rxTime: 0,
    rxSnr: 4,
    rxRssi: -100,
    encrypted: true,
    portnum: 3,
    payload: '',
    receptionClass: 'relayed',
    channelId: 'LongFast',
    app,
    ...extra,
  } as DecodedPacket
  return { id, kind: 'packet', packet: { key: `${from}:${id}`, packet: p, receivedAt: Date.now() } }
}
const pos = (lat: number, lon: number): AppPayload => ({
  type: 'position',
  position: {},
  latitude: lat,
  longitude: lon,
})
const text = (t: string): AppPayload => ({ type: 'text', text: t, isReaction: false })
const device = (battery: number): AppPayload => ({
  type: 'telemetry',
  telemetry: {},
  variant: 'device',
  metrics: { batteryLevel: battery },
})
const patch = (num: number, p: Record<string, unknown>): WireEvent => ({
  id: nextId++,
  kind: 'node',
  num,
  op: 'patch',
  patch: p,
})

let client: MeshtapClient
let ws: FakeSocket
let seq = 0

function batch(...events: WireEvent[]) {
  act(() => {
    ws.batch(++seq, events)
    client.flush()
  })
}

const renders: Record<string, number> = {}
const values: Record<string, unknown> = {}

function useProbe(name: string, value: unknown) {
  const count = useRef(0)
  count.current++
  renders[name] = count.current
  values[name] = value
}

function ProbeNode({ id }: { id: number }) {
  useProbe(`node${id}`, useNode(id))
  return null
}
function ProbeNodes() {
  // an inline filter object: compared by content, so it does not re-select on every render
  useProbe('nodes', useNodes({ ids: [1, 2], sort: 'num' }))
  return null
}
function ProbeTrack({ id }: { id: number }) {
  useProbe(`track${id}`, usePositions(id))
  return null
}
function ProbeBox() {
  useProbe('box', usePositions({ south: 0, west: 0, north: 10, east: 10 }))
  return null
}
function ProbeChat({ channel }: { channel: string }) {
  useProbe(`chat${channel}`, useMessages({ channel }))
  return null
}
function ProbeBattery() {
  useProbe('battery', useTelemetry('!00000001', 'device', { count: 2 }))
  return null
}
function ProbeTraceroutes() {
  useProbe('traceroutes', useTraceroutes(1))
  return null
}
function ProbeLinks() {
  useProbe('links', useLinks({ node: 1 }))
  return null
}
function ProbeCustom() {
  useProbe(
    'custom',
    useMeshtap((s) => [...s.nodes.values()].filter((n) => n.isGateway), sameItems),
  )
  return null
}
function ProbeEvents({ onEvent }: { onEvent: (e: WireEvent) => void }) {
  useMeshEvents(onEvent, {
    kinds: ['packet'],
    nodes: ['!00000002'],
    portnums: ['TEXT_MESSAGE_APP'],
  })
  return null
}

beforeEach(() => {
  FakeSocket.instances = []
  for (const k of Object.keys(renders)) delete renders[k]
  seq = 0
  client = createMeshtapClient({
    url: 'ws://mesh.test/live',
    WebSocket: FakeWebSocket,
    scheduleUpdate: () => () => {}, // only explicit flushes
  })
})
afterEach(() => {
  cleanup()
  client.close()
})

async function mount(ui: React.ReactNode) {
  render(<MeshtapProvider client={client}>{ui}</MeshtapProvider>)
  await vi.waitFor(() => expect(FakeSocket.instances).toHaveLength(1))
  ws = FakeSocket.instances[0] as FakeSocket
  act(() => {
    ws.handshake({ nodes: [node(1), node(2), node(3, { isGateway: true })] })
    client.flush()
  })
}

describe('selections re-render only when they change', () => {
  it('nodes', async () => {
    await mount(
      <>
        <ProbeNode id={1} />
        <ProbeNode id={2} />
        <ProbeNodes />
        <ProbeCustom />
      </>,
    )
    const r0 = { ...renders }
    expect((values.nodes as unknown[]).length).toBe(2)
    batch(patch(2, { lastHeard: 99_999 }))
    expect(renders.node1).toBe(r0.node1)
    expect(renders.node2).toBe((r0.node2 as number) + 1)
    expect(renders.nodes).toBe((r0.nodes as number) + 1)
    expect(renders.custom).toBe(r0.custom)
    batch(patch(3, { lastHeard: 99_999 }))
    expect(renders.node1).toBe(r0.node1)
    expect(renders.nodes).toBe((r0.nodes as number) + 1)
    expect(renders.custom).toBe((r0.custom as number) + 1)
    batch(patch(4, { lastHeard: 5 })) // a new node: nothing above selects it
    expect(renders.node1).toBe(r0.node1)
    expect(renders.node2).toBe((r0.node2 as number) + 1)
    expect(renders.nodes).toBe((r0.nodes as number) + 1)
  })

  it('positions, messages, telemetry, traceroutes, links', async () => {
    await mount(
      <>
        <ProbeTrack id={1} />
        <ProbeTrack id={2} />
        <ProbeBox />
        <ProbeChat channel="LongFast" />
        <ProbeChat channel="Other" />
        <ProbeBattery />
        <ProbeTraceroutes />
        <ProbeLinks />
      </>,
    )
    const r0 = { ...renders }
    batch(packet(2, pos(50, 50)))
    expect(renders.track1).toBe(r0.track1)
    expect(renders.track2).toBe((r0.track2 as number) + 1)
    expect(renders.box).toBe(r0.box) // outside the box
    batch(packet(1, pos(5, 5)))
    expect(renders.track1).toBe((r0.track1 as number) + 1)
    expect(renders.box).toBe((r0.box as number) + 1)
    expect(values.box).toMatchObject([{ num: 1, latitude: 5 }])
    batch(packet(2, text('hi'), { channelId: 'Other', portnum: 1 }))
    expect(renders.chatLongFast).toBe(r0.chatLongFast)
    expect(renders.chatOther).toBe((r0.chatOther as number) + 1)
    batch(packet(1, device(90)), packet(1, device(80)), packet(1, device(70)))
    expect((values.battery as { metrics: unknown }[]).map((s) => s.metrics)).toEqual([
      { batteryLevel: 80 },
      { batteryLevel: 70 },
    ])
    const tr = renders.traceroutes
    batch(
      packet(
        2,
        {
          type: 'traceroute',
          routeDiscovery: {},
          route: [{ num: 3, id: '!00000003', unknown: false }],
          snrTowardsDb: [6, 5],
          routeBack: [],
          snrBackDb: [4],
        },
        { to: 1, requestId: 77, portnum: 70 },
      ),
    )
    expect(renders.traceroutes).toBe((tr as number) + 1)
    expect(values.traceroutes).toMatchObject([{ origin: 1, destination: 2, isReply: true }])
    // 1 → 3 → 2 towards, 2 → 1 back
    const keys = (values.links as { key: string }[]).map((l) => l.key).sort()
    expect(keys).toEqual(['1>3', '2>1'])
    expect(
      selectLinks(client.getSnapshot())
        .map((l) => l.key)
        .sort(),
    ).toEqual(['1>3', '2>1', '3>2'])
  })

  it('calls useMeshEvents callbacks for matching events only, without rendering', async () => {
    const seen: WireEvent[] = []
    await mount(<ProbeEvents onEvent={(e) => seen.push(e)} />)
    batch(
      packet(1, text('from 1'), { portnum: 1, portnumName: 'TEXT_MESSAGE_APP' }),
      packet(2, text('from 2'), { portnum: 1, portnumName: 'TEXT_MESSAGE_APP' }),
      packet(2, pos(1, 1), { portnumName: 'POSITION_APP' }),
      patch(2, { lastHeard: 1 }),
    )
    expect(seen.map((e) => e.kind === 'packet' && e.packet.packet.app)).toMatchObject([
      { text: 'from 2' },
    ])
  })
})

describe('selectors', () => {
  it('filter, sort and limit nodes', () => {
    const snapshot = {
      ...client.getSnapshot(),
      at: 10_000,
      nodes: new Map([
        [1, node(1, { lastHeard: 9_000, user: { longName: 'Zulu' } })],
        [2, node(2, { lastHeard: 5_000, user: { longName: 'alpha' }, isGateway: true })],
        [
          3,
          node(3, {
            lastHeard: 9_500,
            position: { latitude: 1, longitude: 179, at: 0, from: 'position' },
          }),
        ],
      ]),
    }
    const nums = (f: Parameters<typeof selectNodes>[1]) =>
      selectNodes(snapshot, f).map((n) => n.num)
    expect(nums({})).toEqual([3, 1, 2])
    expect(nums({ sort: 'name' })).toEqual([3, 2, 1])
    expect(nums({ heardWithinMs: 2_000 })).toEqual([3, 1])
    expect(nums({ isGateway: true })).toEqual([2])
    expect(nums({ search: 'ZUL' })).toEqual([1])
    expect(nums({ bbox: { south: 0, north: 2, west: 170, east: -170 } })).toEqual([3])
    expect(nums({ ids: ['!00000002', 1, 'nope'], sort: 'num' })).toEqual([1, 2])
    expect(nums({ where: (n) => n.num !== 1, limit: 1 })).toEqual([3])
  })

  it('windows by time and count', () => {
    const s = client.getSnapshot()
    const mk = (at: number) => ({
      key: String(at),
      num: 1,
      id: '!00000001',
      latitude: 1,
      longitude: 1,
      at,
      source: 'position' as const,
    })
    const all = [mk(1_000), mk(2_000), mk(3_000), mk(4_000)]
    const snap = { ...s, at: 4_500, positions: { ...s.positions, all } }
    expect(selectPositions(snap, undefined, 2_000).map((p) => p.at)).toEqual([3_000, 4_000])
    expect(selectPositions(snap, undefined, { count: 3 }).map((p) => p.at)).toEqual([
      2_000, 3_000, 4_000,
    ])
    expect(selectPositions(snap, undefined, { ms: 10_000, count: 1 }).map((p) => p.at)).toEqual([
      4_000,
    ])
    expect(selectPositions(snap)).toBe(all)
  })
})
