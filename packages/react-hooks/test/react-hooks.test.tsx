import type { NodeState, WireEvent } from '@meshtap/protocol'
import type { WsServerOptions } from '@meshtap/ws-server'
import { act, cleanup, render, screen } from '@testing-library/react'
import { type ReactNode, StrictMode, useRef } from 'react'
import { hydrateRoot } from 'react-dom/client'
import { renderToString } from 'react-dom/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createMeshtapClient,
  type MeshtapClient,
  type MeshtapClientOptions,
  MeshtapProvider,
  useConnection,
  useGateways,
  useLinks,
  useMeshEvents,
  useMessages,
  useNode,
  useNodes,
  usePositions,
  useStats,
  useTelemetry,
  useTraceroutes,
} from '../src/index.js'
import {
  byNum,
  createMesh,
  type LiveServer,
  plain,
  referenceViewer,
  sleep,
  startServer,
  WsWebSocket,
  waitFor,
} from './helpers.js'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  cleanup()
  for (const f of cleanups.splice(0).reverse()) await f()
})

async function setup(serverOptions: Partial<Omit<WsServerOptions, 'server' | 'port'>> = {}) {
  const mesh = await createMesh()
  const server = await startServer({ source: mesh.ingest, ...serverOptions })
  cleanups.push(async () => {
    await server.close()
    await mesh.ingest.stop()
  })
  return { mesh, server }
}

/** A client for the server (the `ws` package's WebSocket unless `useGlobal`). */
function clientFor(server: LiveServer, options: Partial<MeshtapClientOptions> = {}): MeshtapClient {
  const client = createMeshtapClient({
    url: server.url,
    WebSocket: WsWebSocket,
    reconnect: { initialDelayMs: 20, maxDelayMs: 200, jitter: 0.5 },
    ...options,
  })
  cleanups.push(() => client.close())
  return client
}

/** Feeds traffic in steps, so that it spreads over several batches. */
async function traffic(feed: (n: number) => number, steps: number, perStep: number) {
  for (let i = 0; i < steps; i++) {
    feed(perStep)
    await sleep(5)
  }
}

const cacheNodes = (ingest: { cache: { list(): NodeState[] } }) =>
  plain(ingest.cache.list().sort(byNum))
const clientNodes = (client: MeshtapClient) =>
  plain([...client.getSnapshot().nodes.values()].sort(byNum))

/** Waits until the client has applied every batch the server made so far. */
async function settled(client: MeshtapClient, server: LiveServer) {
  await sleep(60)
  await waitFor(
    () => {
      client.flush()
      return (
        client.getStatus().synced && client.getSnapshot().stats.seq >= server.live.metrics().seq
      )
    },
    8000,
    'client to catch up',
  )
}

function Status() {
  const { state, synced } = useConnection()
  return <p data-testid="status">{`${state}${synced ? ' synced' : ''}`}</p>
}

function NodeList() {
  const nodes = useNodes({ sort: 'num' })
  return (
    <ul data-testid="nodes">
      {nodes.map((n) => (
        <li key={n.num}>{n.user?.longName ?? n.id}</li>
      ))}
    </ul>
  )
}

/** Puts what every hook returns into `sink`. */
function Everything({ sink }: { sink: Record<string, unknown> }) {
  const nodes = useNodes()
  const first = nodes.find((n) => n.telemetry.device) ?? nodes[0]
  sink.nodes = nodes
  sink.node = useNode(first?.id ?? '!00000000')
  sink.positions = usePositions()
  sink.telemetry = useTelemetry(first?.num ?? 0, 'device')
  sink.messages = useMessages()
  sink.traceroutes = useTraceroutes()
  sink.links = useLinks()
  sink.gateways = useGateways()
  sink.stats = useStats()
  return null
}

function Senders({ onSender }: { onSender: (from: number) => void }) {
  useMeshEvents((e) => {
    if (e.kind === 'packet') onSender(e.packet.packet.from)
  })
  return null
}

function Panel() {
  useNodes()
  useNode('!00000001')
  useStats()
  useMeshEvents(() => {})
  return null
}

function Toggle({ client, show }: { client: MeshtapClient; show: boolean }) {
  return <MeshtapProvider client={client}>{show ? <Panel /> : null}</MeshtapProvider>
}

type Renders = { list: number; stats: number; quiet: number }

function useRenderCount(renders: Renders, name: keyof Renders) {
  const count = useRef(0)
  count.current++
  renders[name] = count.current
}

function CountedList({ renders }: { renders: Renders }) {
  useRenderCount(renders, 'list')
  const nodes = useNodes()
  return <p data-testid="count">{nodes.length}</p>
}

function CountedStats({ renders }: { renders: Renders }) {
  useRenderCount(renders, 'stats')
  const { events } = useStats()
  return <p data-testid="events">{events}</p>
}

/** A selection the traffic does not touch: a node that does not exist. */
function CountedQuiet({ renders }: { renders: Renders }) {
  useRenderCount(renders, 'quiet')
  useNode('!deadbeef')
  return null
}

function Orphan(): ReactNode {
  useNodes()
  return null
}

function OrphanConnection(): ReactNode {
  useConnection()
  return null
}

function Badge() {
  const c = useConnection()
  return <p data-testid="badge">{`${c.state} ${c.error?.code ?? ''}`}</p>
}

describe('hooks against a real @meshtap/ws-server', () => {
  it('shows the mesh: nodes, positions, telemetry, messages, traceroutes, links, gateways, stats', async () => {
    const { mesh, server } = await setup()
    mesh.feed(200)
    await sleep(50)
    let packetsSeen = 0
    const seen: Record<string, unknown> = {}
    mesh.ingest.on('packet', () => packetsSeen++)
    const client = clientFor(server)
    render(
      <MeshtapProvider client={client}>
        <Status />
        <NodeList />
        <Everything sink={seen} />
      </MeshtapProvider>,
    )
    await waitFor(() => screen.getByTestId('status').textContent === 'open synced')
    // the snapshot: every node the ingest knows
    expect(screen.getByTestId('nodes').children.length).toBe(mesh.ingest.cache.list().length)
    await traffic(mesh.feed, 20, 100)
    await act(() => settled(client, server))
    expect(clientNodes(client)).toEqual(cacheNodes(mesh.ingest))
    expect((seen.nodes as NodeState[]).length).toBe(mesh.ingest.cache.list().length)
    expect(seen.node).toBe(client.getSnapshot().nodes.get((seen.node as NodeState).num))
    const stats = seen.stats as ReturnType<typeof useStats>
    expect(stats.packets).toBe(packetsSeen)
    expect(stats.duplicates).toBe(0)
    expect((seen.positions as unknown[]).length).toBeGreaterThan(0)
    expect((seen.telemetry as unknown[]).length).toBeGreaterThan(0)
    expect((seen.messages as unknown[]).length).toBeGreaterThan(0)
    expect((seen.traceroutes as unknown[]).length).toBeGreaterThan(0)
    expect((seen.links as unknown[]).length).toBeGreaterThan(0)
    expect((seen.gateways as unknown[]).length).toBeGreaterThan(0)
    expect(screen.getByTestId('nodes').children.length).toBe(mesh.ingest.cache.list().length)
  })

  it('connects through the global (browser) WebSocket when none is given', async () => {
    const { mesh, server } = await setup()
    mesh.feed(100)
    await sleep(50)
    render(
      <MeshtapProvider url={server.url}>
        <Status />
        <NodeList />
      </MeshtapProvider>,
    )
    await waitFor(() => screen.getByTestId('status').textContent === 'open synced')
    expect(screen.getByTestId('nodes').children.length).toBe(mesh.ingest.cache.list().length)
  })

  it('resumes after its socket is killed: no event lost or duplicated', async () => {
    const { mesh, server } = await setup()
    mesh.feed(100)
    await sleep(50)
    const reference = await referenceViewer(server.url)
    cleanups.push(() => reference.close())
    const client = clientFor(server)
    const events: WireEvent[] = []
    client.on('event', (e) => events.push(e))
    render(
      <MeshtapProvider client={client}>
        <Status />
      </MeshtapProvider>,
    )
    await waitFor(() => screen.getByTestId('status').textContent === 'open synced')
    await reference.sync()
    const startRef = reference.events.length
    const states: string[] = []
    client.on('status', (s) => states.push(s.state))

    await traffic(mesh.feed, 5, 80)
    ;(server.sockets.at(-1) as { destroy(): void }).destroy() // the network drops
    await traffic(mesh.feed, 10, 80)
    await act(() => settled(client, server))
    await reference.sync()

    expect(states).toContain('reconnecting')
    const s = client.getSnapshot().stats
    expect(s).toMatchObject({
      resumes: 1,
      resumesRefused: 0,
      reconnects: 1,
      duplicates: 0,
      snapshots: 1,
    })
    const ids = events.map((e) => e.id)
    expect(new Set(ids).size).toBe(ids.length)
    expect(ids).toEqual(reference.events.slice(startRef).map((e) => e.id))
    expect(ids.length).toBeGreaterThan(500)
    expect(clientNodes(client)).toEqual(cacheNodes(mesh.ingest))
    expect(screen.getByTestId('status').textContent).toBe('open synced')
  })

  it('reloads a snapshot when the server restarted (another epoch)', async () => {
    const mesh = await createMesh()
    mesh.feed(150)
    let server = await startServer({ source: mesh.ingest })
    cleanups.push(async () => {
      await server.close()
      await mesh.ingest.stop()
    })
    const client = clientFor(server)
    render(
      <MeshtapProvider client={client}>
        <Status />
        <NodeList />
      </MeshtapProvider>,
    )
    await waitFor(() => screen.getByTestId('status').textContent === 'open synced')
    const firstEpoch = client.getStatus().epoch
    await server.close() // closes every client with 1001
    await waitFor(() => client.getStatus().state === 'reconnecting', 5000, 'reconnecting')
    mesh.feed(300) // nobody is listening: a resume could not contain these
    server = await startServer({ source: mesh.ingest }, server.port)
    await act(() => settled(client, server))
    expect(client.getStatus().epoch).not.toBe(firstEpoch)
    const s = client.getSnapshot().stats
    expect(s).toMatchObject({ resumesRefused: 1, snapshots: 2, duplicates: 0 })
    expect(clientNodes(client)).toEqual(cacheNodes(mesh.ingest))
    await waitFor(
      () => screen.getByTestId('nodes').children.length === mesh.ingest.cache.list().length,
    )
  })

  it('narrows to the filter, and re-subscribes when the filter prop changes', async () => {
    const { mesh, server } = await setup()
    mesh.feed(300)
    await sleep(50)
    const [a, b] = mesh.ingest.cache.list().sort(byNum) as [NodeState, NodeState]
    let senders = new Set<number>()
    const client = clientFor(server)
    const view = (nodes: number[]) => (
      <MeshtapProvider client={client} filter={{ nodes }}>
        <Status />
        <NodeList />
        <Senders onSender={(n) => senders.add(n)} />
      </MeshtapProvider>
    )
    const { rerender } = render(view([a.num]))
    await waitFor(() => screen.getByTestId('status').textContent === 'open synced')
    await traffic(mesh.feed, 10, 100)
    await act(() => settled(client, server))
    expect(clientNodes(client).map((n) => n.num)).toEqual([a.num])
    expect(screen.getByTestId('nodes').children.length).toBe(1)
    for (const m of client.getSnapshot().messages.all) expect([m.from, m.to]).toContain(a.num)
    expect([...senders].every((n) => n === a.num)).toBe(true)

    senders = new Set()
    rerender(view([a.num, b.num]))
    await traffic(mesh.feed, 10, 100)
    await act(() => settled(client, server))
    expect(clientNodes(client).map((n) => n.num)).toEqual([a.num, b.num].sort((x, y) => x - y))
    await waitFor(() => screen.getByTestId('nodes').children.length === 2)
    expect(client.getSnapshot().stats.snapshots).toBe(2)
  })

  it('unsubscribes when components unmount, and closes its own connection with the provider', async () => {
    const { mesh, server } = await setup()
    mesh.feed(100)
    await sleep(50)
    const client = clientFor(server)
    client.connect()
    await waitFor(() => client.getStatus().synced)
    const base = client.listenerCount()
    const { rerender } = render(<Toggle client={client} show />)
    expect(client.listenerCount()).toBe(base + 4)
    rerender(<Toggle client={client} show={false} />)
    expect(client.listenerCount()).toBe(base)
    expect(server.live.metrics().clients).toBe(1) // a given client is left open
    client.close()
    await waitFor(() => server.live.metrics().clients === 0, 5000, 'server-side close')

    const { unmount } = render(
      <StrictMode>
        <MeshtapProvider url={server.url} options={{ WebSocket: WsWebSocket }}>
          <Status />
        </MeshtapProvider>
      </StrictMode>,
    )
    await waitFor(() => screen.getByTestId('status').textContent === 'open synced')
    await waitFor(() => server.live.metrics().subscribed === 1, 5000, 'one subscription')
    unmount()
    await waitFor(() => server.live.metrics().clients === 0, 5000, 'server-side close')
    expect(server.live.metrics().subscribed).toBe(0)
  })

  it('renders a burst of 10,000 events a bounded number of times', async () => {
    const { mesh, server } = await setup({ maxBufferedBytes: 64 * 2 ** 20 })
    mesh.feed(100)
    await sleep(50)
    const client = clientFor(server)
    let events = 0
    let batches = 0
    client.on('event', () => events++)
    client.on('message', (m) => {
      if (m.type === 'batch') batches++
    })
    const renders: Renders = { list: 0, stats: 0, quiet: 0 }
    render(
      <MeshtapProvider client={client}>
        <CountedList renders={renders} />
        <CountedStats renders={renders} />
        <CountedQuiet renders={renders} />
      </MeshtapProvider>,
    )
    await waitFor(() => client.getStatus().synced)
    await act(() => sleep(50))
    const before = { ...renders }
    const batchesBefore = batches
    events = 0
    // 10,000 envelopes in 20 bursts of 500 (the server cuts them into batches every 20 ms)
    for (let i = 0; i < 20; i++) {
      mesh.feed(500)
      await act(() => sleep(2))
    }
    await act(() => settled(client, server))
    await act(() => sleep(50))
    const received = batches - batchesBefore
    const listRenders = renders.list - before.list
    const statsRenders = renders.stats - before.stats
    expect(events).toBeGreaterThanOrEqual(10_000)
    // at most one render per update, at most one update per frame: never more than the batches
    expect(statsRenders).toBeGreaterThan(0)
    expect(statsRenders).toBeLessThanOrEqual(received + 2)
    expect(listRenders).toBeLessThanOrEqual(received + 2)
    expect(statsRenders).toBeLessThan(100)
    expect(renders.quiet - before.quiet).toBe(0)
    expect(Number(screen.getByTestId('events').textContent)).toBe(client.getSnapshot().stats.events)
  })

  it('renders on the server without connecting, then hydrates and connects', async () => {
    const { mesh, server } = await setup()
    mesh.feed(100)
    await sleep(50)
    const app = (
      <MeshtapProvider url={server.url} options={{ WebSocket: WsWebSocket }}>
        <Status />
        <NodeList />
      </MeshtapProvider>
    )
    const html = renderToString(app)
    expect(html).toContain('closed')
    expect(html).toContain('<ul data-testid="nodes"></ul>')
    await sleep(50)
    expect(server.live.metrics().clients).toBe(0)
    const container = document.createElement('div')
    container.innerHTML = html
    document.body.append(container)
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {})
    const root = await act(async () => hydrateRoot(container, app))
    cleanups.push(() => act(() => root.unmount()))
    await waitFor(() => container.textContent?.startsWith('open synced') === true)
    await waitFor(() => container.querySelectorAll('li').length === mesh.ingest.cache.list().length)
    expect(errors).not.toHaveBeenCalled()
    errors.mockRestore()
  })

  it('throws a clear error for a hook outside the provider', () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {})
    expect(() => render(<Orphan />)).toThrow(/useNodes must be used inside <MeshtapProvider>/)
    expect(() => render(<OrphanConnection />)).toThrow(
      /useConnection must be used inside <MeshtapProvider>/,
    )
    expect(() => render(<MeshtapProvider>{null}</MeshtapProvider>)).toThrow(/needs a `url`/)
    spy.mockRestore()
  })

  it('reports a refused token and retries with backoff', async () => {
    const { mesh, server } = await setup({
      authenticate: (_req, { token }) => (token === 'good-token' ? { user: 'viewer' } : undefined),
    })
    mesh.feed(50)
    const bad = clientFor(server, { token: 'bad-token' })
    render(
      <MeshtapProvider client={bad}>
        <Badge />
      </MeshtapProvider>,
    )
    await waitFor(() => bad.getStatus().retries >= 3, 8000, 'three retries')
    expect(bad.getStatus()).toMatchObject({ state: 'reconnecting' })
    expect(bad.getStatus().error?.code).toBe('CONNECT_FAILED')
    await waitFor(() =>
      /^reconnecting CONNECT_FAILED/.test(screen.getByTestId('badge').textContent ?? ''),
    )
    bad.close()
    cleanup()

    let token = 'bad-token'
    const good = clientFor(server, { token: () => token })
    good.connect()
    await waitFor(() => good.getStatus().retries >= 1)
    token = 'good-token'
    good.retry()
    await waitFor(() => good.getStatus().synced, 5000, 'authenticated')
    expect(server.live.connections()[0]?.principal).toEqual({ user: 'viewer' })
  })
})
