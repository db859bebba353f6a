import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import {
  createIngest,
  createMemoryStore,
  createMeshSimulator,
  type Ingest,
  type MeshSimulator,
  type MeshSimulatorOptions,
} from '@meshtap/core'
import type { NodeState, WireEvent } from '@meshtap/protocol'
import { createWsServer, type WsServer, type WsServerOptions } from '@meshtap/ws-server'
import { WebSocket as NodeWebSocket } from 'ws'
import type { MeshtapWebSocketConstructor } from '../src/index.js'

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** The `ws` package's WebSocket, as the client option takes it. */
export const WsWebSocket: MeshtapWebSocketConstructor = NodeWebSocket

/** A real ingest (memory store, no rate limit) and a simulated mesh to feed it. */
export async function createMesh(sim: MeshSimulatorOptions = {}) {
  const ingest: Ingest = createIngest({ store: createMemoryStore(), rateLimit: false })
  await ingest.start()
  const simulator: MeshSimulator = createMeshSimulator({ seed: 7, ...sim })
  return {
    ingest,
    simulator,
    /** Pushes `n` envelopes into the ingest; returns how many. */
    feed(n: number): number {
      const messages = simulator.take(n)
      for (const m of messages) ingest.push({ ...m, receivedAt: Date.now() })
      return messages.length
    },
  }
}

export interface LiveServer {
  url: string
  port: number
  live: WsServer
  http: Server
  /** The raw TCP sockets of the WebSocket connections, newest last. */
  sockets: Socket[]
  close(): Promise<void>
}

/**
 * A real `@meshtap/ws-server` on an ephemeral loopback port (or `port`), attached to an HTTP
 * server at /live.
 */
export async function startServer(
  options: Omit<WsServerOptions, 'server' | 'port'>,
  port = 0,
): Promise<LiveServer> {
  const http = createServer((_req, res) => res.end('ok'))
  const sockets: Socket[] = []
  http.on('upgrade', (_req, socket) => sockets.push(socket as Socket))
  // Short checkpoints: a filtered client then learns the latest seq quickly (see `settled`).
  const live = createWsServer({
    path: '/live',
    flushMs: 20,
    checkpointMs: 40,
    ...options,
    server: http,
  })
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject)
    http.listen(port, '127.0.0.1', () => resolve())
  })
  const address = http.address() as AddressInfo
  return {
    url: `ws://127.0.0.1:${address.port}/live`,
    port: address.port,
    live,
    http,
    sockets,
    async close() {
      await live.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    },
  }
}

/** Waits until `check` holds, polling. */
export async function waitFor(check: () => boolean, timeoutMs = 8000, what = 'condition') {
  const t0 = Date.now()
  while (!check()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** Plain JSON copy, to compare states without undefined fields. */
export function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T
}

export const byNum = (a: NodeState, b: NodeState) => a.num - b.num

/**
 * A reference viewer on a raw `ws` socket: subscribes with `filter` and records every event id
 * and batch seq, to compare the client under test with.
 */
export async function referenceViewer(url: string, filter?: object) {
  const ws = new NodeWebSocket(url, ['meshtap.v1'])
  const events: WireEvent[] = []
  const seqs: number[] = []
  let synced = false
  let pongs = 0
  ws.on('message', (data) => {
    const m = JSON.parse(String(data))
    if (m.type === 'hello') ws.send(JSON.stringify({ type: 'subscribe', filter }))
    if (m.type === 'snapshot' && m.done) synced = true
    if (m.type === 'pong') pongs++
    if (m.type === 'batch') {
      seqs.push(m.seq)
      events.push(...m.events)
    }
  })
  await waitFor(() => synced, 5000, 'reference viewer snapshot')
  return {
    events,
    seqs,
    /** Resolves when every batch sent before now has arrived. */
    async sync() {
      const before = pongs
      ws.send(JSON.stringify({ type: 'ping' }))
      await waitFor(() => pongs > before, 5000, 'reference pong')
    },
    close() {
      ws.close()
    },
  }
}
