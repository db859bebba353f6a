import type { Ingest } from '@meshtap/core'
import type { QueryableStore } from '@meshtap/protocol'
import type { WsServer } from '@meshtap/ws-server'
import type { FastifyInstance } from 'fastify'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { ManagedSource, SourceInfo } from './sources.js'

interface StatusDeps {
  app: FastifyInstance
  ingest: Ingest
  store: QueryableStore
  ws: () => WsServer | undefined
  sources: () => ManagedSource[]
  rate: () => { envelopesPerSec: number; packetsPerSec: number }
  memoryLimitMb: number
  diagnosticsNodes: () => number
}

/** A packet key no store holds: looking it up is the cheapest query that still reaches the database. */
const HEALTH_PROBE_KEY = '0:0:health-probe'

/** A source is unhealthy when it is trying and failing, or has been connecting for too long. */
function sourceOk(s: SourceInfo): boolean {
  if (s.state === 'reconnecting' || s.state === 'offline') return false
  if (s.state === 'connecting' && Date.now() - s.since > 15_000) return false
  return true
}

/** `/metrics` (prom-client + the ingest's own counters), `/api/health` and `/api/stats`. */
export function createStatus(deps: StatusDeps) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'meshtap_server_' })
  const requests = new Counter({
    name: 'meshtap_http_requests_total',
    help: 'HTTP requests by route and status code',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'meshtap_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['route'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  new Gauge({
    name: 'meshtap_ws_clients',
    help: 'Open WebSocket connections',
    registers: [registry],
    collect() {
      this.set(deps.ws()?.metrics().clients ?? 0)
    },
  })
  new Gauge({
    name: 'meshtap_source_up',
    help: '1 when the source is connected (or the simulator running)',
    labelNames: ['source', 'kind'],
    registers: [registry],
    collect() {
      this.reset()
      for (const s of deps.sources()) {
        const i = s.info()
        this.set(
          { source: i.id, kind: i.kind },
          i.state === 'connected' || i.state === 'running' ? 1 : 0,
        )
      }
    },
  })
  new Gauge({
    name: 'meshtap_ingest_rate_envelopes',
    help: 'Envelopes received per second over the last 10 s',
    registers: [registry],
    collect() {
      this.set(deps.rate().envelopesPerSec)
    },
  })
  deps.app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    requests.inc({ method: request.method, route, status: reply.statusCode })
    latency.observe({ route }, reply.elapsedTime / 1000)
  })

  /**
   * Cheap on purpose (load balancers poll it): no row counts (`/api/stats` has them). The database
   * check is one primary-key lookup with a 2 s timeout; the write check reads the ingest's own
   * record of its last commits and failures (a full disk, a database locked by another process).
   */
  async function health() {
    const t = performance.now()
    let probe: { ok: true; latencyMs: number } | { ok: false; error: string }
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      await Promise.race([
        deps.store.getPacket(HEALTH_PROBE_KEY),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out after 2 s')), 2000)
          timer.unref()
        }),
      ])
      probe = { ok: true, latencyMs: Math.round((performance.now() - t) * 10) / 10 }
    } catch (e) {
      probe = { ok: false, error: (e as Error).message }
    } finally {
      clearTimeout(timer)
    }
    const w = deps.ingest.health()
    const writes = {
      ok: w.writes === 'ok',
      queueDepth: w.queueDepth,
      consecutiveFailures: w.consecutiveWriteFailures,
      ...(w.lastWriteOkAt !== undefined
        ? { lastOkAt: new Date(w.lastWriteOkAt).toISOString() }
        : {}),
      ...(w.failingSince !== undefined
        ? { failingSince: new Date(w.failingSince).toISOString() }
        : {}),
      ...(w.writes === 'failing' && w.lastWriteError
        ? {
            error: w.lastWriteError.message,
            ...(w.lastWriteError.code ? { code: w.lastWriteError.code } : {}),
          }
        : {}),
    }
    const database = { ...probe, ok: probe.ok && writes.ok, read: probe, writes }
    const list = deps.sources().map((s) => s.info())
    const sources = { ok: list.every(sourceOk), items: list }
    const ws = deps.ws()
    const websocket = ws
      ? { ok: true, clients: ws.metrics().clients }
      : { ok: false, error: 'not running' }
    const mem = process.memoryUsage()
    const rssMb = Math.round(mem.rss / 1048576)
    const memory = {
      ok: rssMb < deps.memoryLimitMb,
      rssMb,
      heapUsedMb: Math.round(mem.heapUsed / 1048576),
      limitMb: deps.memoryLimitMb,
    }
    const ok = database.ok && sources.ok && websocket.ok && memory.ok
    return {
      status: ok ? ('ok' as const) : ('degraded' as const),
      database,
      sources,
      websocket,
      memory,
    }
  }

  async function stats() {
    const m = deps.ingest.metrics()
    const ws = deps.ws()?.metrics()
    return {
      uptimeS: Math.round(process.uptime()),
      rate: deps.rate(),
      ingest: m.counters,
      queueDepth: m.gauges.queueDepth,
      nodesInCache: m.gauges.cacheNodes,
      store: await deps.store.counts(),
      websocket: ws
        ? { clients: ws.clients, eventsIn: ws.eventsIn, bytesSent: ws.bytesSent }
        : undefined,
      sources: deps.sources().map((s) => s.info()),
      diagnosticsNodes: deps.diagnosticsNodes(),
    }
  }

  async function metrics() {
    const own = await registry.metrics()
    return { contentType: registry.contentType, body: `${own}\n${deps.ingest.prometheus()}` }
  }

  return { health, stats, metrics }
}
