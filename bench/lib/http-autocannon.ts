/**
 * A typed wrapper around autocannon's programmatic API (the package ships no type declarations).
 * @module
 */
import { createRequire } from 'node:module'

/** The options of one autocannon run that the HTTP benchmark uses. */
export interface CannonOptions {
  url: string
  connections: number
  /** Seconds. */
  duration: number
  pipelining?: number
  timeout?: number
}

interface Histogram {
  average: number
  mean: number
  stddev: number
  min: number
  max: number
  total: number
  p50: number
  p90: number
  p99: number
}

/** The parts of autocannon's result the benchmark reads. Latencies in ms. */
export interface CannonResult {
  requests: Histogram
  latency: Histogram
  throughput: Histogram
  errors: number
  timeouts: number
  non2xx: number
  duration: number
}

type Autocannon = (options: CannonOptions) => Promise<CannonResult>

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon

/** Runs autocannon against one URL and resolves with its result. */
export function cannon(options: CannonOptions): Promise<CannonResult> {
  return autocannon(options)
}
