import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { describeMachine, describeRevision, NOISY_THRESHOLD, waitForQuiet } from './lib/machine.js'
import { type Child, CpuSampler, startChild, wallNow } from './lib/processes.js'
import {
  type Benchmark,
  type BenchOptions,
  type BenchReport,
  formatPercent,
  formatRate,
  type Table,
} from './lib/report.js'
import { median } from './lib/timing.js'
import {
  BENCH_KINDS,
  type ServerStats,
  WS_PATH,
  type WsChildIn,
  type WsChildOut,
} from './lib/ws-child.js'
import { openRawClients, type RawClient } from './lib/ws-raw-client.js'

const CHILD = fileURLToPath(new URL('./lib/ws-child.ts', import.meta.url))

/** Clients in the parent that parse every message, for latency and event counts. */
const PROBES = 4
/** Events per second the ingest is fed (one envelope becomes about one event). */
const RATE = 1000
const FLUSH_MS = 100
/** Per-client send buffer cap (meshtap) and skip threshold (baseline). */
const MAX_BUFFERED = 512 * 1024

type Mode = 'meshtap' | 'baseline'

interface Config {
  clients: number
  mode: Mode
  deflate: boolean
}

interface RunResult extends Config {
  windowSec: number
  offered: number
  /** Delivered events/s of every client (probes included). */
  delivered: number[]
  latencyP50: number
  latencyP99: number
  serverCores: number | undefined
  clientCores: number | undefined
  others: number | undefined
  /** Wire bytes per second per client (median). */
  wireBytesPerSec: number
  /** Uncompressed JSON bytes per event, from the probes. */
  eventBytes: number
  rssMiB: number
  loopP99Ms: number
  stats: ServerStats
  /** Frames the server sent per second (all clients). */
  sendsPerSec: number
  /** Envelopes the feeder shed in the window (over a second late). */
  shed: number
  /** Delivered events/s of the probes (median): the complete stream. */
  probeRate: number
  /** Share of clients that received every frame the probes did (within the window edges). */
  complete: number
  failed: number
  closed: number
  negotiatedDeflate: number
}

function fdLimit(): { soft: number; hard: number } | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'))
    const m = line && /(\d+|unlimited)\s+(\d+|unlimited)/.exec(line.slice(14))
    if (!m) return undefined
    const n = (s: string) => (s === 'unlimited' ? Number.POSITIVE_INFINITY : Number(s))
    return { soft: n(m[1] as string), hard: n(m[2] as string) }
  } catch {
    return undefined
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

function receivedAtOf(e: Record<string, unknown>): number | undefined {
  const x = (e.packet ?? e.reception ?? e.undecoded) as { receivedAt?: number } | undefined
  return x?.receivedAt
}

/** Processes kept across runs: a spare server (started ahead) and the client processes. */
interface Pool {
  nextServer: Child<WsChildIn, WsChildOut> | undefined
  clients: Child<WsChildIn, WsChildOut>[]
}

function spawnServer(sampler: CpuSampler): Child<WsChildIn, WsChildOut> {
  const server = startChild<WsChildIn, WsChildOut>(CHILD, ['server'])
  sampler.watch(server.pid)
  return server
}

async function runOne(
  cfg: Config,
  sampler: CpuSampler,
  pool: Pool,
  timing: { warmupMs: number; windowMs: number; quietMs: number },
  last: boolean,
): Promise<RunResult> {
  if (timing.quietMs > 0) await waitForQuiet(timing.quietMs)
  const server = pool.nextServer ?? spawnServer(sampler)
  // The next run's server starts (and idles) while this one runs.
  pool.nextServer = last ? undefined : spawnServer(sampler)
  const probes: RawClient[] = []
  const procs = cfg.clients > 1000 ? 2 : 1
  while (pool.clients.length < procs) {
    const c = startChild<WsChildIn, WsChildOut>(CHILD, ['clients'])
    sampler.watch(c.pid)
    pool.clients.push(c)
  }
  const clientChildren = pool.clients.slice(0, procs)
  try {
    const envelopes = Math.ceil((RATE * (timing.warmupMs + timing.windowMs + 5000)) / 1000)
    server.send({
      cmd: 'server',
      mode: cfg.mode,
      deflate: cfg.deflate,
      rate: RATE,
      envelopes,
      flushMs: FLUSH_MS,
      maxBufferedBytes: MAX_BUFFERED,
    })
    const ready = (await server.next((m) => m.type === 'ready')) as Extract<
      WsChildOut,
      { type: 'ready' }
    >

    // Cheap clients in one or two processes (each has its own event loop), probes here.
    const cheap = cfg.clients - PROBES
    clientChildren.forEach((c, i) => {
      const count = Math.floor(cheap / procs) + (i < cheap % procs ? 1 : 0)
      c.send({ cmd: 'clients', port: ready.port, count, deflate: cfg.deflate })
    })
    let failed = 0
    let negotiatedDeflate = 0
    for (const c of clientChildren) {
      const m = (await c.next((x) => x.type === 'connected', 180_000)) as Extract<
        WsChildOut,
        { type: 'connected' }
      >
      failed += m.failed
      negotiatedDeflate += m.deflate
      if (m.failed > 0) {
        process.stderr.write(`ws bench: ${m.failed} clients failed: ${m.firstError}\n`)
      }
    }

    let counting = false
    const latencies: number[] = []
    const probeEvents: number[] = Array(PROBES).fill(0)
    let probeJsonBytes = 0
    for (let i = 0; i < PROBES; i++) {
      const r = await openRawClients(1, {
        host: '127.0.0.1',
        port: ready.port,
        path: WS_PATH,
        deflate: cfg.deflate,
        send: JSON.stringify({
          type: 'subscribe',
          snapshot: false,
          filter: { kinds: BENCH_KINDS },
        }),
        onMessage: (text, at) => {
          if (!counting) return
          const m = JSON.parse(text) as Record<string, unknown>
          const events =
            m.type === 'batch'
              ? (m.events as Record<string, unknown>[])
              : m.kind !== undefined
                ? [m]
                : []
          if (events.length === 0) return
          probeEvents[i] = (probeEvents[i] as number) + events.length
          if (i === 0) probeJsonBytes += Buffer.byteLength(text)
          for (const e of events) {
            const t = receivedAtOf(e)
            if (t !== undefined) latencies.push(at - t)
          }
        },
      })
      probes.push(...r.clients)
      failed += r.failed
    }
    negotiatedDeflate += probes.filter((p) => p.deflate).length

    server.send({ cmd: 'traffic' })
    await sleep(timing.warmupMs)

    // The window.
    server.send({ cmd: 'mark' })
    const stats0 = (await server.next((m) => m.type === 'stats')) as ServerStats
    for (const c of clientChildren) c.send({ cmd: 'mark' })
    for (const p of probes) p.resetCounts()
    latencies.length = 0
    probeEvents.fill(0)
    probeJsonBytes = 0
    counting = true
    const t0 = wallNow()
    await sleep(timing.windowMs)
    counting = false
    const t1 = wallNow()
    const probeCounts = probes.map((p) => ({ ...p.counts }))
    server.send({ cmd: 'mark' })
    const stats1 = (await server.next((m) => m.type === 'stats')) as ServerStats
    const reports: Extract<WsChildOut, { type: 'report' }>[] = []
    for (const c of clientChildren) {
      c.send({ cmd: 'report' })
      reports.push(
        (await c.next((m) => m.type === 'report', 60_000)) as Extract<
          WsChildOut,
          { type: 'report' }
        >,
      )
    }
    sampler.sample()
    const w = sampler.window(t0, t1)
    const windowSec = (t1 - t0) / 1000

    const cheapBytes = reports.flatMap((r) => r.bytes)
    const cheapFrames = reports.flatMap((r) => r.frames)
    const probeBytes = median(probeCounts.map((c) => c.bytes))
    const probeRate = median(probeEvents) / windowSec
    // Baseline: one event per frame. meshtap: every client of the filter gets the same frames, so
    // a client's events are the probes' in proportion to its bytes.
    const delivered = [
      ...probeEvents.map((e) => e / windowSec),
      ...(cfg.mode === 'baseline'
        ? cheapFrames.map((f) => f / windowSec)
        : cheapBytes.map((b) => (probeBytes > 0 ? (probeRate * b) / probeBytes : 0))),
    ]
    latencies.sort((a, b) => a - b)
    let clientCores: number | undefined
    for (const c of clientChildren) {
      const v = w?.cores.get(c.pid)
      if (v !== undefined) clientCores = (clientCores ?? 0) + v
    }
    const eventsInProbe0 = probeEvents[0] ?? 0
    return {
      ...cfg,
      windowSec,
      offered: (stats1.eventsIn - stats0.eventsIn) / windowSec,
      delivered,
      latencyP50: percentile(latencies, 50),
      latencyP99: percentile(latencies, 99),
      serverCores: w?.cores.get(server.pid),
      clientCores,
      others: w?.others,
      wireBytesPerSec: median([...cheapBytes, ...probeCounts.map((c) => c.bytes)]) / windowSec,
      eventBytes: eventsInProbe0 > 0 ? probeJsonBytes / eventsInProbe0 : Number.NaN,
      rssMiB: stats1.rssMiB,
      loopP99Ms: stats1.loopP99Ms,
      stats: stats1,
      sendsPerSec: (stats1.sends - stats0.sends) / windowSec,
      shed: stats1.shed - stats0.shed,
      probeRate,
      complete: (() => {
        // Same frames as the probes, give or take the window's edges (the counters of the client
        // processes start and stop a few ms apart from the probes').
        const p = median(probeCounts.map((c) => c.frames))
        const need = Math.min(0.99 * p, p - 2)
        const frames = [...probeCounts.map((c) => c.frames), ...cheapFrames]
        return frames.filter((f) => f >= need).length / frames.length
      })(),
      failed,
      closed: reports.reduce((a, r) => a + r.closed, 0),
      negotiatedDeflate,
    }
  } finally {
    for (const p of probes) p.socket.destroy()
    for (const c of clientChildren) {
      c.send({ cmd: 'drop' })
      await c.next((m) => m.type === 'dropped', 30_000).catch(() => undefined)
    }
    await server.close({ cmd: 'exit' }, 10_000)
  }
}

function label(r: Config): string {
  return r.mode === 'baseline'
    ? '`ws` broadcast, a frame per event (baseline)'
    : '**meshtap** `createWsServer`'
}

function ms(v: number): string {
  return Number.isFinite(v) ? `${Math.round(v)} ms` : '–'
}

function cores(v: number | undefined): string {
  return v === undefined ? '–' : formatPercent(v)
}

function row(r: RunResult): string[] {
  const d = [...r.delivered].sort((a, b) => a - b)
  const m = r.stats.metrics
  const notes: string[] = []
  if (r.shed > 0) notes.push(`feeder shed ${r.shed} envelopes (server over a second behind)`)
  if (r.mode === 'baseline' && r.stats.skipped > 0) {
    notes.push(
      `${formatRate(r.stats.skipped / r.windowSec)} sends/s skipped (buffer > ${MAX_BUFFERED >> 10} KiB)`,
    )
  }
  if (m && (m.lagged > 0 || m.closedSlow > 0 || m.resyncs > 0)) {
    notes.push(`lagged ${m.lagged}, resynced ${m.resyncs}, closed 1013 ${m.closedSlow}`)
  }
  if (m && r.deflate) notes.push(`${r.negotiatedDeflate} deflate`)
  if (r.failed > 0) notes.push(`${r.failed} failed to connect`)
  if (r.closed > 0) notes.push(`${r.closed} closed`)
  return [
    String(r.clients),
    label(r),
    r.deflate ? 'deflate' : 'off',
    formatRate(r.offered),
    `**${formatRate(median(d))}**`,
    formatRate(d[0] ?? 0),
    formatPercent(r.complete),
    `${ms(r.latencyP50)} / **${ms(r.latencyP99)}**`,
    `**${cores(r.serverCores)}**`,
    formatRate(r.sendsPerSec),
    cores(r.clientCores),
    `${formatRate(r.wireBytesPerSec / 1024)}`,
    `${r.rssMiB} MiB`,
    `${r.loopP99Ms.toFixed(0)} ms`,
    notes.join('; ') || '–',
  ]
}

async function run(options: BenchOptions): Promise<BenchReport> {
  const quick = options.quick
  const machine = describeMachine()
  const counts = quick ? [100, 1000] : [100, 1000, 5000]
  const timing = quick
    ? { warmupMs: 700, windowMs: 2000, quietMs: 0 }
    : { warmupMs: 2000, windowMs: 6000, quietMs: 8000 }
  const limit = fdLimit()
  const notes: string[] = []
  const need = Math.max(...counts) + 200
  let usable = counts
  if (limit && limit.soft < need) {
    usable = counts.filter((n) => n + 200 <= limit.soft)
    notes.push(
      `The open-files limit (${limit.soft}, hard ${limit.hard}) is below ${need}; runs with more clients were left out. Raise it with \`ulimit -n ${need}\` before \`pnpm bench ws\`.`,
    )
  }
  const configs: Config[] = []
  for (const clients of usable) {
    configs.push({ clients, mode: 'baseline', deflate: false })
    configs.push({ clients, mode: 'meshtap', deflate: false })
    configs.push({ clients, mode: 'meshtap', deflate: true })
  }
  const sampler = new CpuSampler(100)
  sampler.watch(process.pid)
  sampler.start()
  const results: RunResult[] = []
  const pool: Pool = { nextServer: undefined, clients: [] }
  try {
    for (const [i, cfg] of configs.entries()) {
      process.stderr.write(
        `ws: ${cfg.clients} clients, ${cfg.mode}${cfg.deflate ? ', deflate' : ''}…\n`,
      )
      const r = await runOne(cfg, sampler, pool, timing, i === configs.length - 1)
      process.stderr.write(
        `    delivered/client ${formatRate(median(r.delivered))} of ${formatRate(r.offered)}, p99 ${ms(r.latencyP99)}, server CPU ${cores(r.serverCores)}\n`,
      )
      results.push(r)
    }
  } finally {
    sampler.stop()
    for (const c of [...pool.clients, ...(pool.nextServer ? [pool.nextServer] : [])]) {
      await c.close({ cmd: 'exit' }, 5000)
    }
  }

  const table: Table = {
    header: [
      'clients',
      'fan-out',
      'compression',
      'events/s in',
      'delivered events/s per client (median)',
      'min',
      'clients with the whole stream',
      'latency p50 / p99',
      'server CPU',
      'frames sent/s',
      'client processes CPU',
      'wire KiB/s per client',
      'server RSS',
      'server loop delay p99',
      'notes',
    ],
    align: ['r', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    rows: results.map(row),
  }
  const others = results.map((r) => r.others).filter((v): v is number => v !== undefined)
  const plainRun = results.find((r) => r.mode === 'meshtap' && !r.deflate)
  const deflated = results.filter((r) => r.mode === 'meshtap' && r.deflate)
  const ratio = deflated
    .map((d) => {
      const p = results.find((r) => r.mode === 'meshtap' && !r.deflate && r.clients === d.clients)
      return p ? p.wireBytesPerSec / d.wireBytesPerSec : Number.NaN
    })
    .filter(Number.isFinite)
  if (plainRun) {
    notes.push(
      `A wire event averaged ${Math.round(plainRun.eventBytes)} bytes of JSON (packets with their first copy fully decoded, about twice as many receptions); a 100 ms batch at 1,000 events/s is about ${Math.round((plainRun.eventBytes * RATE * FLUSH_MS) / 1000 / 1024)} KiB.`,
    )
  }
  if (ratio.length > 0) {
    notes.push(
      `permessage-deflate cut the bytes on the wire ${median(ratio).toFixed(1)}× (median over client counts); meshtap compresses each batch once per filter (\`server_no_context_takeover\`), not once per client.`,
    )
  }
  notes.push(
    `Delivered events/s per client: the probes count events exactly (they parse every message); for the other clients meshtap's rate is the probes' rate × the client's bytes ÷ the probes' bytes (every client of one filter receives the same frames), the baseline's is its frames per second (one event per frame). "Clients with the whole stream": clients that received as many frames as the probes (which parse everything and keep up), give or take the window's edges (2 frames, or 1 % for the baseline's frame-per-event stream); the counters of the client processes start and stop a few ms apart from the probes', which also moves the byte-based rates by a percent or two.`,
    `Latency: from the time the envelope was due (its \`receivedAt\`: the feeder pushes envelope i at start + i ms and stamps it with that time, so a server too busy to take it in time shows as latency) to the arrival of the frame that carries the event at a probe, across processes on one clock; it includes meshtap's batching (up to ${FLUSH_MS} ms by design). Envelopes more than a second late are shed by the feeder (noted per row), as a broker would drop them.`,
    `Open files: ${limit ? `soft ${limit.soft}, hard ${limit.hard}` : 'unknown'}; the runs need about one per client in the server and in the client processes.`,
  )

  const best = results.find(
    (r) => r.mode === 'meshtap' && !r.deflate && r.clients === Math.max(...usable),
  )
  const base = results.find((r) => r.mode === 'baseline' && r.clients === Math.max(...usable))
  const bestDeflate = results.find(
    (r) => r.mode === 'meshtap' && r.deflate && r.clients === Math.max(...usable),
  )
  const headline =
    best && base
      ? `${best.clients} clients × ${formatRate(RATE)} events/s: meshtap delivers ${formatRate(median(best.delivered))} events/s per client (p99 ${ms(best.latencyP99)}, server CPU ${cores(best.serverCores)}${bestDeflate ? `; with deflate ${formatRate(median(bestDeflate.delivered))}, p99 ${ms(bestDeflate.latencyP99)}, CPU ${cores(bestDeflate.serverCores)}` : ''}); ws broadcast ${formatRate(median(base.delivered))} (p99 ${ms(base.latencyP99)}, CPU ${cores(base.serverCores)})`
      : 'no comparable runs'

  return {
    name: 'ws',
    title: 'WebSocket fan-out: `@meshtap/ws-server` vs `ws` broadcast',
    what: [
      `A server process runs a real ingest (\`createIngest\`, memory store) fed by \`createMeshSimulator({ seed: 7, nodes: 200, gateways: 12 })\` at a steady ${RATE} envelopes/s (pre-generated; each becomes one \`packet\`, \`reception\` or \`undecoded\` event), and fans the events out to N local clients. Every client subscribes to those three kinds (no filter otherwise, no snapshot). **meshtap**: \`createWsServer({ server, source: ingest, flushMs: ${FLUSH_MS}, maxBufferedBytes: ${MAX_BUFFERED} })\` — one batch per ${FLUSH_MS} ms time slice, serialised once per filter; with compression, \`perMessageDeflate: true\` (batches over 1 KiB compressed once). **Baseline**, in the same run: \`ws\`'s own broadcast of the same event JSON, each event to every client as its own frame (\`for (const c of wss.clients) c.send(bytes)\`, the bytes encoded once), no coalescing, no filters, skipping a client whose \`bufferedAmount\` is over ${MAX_BUFFERED >> 10} KiB.`,
      `Clients are raw TCP sockets that do the WebSocket handshake and parse frame headers only (no inflate, no JSON), ${PROBES} of them in the benchmark's own process parse everything (latency, exact event counts), the rest in ${configs.some((c) => c.clients > 1000) ? 'one process (two above 1,000 clients)' : 'one process'}, so the server has its own event loop; all share the machine's ${machine.cores} cores. Each row: ${timing.warmupMs / 1000} s warm-up, then a ${timing.windowMs / 1000} s window; CPU per process from /proc over the window (100 % = one core); one run per row.`,
    ],
    machine,
    revision: describeRevision(),
    busy:
      others.length > 0
        ? {
            medianOthers: median(others),
            maxOthers: Math.max(...others),
            noisyRounds: others.filter((o) => o > NOISY_THRESHOLD).length,
            rounds: others.length,
          }
        : undefined,
    tables: [table],
    notes,
    headline,
    settings: `${configs.length} runs, ${timing.warmupMs / 1000} s warm-up + ${timing.windowMs / 1000} s window each${timing.quietMs ? `, waiting up to ${timing.quietMs / 1000} s for a quiet machine before each` : ''}`,
    quick,
  }
}

export const wsBenchmark: Benchmark = {
  name: 'ws',
  description: 'WebSocket fan-out to 100/1,000/5,000 clients: @meshtap/ws-server vs ws broadcast',
  run,
}
