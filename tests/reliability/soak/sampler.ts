/**
 * Samples a running reference server from the outside: its `/metrics` (prom-client's process and
 * Node.js metrics plus the ingest's own counters and gauges) and the size of its SQLite files.
 */
import { statSync } from 'node:fs'
import type { ProbeReply } from './probe.js'
import { type PromScrape, parsePrometheus } from './prometheus.js'

/** One row of the soak CSV. Rates are over the interval since the previous sample. */
export interface SoakSample {
  /** Seconds since the soak started. */
  t: number
  rssMb: number
  /**
   * Resident memory outside the V8 heap (`rss − heapTotal`): native allocations (SQLite's page
   * cache, buffers, zlib, the code of Node itself).
   */
  offHeapMb: number
  /** Used heap as `/metrics` shows it: live data plus garbage not yet collected (a sawtooth). */
  heapUsedMb: number
  heapTotalMb: number
  /** Used heap right after a full collection (the probe's): the live data. NaN without the probe. */
  heapLiveMb: number
  /** Duration of that forced collection, ms (it pauses the server's event loop once per sample). */
  gcMs: number
  externalMb: number
  /**
   * Event-loop delay over the interval (prom-client's `monitorEventLoopDelay`, reset at every
   * scrape), in ms beyond the 10 ms sampling timer, so an idle loop reads about 0.
   */
  loopP50Ms: number
  loopP99Ms: number
  loopMaxMs: number
  /** Records waiting to be written to the store. */
  queueDepth: number
  /** MQTT envelopes received per second. */
  receivedPerS: number
  /** Logical packets accepted per second (first copies). */
  packetsPerS: number
  /** Records committed to SQLite per second. */
  writtenPerS: number
  /** Live events delivered per second to the soak's WebSocket viewers (all viewers together). */
  wsEventsPerS: number
  /** Server CPU use, % of one core. */
  cpuPct: number
  receivedTotal: number
  writtenTotal: number
  /** Records dropped because the queue was full, or the store failed (should stay 0). */
  droppedQueueFull: number
  droppedStoreFailed: number
  rateLimitedTotal: number
  writeErrors: number
  dedupEntries: number
  cacheNodes: number
  /** The SQLite file, and its write-ahead log. */
  dbMb: number
  walMb: number
}

/** The CSV columns, in order: header and the field each shows. */
export const SAMPLE_COLUMNS: readonly { header: string; key: keyof SoakSample; digits: number }[] =
  [
    { header: 't_s', key: 't', digits: 1 },
    { header: 'rss_mb', key: 'rssMb', digits: 2 },
    { header: 'off_heap_mb', key: 'offHeapMb', digits: 2 },
    { header: 'heap_used_mb', key: 'heapUsedMb', digits: 2 },
    { header: 'heap_total_mb', key: 'heapTotalMb', digits: 2 },
    { header: 'heap_live_mb', key: 'heapLiveMb', digits: 2 },
    { header: 'gc_ms', key: 'gcMs', digits: 1 },
    { header: 'external_mb', key: 'externalMb', digits: 2 },
    { header: 'loop_delay_p50_ms', key: 'loopP50Ms', digits: 2 },
    { header: 'loop_delay_p99_ms', key: 'loopP99Ms', digits: 2 },
    { header: 'loop_delay_max_ms', key: 'loopMaxMs', digits: 2 },
    { header: 'queue_depth', key: 'queueDepth', digits: 0 },
    { header: 'received_per_s', key: 'receivedPerS', digits: 1 },
    { header: 'packets_per_s', key: 'packetsPerS', digits: 1 },
    { header: 'written_per_s', key: 'writtenPerS', digits: 1 },
    { header: 'ws_events_per_s', key: 'wsEventsPerS', digits: 1 },
    { header: 'cpu_pct', key: 'cpuPct', digits: 1 },
    { header: 'received_total', key: 'receivedTotal', digits: 0 },
    { header: 'written_total', key: 'writtenTotal', digits: 0 },
    { header: 'dropped_queue_full', key: 'droppedQueueFull', digits: 0 },
    { header: 'dropped_store_failed', key: 'droppedStoreFailed', digits: 0 },
    { header: 'rate_limited_total', key: 'rateLimitedTotal', digits: 0 },
    { header: 'write_errors', key: 'writeErrors', digits: 0 },
    { header: 'dedup_entries', key: 'dedupEntries', digits: 0 },
    { header: 'cache_nodes', key: 'cacheNodes', digits: 0 },
    { header: 'db_mb', key: 'dbMb', digits: 3 },
    { header: 'wal_mb', key: 'walMb', digits: 3 },
  ]

/** A scrape that did not succeed (HTTP error, timeout, a body without the expected metrics). */
export class SampleError extends Error {
  override readonly name = 'SampleError'
}

/** What {@link createSampler} needs. */
export interface SamplerOptions {
  /** The server's base URL, `http://host:port`. */
  url: string
  /** The SQLite file (its `-wal` sibling is measured too). */
  dbPath: string
  /** Events received so far by the soak's own WebSocket viewers. @default () => 0 */
  wsEvents?: () => number
  /**
   * Runs a full collection in the server and reports the memory left (see `probe.ts`); called
   * right after the scrape, so the pause it causes falls into the next interval.
   */
  probe?: () => Promise<ProbeReply>
  /** Timeout of one scrape. @default 8000 */
  timeoutMs?: number
}

/** Takes samples; the first one has rates of 0 (there is no interval before it). */
export interface Sampler {
  sample(tSeconds: number): Promise<SoakSample>
}

const MB = 1024 * 1024
/** prom-client's default `eventLoopMonitoringPrecision`: the histogram's timer fires every 10 ms. */
const LOOP_RESOLUTION_MS = 10

function fileMb(path: string): number {
  try {
    return statSync(path).size / MB
  } catch {
    return 0
  }
}

function need(s: PromScrape, name: string, labels?: Record<string, string>): number {
  const v = s.get(name, labels)
  if (v === undefined) throw new SampleError(`/metrics has no ${name}`)
  return v
}

/** Creates a sampler for one server. */
export function createSampler(options: SamplerOptions): Sampler {
  const wsEvents = options.wsEvents ?? (() => 0)
  let prev:
    | { t: number; received: number; packets: number; written: number; ws: number; cpu: number }
    | undefined
  return {
    async sample(t) {
      let body: string
      try {
        const res = await fetch(`${options.url}/metrics`, {
          signal: AbortSignal.timeout(options.timeoutMs ?? 8000),
        })
        body = await res.text()
        if (!res.ok) throw new SampleError(`/metrics answered ${res.status}`)
      } catch (e) {
        if (e instanceof SampleError) throw e
        throw new SampleError(`/metrics: ${(e as Error).message}`, { cause: e })
      }
      const m = parsePrometheus(body)
      const p = 'meshtap_server_'
      const loop = (q: string) =>
        Math.max(0, need(m, `${p}nodejs_eventloop_lag_${q}_seconds`) * 1000 - LOOP_RESOLUTION_MS)
      const received = need(m, 'meshtap_messages_received_total')
      const packets = need(m, 'meshtap_packets_total')
      const written = need(m, 'meshtap_records_written_total')
      const cpu = need(m, `${p}process_cpu_seconds_total`)
      const ws = wsEvents()
      const after = options.probe ? await options.probe() : undefined
      const dt = prev ? t - prev.t : 0
      const per = (now: number, before: number | undefined) =>
        dt > 0 && before !== undefined ? (now - before) / dt : 0
      const rssMb = need(m, `${p}process_resident_memory_bytes`) / MB
      const heapTotalMb = need(m, `${p}nodejs_heap_size_total_bytes`) / MB
      const sample: SoakSample = {
        t,
        rssMb,
        offHeapMb: rssMb - heapTotalMb,
        heapUsedMb: need(m, `${p}nodejs_heap_size_used_bytes`) / MB,
        heapTotalMb,
        heapLiveMb: after?.collected ? after.heapUsed / MB : Number.NaN,
        gcMs: after?.collected ? after.gcMs : Number.NaN,
        externalMb: need(m, `${p}nodejs_external_memory_bytes`) / MB,
        loopP50Ms: loop('p50'),
        loopP99Ms: loop('p99'),
        loopMaxMs: loop('max'),
        queueDepth: need(m, 'meshtap_queue_depth'),
        receivedPerS: per(received, prev?.received),
        packetsPerS: per(packets, prev?.packets),
        writtenPerS: per(written, prev?.written),
        wsEventsPerS: per(ws, prev?.ws),
        cpuPct: per(cpu, prev?.cpu) * 100,
        receivedTotal: received,
        writtenTotal: written,
        droppedQueueFull: m.get('meshtap_dropped_total', { reason: 'queue-full' }) ?? 0,
        droppedStoreFailed: m.get('meshtap_dropped_total', { reason: 'store-failed' }) ?? 0,
        rateLimitedTotal: m.get('meshtap_rate_limited_total') ?? 0,
        writeErrors: m.get('meshtap_store_write_errors_total') ?? 0,
        dedupEntries: m.get('meshtap_dedup_entries') ?? 0,
        cacheNodes: m.get('meshtap_cache_nodes') ?? 0,
        dbMb: fileMb(options.dbPath),
        walMb: fileMb(`${options.dbPath}-wal`),
      }
      prev = { t, received, packets, written, ws, cpu }
      return sample
    },
  }
}
