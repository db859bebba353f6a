/**
 * The soak's verdict and chart, computed from its samples.
 */
import {
  assessGrowth,
  type GrowthTolerance,
  type GrowthVerdict,
  median,
  quantile,
  slope,
} from './analysis.js'
import { COLOURS, renderChart } from './chart.js'
import { encodeIndexedPng } from './png.js'
import type { SoakSample } from './sampler.js'

/** Limits of a soak run; the defaults suit the reference server on a small shared machine. */
export interface SoakLimits {
  /** Resident memory must stay below this. @default 640 */
  rssLimitMb?: number
  /**
   * Tolerance of the memory outside the V8 heap (`rss − heapTotal`). Besides these figures, the
   * slope limit includes the SQLite page cache filling up: the database file's growth per minute,
   * as long as the file is smaller than `sqliteCacheMb` at the start of the second half.
   * @default { slopePerMin: 5, relativeSlopePerMin: 0.03, rise: 6, relativeRise: 0.04 }
   */
  offHeap?: GrowthTolerance
  /** The SQLite page cache of the server's store (`cacheSizeKiB`, 64 MiB by default). @default 64 */
  sqliteCacheMb?: number
  /**
   * Tolerance of the live heap (after a full collection). Besides these figures, the slope limit is
   * at least `retainedBytesPerEnvelope` × the envelopes received per minute.
   * @default { slopePerMin: 2, rise: 3 }
   */
  heap?: GrowthTolerance
  /**
   * Live-heap growth allowed per envelope received, in bytes: the dedup memory legitimately keeps
   * about 400 bytes per logical packet (about 130 per envelope with 3 copies per packet) until it
   * holds its 200,000 packets, which takes far longer than a soak at moderate rates.
   * @default 400
   */
  retainedBytesPerEnvelope?: number
  /** @default { slopePerMin: 100, rise: 200 } */
  queue?: GrowthTolerance
  /**
   * Over the second half, records written per second must reach this fraction of envelopes
   * received per second (the store keeps up). @default 0.9
   */
  minWrittenRatio?: number
  /** The simulator must deliver at least this fraction of the requested rate. @default 0.8 */
  minDeliveredRatio?: number
}

/** One named pass/fail condition. */
export interface SoakCheck {
  name: string
  ok: boolean
  detail: string
}

/** The summary JSON of a soak run. */
export interface SoakSummary {
  pass: boolean
  checks: SoakCheck[]
  run: {
    startedAt: string
    durationS: number
    intervalS: number
    samples: number
    /** Scrapes that failed (timed out) and were skipped; three in a row end the soak. */
    sampleErrors: number
    ratePerS: number
    nodes: number
    gateways: number
    wsViewers: number
    node: string
    cpus: number
    loadAverage1m?: number
  }
  /** Means over the second half, per second. */
  throughput: {
    receivedPerS: number
    packetsPerS: number
    writtenPerS: number
    wsEventsPerS: number
    cpuPct: number
  }
  totals: {
    received: number
    written: number
    droppedQueueFull: number
    droppedStoreFailed: number
    rateLimited: number
    writeErrors: number
    dedupEntries: number
  }
  /** Resident memory; its slope over the second half is shown, the verdicts are on its parts. */
  rssMb: { first: number; max: number; last: number; slopePerMin: number }
  /** `rss − heapTotal`, with the SQLite page-cache allowance included in its slope limit. */
  offHeapMb: {
    first: number
    last: number
    sqliteCacheAllowancePerMin: number
    growth: GrowthVerdict
  }
  /** Used heap as `/metrics` shows it (live data plus garbage not yet collected). */
  heapUsedMb: { first: number; max: number; last: number }
  /** Used heap after a full collection: the growth verdict is on this series. */
  heapLiveMb: {
    first: number
    max: number
    last: number
    /** The second half's slope per envelope received, bytes. */
    retainedBytesPerEnvelope: number
    growth: GrowthVerdict
  }
  /** The forced collections' pauses (one per sample), ms. */
  forcedGcMs: { median: number; max: number }
  queueDepth: { max: number; median: number; growth: GrowthVerdict }
  /** Event-loop delay beyond the 10 ms sampling timer, over the whole run's intervals. */
  loopDelayMs: { p50Median: number; p99Median: number; p99Worst: number; maxWorst: number }
  db: { mb: number; walMb: number; mbPerMin: number }
  shutdown: { exitCode: number | null; signal: string | null; ms: number }
}

/** What {@link summarise} needs besides the samples. */
export interface SummaryInput {
  samples: readonly SoakSample[]
  run: SoakSummary['run']
  shutdown: SoakSummary['shutdown']
  limits?: SoakLimits
}

const MiB = 1024 * 1024
const round = (v: number, digits = 2) =>
  Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : v
const roundVerdict = (g: GrowthVerdict): GrowthVerdict => ({
  ...g,
  slopePerMin: round(g.slopePerMin, 3),
  slopeLimitPerMin: round(g.slopeLimitPerMin, 3),
  middleMedian: round(g.middleMedian),
  lastMedian: round(g.lastMedian),
  rise: round(g.rise),
  riseLimit: round(g.riseLimit),
})
const mean = (v: readonly number[]) =>
  v.length === 0 ? Number.NaN : v.reduce((a, b) => a + b, 0) / v.length

function growthCheck(name: string, unit: string, g: GrowthVerdict): SoakCheck {
  const detail = `slope ${round(g.slopePerMin, 2)} ${unit}/min (limit ${round(g.slopeLimitPerMin, 2)}), last third − middle third ${round(g.rise, 2)} ${unit} (limit ${round(g.riseLimit, 2)})`
  if (!g.decided) return { name, ok: false, detail: `too few samples to decide: ${detail}` }
  return { name, ok: !g.growing, detail }
}

/** Computes the verdict of a soak run. */
export function summarise(input: SummaryInput): SoakSummary {
  const { samples, limits = {} } = input
  const first = samples[0]
  const last = samples[samples.length - 1]
  if (!first || !last) throw new RangeError('soak: no samples to summarise')
  const times = samples.map((s) => s.t)
  const col = (k: keyof SoakSample) => samples.map((s) => s[k])
  const span = last.t - first.t
  // Rates of the first sample are 0 (no interval before it): leave it out of rate figures.
  const secondHalf = samples.filter((s, i) => i > 0 && s.t - first.t >= span / 2)
  const halfMean = (k: keyof SoakSample) => mean(secondHalf.map((s) => s[k]))

  const received = halfMean('receivedPerS')
  const retainedBytes = limits.retainedBytesPerEnvelope ?? 400
  const allowancePerMin = (retainedBytes * (Number.isFinite(received) ? received : 0) * 60) / MiB
  // SQLite's page cache fills with the pages of the database file until it holds `sqliteCacheMb`
  // (the WAL is a reused, size-limited file of copies of those pages: it adds no distinct pages).
  const halfStart = secondHalf[0]
  const cacheAllowancePerMin =
    halfStart && halfStart.dbMb < (limits.sqliteCacheMb ?? 64)
      ? Math.max(
          0,
          slope(
            secondHalf.map((s) => s.t / 60),
            secondHalf.map((s) => s.dbMb),
          ),
        )
      : 0
  const offHeapTolerance = limits.offHeap ?? {
    slopePerMin: 5,
    relativeSlopePerMin: 0.03,
    rise: 6,
    relativeRise: 0.04,
  }
  const offHeap = assessGrowth(times, col('offHeapMb'), {
    ...offHeapTolerance,
    slopePerMin: offHeapTolerance.slopePerMin + cacheAllowancePerMin,
  })
  const rssSlopePerMin = slope(
    secondHalf.map((s) => s.t / 60),
    secondHalf.map((s) => s.rssMb),
  )
  const heap = assessGrowth(
    times,
    col('heapLiveMb'),
    (() => {
      const t = limits.heap ?? { slopePerMin: 2, rise: 3 }
      return { ...t, slopePerMin: Math.max(t.slopePerMin, allowancePerMin) }
    })(),
  )
  const queue = assessGrowth(
    times,
    col('queueDepth'),
    limits.queue ?? { slopePerMin: 100, rise: 200 },
  )
  const rssMax = Math.max(...col('rssMb'))
  const rssLimitMb = limits.rssLimitMb ?? 640
  const written = halfMean('writtenPerS')
  const minWritten = limits.minWrittenRatio ?? 0.9
  const minDelivered = limits.minDeliveredRatio ?? 0.8

  const checks: SoakCheck[] = [
    growthCheck('live-heap-not-growing', 'MB', heap),
    growthCheck('off-heap-not-growing', 'MB', offHeap),
    growthCheck('queue-not-growing', 'records', queue),
    {
      name: 'rss-bounded',
      ok: rssMax < rssLimitMb,
      detail: `max ${round(rssMax, 1)} MB (limit ${rssLimitMb} MB)`,
    },
    {
      name: 'load-delivered',
      ok: received >= minDelivered * input.run.ratePerS,
      detail: `${round(received, 1)} envelopes/s received over the second half (asked ${input.run.ratePerS}/s, need ≥ ${minDelivered * 100} %)`,
    },
    {
      name: 'store-keeps-up',
      ok: written >= minWritten * received,
      detail: `${round(written, 1)} records/s written vs ${round(received, 1)} envelopes/s received (need ≥ ${minWritten * 100} %)`,
    },
    {
      name: 'nothing-shed',
      ok: last.droppedQueueFull === 0 && last.droppedStoreFailed === 0 && last.writeErrors === 0,
      detail: `queue-full drops ${last.droppedQueueFull}, store-failed drops ${last.droppedStoreFailed}, write errors ${last.writeErrors}`,
    },
    {
      name: 'clean-shutdown',
      ok: input.shutdown.exitCode === 0,
      detail: `exit code ${input.shutdown.exitCode}${input.shutdown.signal ? ` (signal ${input.shutdown.signal})` : ''} after ${input.shutdown.ms} ms`,
    },
  ]
  const rated = samples.slice(1)
  return {
    pass: checks.every((c) => c.ok),
    checks,
    run: input.run,
    throughput: {
      receivedPerS: round(received, 1),
      packetsPerS: round(halfMean('packetsPerS'), 1),
      writtenPerS: round(written, 1),
      wsEventsPerS: round(halfMean('wsEventsPerS'), 1),
      cpuPct: round(halfMean('cpuPct'), 1),
    },
    totals: {
      received: last.receivedTotal,
      written: last.writtenTotal,
      droppedQueueFull: last.droppedQueueFull,
      droppedStoreFailed: last.droppedStoreFailed,
      rateLimited: last.rateLimitedTotal,
      writeErrors: last.writeErrors,
      dedupEntries: last.dedupEntries,
    },
    rssMb: {
      first: round(first.rssMb, 1),
      max: round(rssMax, 1),
      last: round(last.rssMb, 1),
      slopePerMin: round(rssSlopePerMin, 2),
    },
    offHeapMb: {
      first: round(first.offHeapMb, 1),
      last: round(last.offHeapMb, 1),
      sqliteCacheAllowancePerMin: round(cacheAllowancePerMin, 2),
      growth: roundVerdict(offHeap),
    },
    heapUsedMb: {
      first: round(first.heapUsedMb, 1),
      max: round(Math.max(...col('heapUsedMb')), 1),
      last: round(last.heapUsedMb, 1),
    },
    heapLiveMb: {
      first: round(first.heapLiveMb, 1),
      max: round(quantile(col('heapLiveMb'), 1), 1),
      last: round(last.heapLiveMb, 1),
      retainedBytesPerEnvelope: round(
        received > 0 ? (heap.slopePerMin * MiB) / (received * 60) : Number.NaN,
        0,
      ),
      growth: roundVerdict(heap),
    },
    forcedGcMs: {
      median: round(median(col('gcMs')), 1),
      max: round(quantile(col('gcMs'), 1), 1),
    },
    queueDepth: {
      max: Math.max(...col('queueDepth')),
      median: median(col('queueDepth')),
      growth: roundVerdict(queue),
    },
    loopDelayMs: {
      p50Median: round(median(rated.map((s) => s.loopP50Ms))),
      p99Median: round(median(rated.map((s) => s.loopP99Ms))),
      p99Worst: round(
        quantile(
          rated.map((s) => s.loopP99Ms),
          1,
        ),
      ),
      maxWorst: round(
        quantile(
          rated.map((s) => s.loopMaxMs),
          1,
        ),
      ),
    },
    db: {
      mb: round(last.dbMb, 2),
      walMb: round(last.walMb, 2),
      mbPerMin: round(span > 0 ? ((last.dbMb - first.dbMb) / span) * 60 : 0, 3),
    },
    shutdown: input.shutdown,
  }
}

/** The chart's title line: rate, length and verdict. */
export function chartTitle(s: SoakSummary): string {
  return `MESHTAP SOAK: ${s.run.ratePerS}/S, ${(s.run.durationS / 60).toFixed(1)} MIN, ${s.pass ? 'PASS' : 'FAIL'}`
}

/** Draws the soak's chart (one panel per metric, the analysed second half shaded) as a PNG. */
export function renderSoakChart(samples: readonly SoakSample[], title: string): Uint8Array {
  const times = samples.map((s) => s.t)
  const span = (times[times.length - 1] ?? 0) - (times[0] ?? 0)
  // Rates are 0 at the first sample (no interval before it): leave a gap there.
  const rate = (k: keyof SoakSample) => samples.map((s, i) => (i === 0 ? null : s[k]))
  const image = renderChart({
    title,
    times,
    highlightFromS: (times[0] ?? 0) + span / 2,
    panels: [
      {
        title: 'MEMORY MB',
        zeroBased: true,
        series: [
          { label: 'RSS', values: samples.map((s) => s.rssMb), colour: COLOURS.blue },
          { label: 'OFF-HEAP', values: samples.map((s) => s.offHeapMb), colour: COLOURS.purple },
          { label: 'HEAP USED', values: samples.map((s) => s.heapUsedMb), colour: COLOURS.red },
          { label: 'HEAP LIVE', values: samples.map((s) => s.heapLiveMb), colour: COLOURS.green },
          {
            label: 'HEAP TOTAL',
            values: samples.map((s) => s.heapTotalMb),
            colour: COLOURS.orange,
          },
        ],
      },
      {
        title: 'EVENT-LOOP DELAY MS',
        zeroBased: true,
        series: [
          { label: 'P50', values: rate('loopP50Ms'), colour: COLOURS.green },
          { label: 'P99', values: rate('loopP99Ms'), colour: COLOURS.orange },
          { label: 'MAX', values: rate('loopMaxMs'), colour: COLOURS.red },
        ],
      },
      {
        title: 'INGEST QUEUE DEPTH',
        zeroBased: true,
        series: [
          { label: 'QUEUE', values: samples.map((s) => s.queueDepth), colour: COLOURS.purple },
        ],
      },
      {
        title: 'RATE PER S',
        zeroBased: true,
        series: [
          { label: 'RECEIVED', values: rate('receivedPerS'), colour: COLOURS.blue },
          { label: 'WRITTEN', values: rate('writtenPerS'), colour: COLOURS.green },
          { label: 'WS EVENTS', values: rate('wsEventsPerS'), colour: COLOURS.orange },
        ],
      },
      {
        title: 'SQLITE MB',
        zeroBased: true,
        series: [
          { label: 'DB', values: samples.map((s) => s.dbMb), colour: COLOURS.blue },
          { label: 'WAL', values: samples.map((s) => s.walMb), colour: COLOURS.orange },
        ],
      },
    ],
  })
  return encodeIndexedPng(image)
}
