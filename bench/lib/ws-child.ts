/**
 * The processes of the WebSocket fan-out benchmark (started by `bench/ws.bench.ts` through
 * {@link startChild}, one role per process, driven over the IPC channel):
 * - `server`: a real ingest fed by the mesh simulator at a steady rate, and either
 *   `@meshtap/ws-server` or the baseline (`ws`'s own broadcast: every event to every client as its
 *   own frame, the same JSON bytes, no coalescing, no filters), on an HTTP server of its own;
 * - `clients`: many cheap raw-TCP WebSocket clients (headers only) that count frames and bytes.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createIngest, createMemoryStore, createMeshSimulator } from '@meshtap/core'
import { createWsServer, type WsServerMetrics } from '@meshtap/ws-server'
import { WebSocketServer } from 'ws'
import { openRawClients, type RawClient } from './ws-raw-client.js'

export const WS_PATH = '/live'

/** The kinds every benchmark client subscribes to: the raw event stream, the baseline's bytes. */
export const BENCH_KINDS = ['packet', 'reception', 'undecoded'] as const

export interface ServerJob {
  cmd: 'server'
  mode: 'meshtap' | 'baseline'
  deflate: boolean
  /** Envelopes per second pushed into the ingest (each becomes about one event). */
  rate: number
  /** Envelopes to pre-generate. */
  envelopes: number
  flushMs: number
  /** Per-client send buffer cap (meshtap) / skip threshold (baseline), bytes. */
  maxBufferedBytes: number
}

export interface ClientsJob {
  cmd: 'clients'
  port: number
  count: number
  deflate: boolean
}

export type WsChildIn =
  | ServerJob
  | ClientsJob
  /** server: start the traffic. */
  | { cmd: 'traffic' }
  /** server: counters now; clients: reset the counters now (start of the window). */
  | { cmd: 'mark' }
  /** clients: counters since the mark, per client. */
  | { cmd: 'report' }
  /** clients: close every socket (the process stays for the next run). */
  | { cmd: 'drop' }
  | { cmd: 'exit' }

export interface ServerStats {
  type: 'stats'
  /** Events the source emitted (all kinds) and envelopes pushed. */
  eventsIn: number
  pushed: number
  /** Envelopes shed by the feeder (more than a second late: the server could not keep up). */
  shed: number
  /** Baseline: sends skipped because the client's buffer was over the threshold. */
  skipped: number
  /** Frames sent (all clients). */
  sends: number
  metrics?: WsServerMetrics
  rssMiB: number
  /** Event-loop delay since the previous mark, ms. */
  loopP99Ms: number
  clients: number
}

export type WsChildOut =
  | { type: 'ready'; port: number; pid: number; generateMs: number }
  | { type: 'connected'; connected: number; failed: number; deflate: number; firstError?: string }
  | ServerStats
  | { type: 'dropped' }
  | {
      type: 'report'
      frames: number[]
      bytes: number[]
      closed: number
    }

function send(m: WsChildOut): void {
  process.send?.(m)
}

async function runServer(job: ServerJob): Promise<void> {
  const t0 = performance.now()
  const sim = createMeshSimulator({ seed: 7, nodes: 200, gateways: 12 })
  const envelopes = sim.take(job.envelopes)
  const generateMs = performance.now() - t0
  const ingest = createIngest({ store: createMemoryStore(), rateLimit: false })
  await ingest.start()
  let eventsIn = 0
  for (const kind of ['packet', 'reception', 'undecoded'] as const)
    ingest.on(kind, () => eventsIn++)

  const http = createServer((_req, res) => res.end())
  let skipped = 0
  let sends = 0
  let clients = (): number => 0
  let metrics: (() => WsServerMetrics) | undefined
  let close: () => Promise<void>
  if (job.mode === 'meshtap') {
    const live = createWsServer({
      server: http,
      path: WS_PATH,
      source: ingest,
      flushMs: job.flushMs,
      maxBufferedBytes: job.maxBufferedBytes,
      perMessageDeflate: job.deflate,
      heartbeatMs: 600_000,
      maxClients: 100_000,
    })
    metrics = () => live.metrics()
    clients = () => live.metrics().clients
    const count = () => {
      sends = live.metrics().messagesSent
    }
    setInterval(count, 50).unref()
    close = () => live.close()
  } else {
    const wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      clientTracking: true,
    })
    http.on('upgrade', (req, socket, head) => {
      wss.handleUpgrade(req, socket, head, (c) => {
        c.on('error', () => {})
        c.on('message', () => {})
      })
    })
    const broadcast = (text: string) => {
      const data = Buffer.from(text)
      for (const c of wss.clients) {
        if (c.bufferedAmount > job.maxBufferedBytes) {
          skipped++
          continue
        }
        c.send(data, { binary: false })
        sends++
      }
    }
    // The same JSON objects meshtap puts in its batches.
    let id = 1
    ingest.on('packet', (e) =>
      broadcast(`{"id":${id++},"kind":"packet","packet":${JSON.stringify(e.packet)}}`),
    )
    ingest.on('reception', (e) =>
      broadcast(`{"id":${id++},"kind":"reception","reception":${JSON.stringify(e.reception)}}`),
    )
    ingest.on('undecoded', (e) =>
      broadcast(`{"id":${id++},"kind":"undecoded","undecoded":${JSON.stringify(e.undecoded)}}`),
    )
    clients = () => wss.clients.size
    close = () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate()
        wss.close(() => r())
      })
  }
  await new Promise<void>((r) =>
    http.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => r()),
  )
  const port = (http.address() as AddressInfo).port

  let pushed = 0
  let shed = 0
  let timer: ReturnType<typeof setInterval> | undefined
  const loop = monitorEventLoopDelay({ resolution: 5 })
  loop.enable()
  const stats = (): ServerStats => {
    const s: ServerStats = {
      type: 'stats',
      eventsIn,
      pushed,
      shed,
      skipped,
      sends,
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      loopP99Ms: loop.percentile(99) / 1e6,
      clients: clients(),
    }
    if (metrics) s.metrics = metrics()
    loop.reset()
    return s
  }

  process.on('message', async (m: WsChildIn) => {
    if (m.cmd === 'traffic') {
      // Paced by the clock: envelope i is due at start + i / rate and carries that time as its
      // `receivedAt`, so latency includes any delay in getting it into the server. A callback
      // pushes for at most 50 ms (a saturated server must still answer its IPC), and envelopes
      // more than a second late are shed (counted): a broker would drop them too.
      const startWall = Date.now()
      const start = performance.now()
      timer = setInterval(() => {
        const due = Math.min(
          envelopes.length,
          Math.floor(((performance.now() - start) * job.rate) / 1000),
        )
        const lateLimit = due - job.rate
        if (pushed < lateLimit) {
          shed += lateLimit - pushed
          pushed = lateLimit
        }
        const deadline = performance.now() + 50
        while (pushed < due && performance.now() < deadline) {
          const e = envelopes[pushed] as (typeof envelopes)[number]
          const receivedAt = startWall + (pushed * 1000) / job.rate
          pushed++
          ingest.push({ topic: e.topic, payload: e.payload, receivedAt })
        }
      }, 5)
    } else if (m.cmd === 'mark') {
      send(stats())
    } else if (m.cmd === 'exit') {
      if (timer) clearInterval(timer)
      await close()
      http.closeAllConnections()
      http.close()
      await ingest.stop()
      process.exit(0)
    }
  })
  send({ type: 'ready', port, pid: process.pid, generateMs })
}

let clientSockets: RawClient[] = []

async function runClients(job: ClientsJob): Promise<void> {
  const subscribe = JSON.stringify({
    type: 'subscribe',
    snapshot: false,
    filter: { kinds: BENCH_KINDS },
  })
  const { clients, failed, firstError } = await openRawClients(job.count, {
    host: '127.0.0.1',
    port: job.port,
    path: WS_PATH,
    deflate: job.deflate,
    send: subscribe,
  })
  clientSockets = clients
  const out: WsChildOut = {
    type: 'connected',
    connected: clients.length,
    failed,
    deflate: clients.filter((c) => c.deflate).length,
  }
  if (firstError !== undefined) out.firstError = firstError
  send(out)
}

function onClientsMessage(m: WsChildIn): void {
  if (m.cmd === 'mark') {
    for (const c of clientSockets) c.resetCounts()
  } else if (m.cmd === 'report') {
    send({
      type: 'report',
      frames: clientSockets.map((c) => c.counts.frames),
      bytes: clientSockets.map((c) => c.counts.bytes),
      closed: clientSockets.filter((c) => c.closeCode !== undefined).length,
    })
  } else if (m.cmd === 'drop') {
    for (const c of clientSockets) c.socket.destroy()
    clientSockets = []
    send({ type: 'dropped' })
  } else if (m.cmd === 'exit') {
    for (const c of clientSockets) c.socket.destroy()
    process.exit(0)
  }
}

const role = process.argv[2]
process.on('message', (m: WsChildIn) => {
  if (m.cmd === 'server') void runServer(m)
  else if (m.cmd === 'clients') void runClients(m)
  else if (role === 'clients') onClientsMessage(m)
})
process.on('disconnect', () => process.exit(0))
