import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  createIngest,
  createMemoryStore,
  createMeshSimulator,
  type Ingest,
  type MeshSimulator,
  type MeshSimulatorOptions,
} from '@meshtap/core'
import {
  applyNodeEvent,
  type NodeState,
  type ServerMessage,
  type WireEvent,
} from '@meshtap/protocol'
import { type ClientOptions, WebSocket } from 'ws'
import { createWsServer, type WsServer, type WsServerOptions } from '../src/index.js'

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export const PRIVATE_KEY = { name: 'Private', psk: 'q2J5c2VjcmV0a2V5MTIzNA==' }

/** A real ingest (memory store, no rate limit) and a simulated mesh to feed it. */
export async function createMesh(sim: MeshSimulatorOptions = {}, extra: { keys?: boolean } = {}) {
  const ingest: Ingest = createIngest({
    store: createMemoryStore(),
    rateLimit: false,
    keys: extra.keys ? [PRIVATE_KEY] : [],
  })
  await ingest.start()
  const simulator: MeshSimulator = createMeshSimulator({ seed: 3, ...sim })
  return {
    ingest,
    simulator,
    /** Pushes `n` envelopes into the ingest; returns how many. */
    feed(n: number, s: MeshSimulator = simulator): number {
      const messages = s.take(n)
      for (const m of messages) ingest.push({ ...m, receivedAt: Date.now() })
      return messages.length
    },
  }
}

export interface Harness {
  url: string
  http: Server
  live: WsServer
  close(): Promise<void>
}

/** An HTTP server on an ephemeral loopback port with the WebSocket server attached at /live. */
export async function startServer(
  options: Omit<WsServerOptions, 'server' | 'port'>,
): Promise<Harness> {
  const http = createServer((_req, res) => {
    res.end('http ok')
  })
  const live = createWsServer({ path: '/live', flushMs: 20, ...options, server: http })
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()))
  const { port } = http.address() as AddressInfo
  return {
    url: `ws://127.0.0.1:${port}/live`,
    http,
    live,
    async close() {
      await live.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    },
  }
}

type ByType<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>

/** A `ws` client that records every server message and keeps the node state it implies. */
export interface TestClient {
  ws: WebSocket
  messages: ServerMessage[]
  /** Every batch event, in order. */
  events: WireEvent[]
  /** `seq` of every batch received. */
  seqs: number[]
  /** Node state rebuilt from snapshots and node events. */
  nodes: Map<number, NodeState>
  /** Size of the largest message received, bytes. */
  largestMessage: number
  closed: Promise<{ code: number; reason: string }>
  send(value: unknown): void
  /** The first message (from index `from` on) of that type matching `accept`. */
  next<T extends ServerMessage['type']>(
    type: T,
    accept?: (m: ByType<T>) => boolean,
    options?: { from?: number; timeoutMs?: number },
  ): Promise<ByType<T>>
  /** Sends a ping and waits for its pong: every batch sent before it has arrived. */
  sync(): Promise<void>
  close(): Promise<void>
}

let pingId = 0

export async function connect(url: string, options: ClientOptions & { protocols?: string[] } = {}) {
  const { protocols, ...rest } = options
  const ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...rest })
  const messages: ServerMessage[] = []
  const events: WireEvent[] = []
  const seqs: number[] = []
  const nodes = new Map<number, NodeState>()
  const waiters = new Set<() => void>()
  let largest = 0
  ws.on('message', (data) => {
    const text = String(data)
    largest = Math.max(largest, text.length)
    const m = JSON.parse(text) as ServerMessage
    messages.push(m)
    if (m.type === 'snapshot') {
      if (m.part === 0) nodes.clear()
      for (const n of m.nodes) nodes.set(n.num, n)
    } else if (m.type === 'batch') {
      seqs.push(m.seq)
      for (const e of m.events) {
        events.push(e)
        if (e.kind === 'node') {
          const next = applyNodeEvent(nodes.get(e.num), e)
          if (next) nodes.set(e.num, next)
          else nodes.delete(e.num)
        }
      }
    }
    for (const w of waiters) w()
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: String(reason) })
      for (const w of waiters) w()
    })
  })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  ws.on('error', () => {})
  const client: TestClient = {
    ws,
    messages,
    events,
    seqs,
    nodes,
    get largestMessage() {
      return largest
    },
    closed,
    send(value) {
      ws.send(typeof value === 'string' ? value : JSON.stringify(value))
    },
    next(type, accept = () => true, { from = 0, timeoutMs = 5000 } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = from; i < messages.length; i++) {
            const m = messages[i] as ServerMessage
            if (m.type === type && accept(m as ByType<typeof type>)) {
              cleanup()
              resolve(m as ByType<typeof type>)
              return
            }
          }
          if (ws.readyState === WebSocket.CLOSED) {
            cleanup()
            reject(new Error(`closed before a "${type}" message arrived`))
          }
        }
        const timer = setTimeout(() => {
          cleanup()
          reject(new Error(`no "${type}" message within ${timeoutMs} ms`))
        }, timeoutMs)
        const cleanup = () => {
          clearTimeout(timer)
          waiters.delete(check)
        }
        waiters.add(check)
        check()
      })
    },
    async sync() {
      const id = `sync-${++pingId}`
      const from = messages.length
      client.send({ type: 'ping', id })
      await client.next('pong', (m) => m.id === id, { from })
    },
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return
      ws.close()
      const timer = setTimeout(() => ws.terminate(), 1000)
      await closed
      clearTimeout(timer)
    },
  }
  return client
}

/** Waits until `check` holds, polling. */
export async function waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition') {
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
