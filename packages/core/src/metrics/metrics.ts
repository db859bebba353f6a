import { DECODE_ERROR_CODES, type DecodeErrorCode } from '@meshtap/protocol'
import { PRIORITY_LEVELS, type PriorityLevel } from '../queue/priority-queue.js'

/** Why a message or record was dropped. */
export type DropReason = 'rate-limited' | 'queue-full' | 'store-failed' | 'stopped'

/** A histogram snapshot: bucket upper bounds (ms) with cumulative counts, plus sum and count. */
export interface HistogramSnapshot {
  buckets: { le: number; count: number }[]
  count: number
  sum: number
  /** Estimated quantiles (ms), from the buckets. */
  p50: number
  p90: number
  p99: number
}

/** A plain snapshot of every ingest metric. */
export interface MetricsSnapshot {
  counters: {
    /** Messages received from sources. */
    received: number
    /** Messages decoded into packets (first copies and copies decoded for their content). */
    decoded: number
    /** Messages that failed to decode, in total and by code. */
    failed: number
    failedByCode: Record<DecodeErrorCode, number>
    /** Logical packets accepted: first copies, decoded or kept undecoded. */
    packets: number
    /** Copies of packets already seen (each also counted as a reception). */
    duplicates: number
    /**
     * Of the duplicates, copies from a gateway that had already uplinked the same packet: acknowledged
     * and counted here, not recorded as receptions (a store keeps one reception per packet and gateway).
     */
    repeats: number
    /** Times the pausable sources were paused because the queue reached its high-water mark. */
    pauses: number
    /** Receptions recorded (every copy, including first copies). */
    receptions: number
    /** Logical packets refused by the per-node rate limit. */
    rateLimited: number
    /** Records dropped, by reason and by priority. */
    dropped: number
    droppedByReason: Record<DropReason, number>
    droppedByPriority: Record<PriorityLevel, number>
    /** Records committed to the store: one per reception. */
    written: number
    /** Logical packets committed to the store (decoded, or kept undecoded): its packet rows. */
    packetsWritten: number
    /** Batches committed, and failed write attempts. */
    batches: number
    writeErrors: number
  }
  gauges: {
    queueDepth: number
    queueDepthByPriority: Record<PriorityLevel, number>
    cacheNodes: number
    dedupEntries: number
    sourcesConnected: number
    /** 1 while sources are paused for backpressure, else 0. */
    sourcesPaused: number
  }
  histograms: {
    /** From receipt to store commit, ms. */
    commitLatencyMs: HistogramSnapshot
    /** From the gateway's rxTime to receipt, ms (only where rxTime is set). */
    ingestLagMs: HistogramSnapshot
  }
}

const LATENCY_BUCKETS = [
  1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000,
]
const LAG_BUCKETS = [100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 3_600_000]

/** A fixed-bucket histogram. @internal */
export class Histogram {
  readonly bounds: readonly number[]
  #counts: Float64Array
  #sum = 0
  #count = 0

  constructor(bounds: readonly number[]) {
    this.bounds = bounds
    this.#counts = new Float64Array(bounds.length + 1)
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return
    let i = 0
    while (i < this.bounds.length && value > (this.bounds[i] as number)) i++
    ;(this.#counts as Float64Array)[i] = (this.#counts[i] as number) + 1
    this.#sum += value
    this.#count++
  }

  #quantile(q: number): number {
    if (this.#count === 0) return 0
    const target = q * this.#count
    let cum = 0
    for (let i = 0; i < this.#counts.length; i++) {
      const c = this.#counts[i] as number
      if (cum + c >= target) {
        const lo = i === 0 ? 0 : (this.bounds[i - 1] as number)
        const hi = i < this.bounds.length ? (this.bounds[i] as number) : lo * 2
        return lo + ((hi - lo) * (target - cum)) / Math.max(c, 1)
      }
      cum += c
    }
    return this.bounds[this.bounds.length - 1] as number
  }

  snapshot(): HistogramSnapshot {
    let cum = 0
    const buckets = this.bounds.map((le, i) => {
      cum += this.#counts[i] as number
      return { le, count: cum }
    })
    return {
      buckets,
      count: this.#count,
      sum: this.#sum,
      p50: this.#quantile(0.5),
      p90: this.#quantile(0.9),
      p99: this.#quantile(0.99),
    }
  }
}

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>
}

/** The mutable metrics an ingest keeps. @internal */
export function createMetrics() {
  return {
    received: 0,
    decoded: 0,
    failed: 0,
    failedByCode: zeros(DECODE_ERROR_CODES),
    packets: 0,
    duplicates: 0,
    repeats: 0,
    pauses: 0,
    receptions: 0,
    rateLimited: 0,
    dropped: 0,
    droppedByReason: zeros<DropReason>(['rate-limited', 'queue-full', 'store-failed', 'stopped']),
    droppedByPriority: zeros(PRIORITY_LEVELS),
    written: 0,
    packetsWritten: 0,
    batches: 0,
    writeErrors: 0,
    commitLatency: new Histogram(LATENCY_BUCKETS),
    ingestLag: new Histogram(LAG_BUCKETS),
  }
}

/** The mutable metrics object. @internal */
export type Metrics = ReturnType<typeof createMetrics>

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/**
 * Renders a snapshot in the Prometheus text exposition format (version 0.0.4), metric names
 * prefixed `meshtap_`.
 *
 * @example
 * http.createServer((req, res) => res.end(toPrometheus(ingest.metrics())))
 */
export function toPrometheus(s: MetricsSnapshot, prefix = 'meshtap_'): string {
  const out: string[] = []
  const sample =
    (type: 'counter' | 'gauge') =>
    (name: string, help: string, value: number, labels?: Record<string, string>) => {
      if (!out.includes(`# TYPE ${prefix}${name} ${type}`)) {
        out.push(`# HELP ${prefix}${name} ${help}`, `# TYPE ${prefix}${name} ${type}`)
      }
      const lbl = labels
        ? `{${Object.entries(labels)
            .map(([k, v]) => `${k}="${esc(v)}"`)
            .join(',')}}`
        : ''
      out.push(`${prefix}${name}${lbl} ${value}`)
    }
  const counter = sample('counter')
  const gauge = sample('gauge')
  const c = s.counters
  counter('messages_received_total', 'Messages received from sources.', c.received)
  counter('packets_decoded_total', 'Messages decoded into packets.', c.decoded)
  for (const [code, n] of Object.entries(c.failedByCode)) {
    counter('decode_failures_total', 'Messages that failed to decode, by code.', n, { code })
  }
  counter('packets_total', 'Logical packets accepted (first copies).', c.packets)
  counter('duplicates_total', 'Copies of packets already seen.', c.duplicates)
  counter(
    'repeated_copies_total',
    'Copies from a gateway that had already uplinked the packet (not receptions).',
    c.repeats,
  )
  counter('receptions_total', 'Receptions recorded (every gateway copy).', c.receptions)
  counter(
    'rate_limited_total',
    'Logical packets refused by the per-node rate limit.',
    c.rateLimited,
  )
  for (const [reason, n] of Object.entries(c.droppedByReason)) {
    counter('dropped_total', 'Records dropped, by reason.', n, { reason })
  }
  for (const [priority, n] of Object.entries(c.droppedByPriority)) {
    counter('dropped_by_priority_total', 'Records dropped, by priority.', n, { priority })
  }
  counter('records_written_total', 'Records committed to the store.', c.written)
  counter('packets_written_total', 'Logical packets committed to the store.', c.packetsWritten)
  counter('batches_written_total', 'Batches committed to the store.', c.batches)
  counter('store_write_errors_total', 'Failed batch write attempts.', c.writeErrors)
  const g = s.gauges
  gauge('queue_depth', 'Records waiting to be written.', g.queueDepth)
  for (const [priority, n] of Object.entries(g.queueDepthByPriority)) {
    gauge('queue_depth_by_priority', 'Records waiting, by priority.', n, { priority })
  }
  gauge('cache_nodes', 'Nodes in the hot cache.', g.cacheNodes)
  gauge('dedup_entries', 'Packets remembered for deduplication.', g.dedupEntries)
  gauge('sources_connected', 'Sources currently connected.', g.sourcesConnected)
  gauge(
    'sources_paused',
    '1 while sources are paused because the queue is nearly full.',
    g.sourcesPaused,
  )
  counter('source_pauses_total', 'Times sources were paused for backpressure.', c.pauses)
  const hist = (name: string, help: string, h: HistogramSnapshot) => {
    out.push(`# HELP ${prefix}${name} ${help}`, `# TYPE ${prefix}${name} histogram`)
    for (const b of h.buckets) out.push(`${prefix}${name}_bucket{le="${b.le / 1000}"} ${b.count}`)
    out.push(`${prefix}${name}_bucket{le="+Inf"} ${h.count}`)
    out.push(`${prefix}${name}_sum ${h.sum / 1000}`, `${prefix}${name}_count ${h.count}`)
  }
  hist('commit_latency_seconds', 'From receipt to store commit.', s.histograms.commitLatencyMs)
  hist('ingest_lag_seconds', 'From gateway rxTime to receipt.', s.histograms.ingestLagMs)
  return `${out.join('\n')}\n`
}
