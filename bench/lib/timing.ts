import { type BusySample, startBusyProbe } from './machine.js'

/** One timed round of one contender. */
export interface Round {
  ops: number
  wallMs: number
  /** CPU time of this process (user + system, all threads) during the round. */
  cpuMs: number
  busy: BusySample | undefined
}

/** Something to time: `step(i)` processes item `i` of `count` and returns a number to keep. */
export interface Contender {
  label: string
  count: number
  step: (i: number) => number
}

/** Rounds per contender, in the order given. */
export interface Alternated {
  contenders: Contender[]
  rounds: Round[][]
}

/** Results are summed here so that no step can be optimised away. */
let sink = 0

/** Returns the sink, for printing (it proves that the work was used). */
export function sinkValue(): number {
  return sink
}

const CHECK_EVERY = 64

/**
 * Runs `step` over items 0..count-1, cycling, until at least `minMs` have passed. The clock is
 * read every 64 items.
 */
export function timeRound(c: Contender, minMs: number): Round {
  const { step, count } = c
  const probe = startBusyProbe()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let i = 0
  let ops = 0
  let acc = 0
  let now = t0
  do {
    for (let k = 0; k < CHECK_EVERY; k++) {
      acc += step(i)
      if (++i === count) i = 0
    }
    ops += CHECK_EVERY
    now = performance.now()
  } while (now - t0 < minMs)
  const cpu = process.cpuUsage(cpu0)
  sink = (sink + acc) % 0x7fffffff
  return { ops, wallMs: now - t0, cpuMs: (cpu.user + cpu.system) / 1000, busy: probe.stop() }
}

/** Runs every contender once over all its items, `passes` times (JIT warm-up). */
export function warmUp(contenders: Contender[], passes: number): void {
  for (let p = 0; p < passes; p++) {
    for (const c of contenders) {
      let acc = 0
      for (let i = 0; i < c.count; i++) acc += c.step(i)
      sink = (sink + acc) % 0x7fffffff
    }
  }
}

/**
 * Times the contenders in alternation: `rounds` rounds each, the order reversed every other
 * round (A B, B A, …) so that a slow drift of the machine does not favour one of them.
 */
export function alternate(contenders: Contender[], rounds: number, minMs: number): Alternated {
  const out: Round[][] = contenders.map(() => [])
  for (let r = 0; r < rounds; r++) {
    const order = contenders.map((_, i) => i)
    if (r % 2 === 1) order.reverse()
    for (const i of order) out[i]!.push(timeRound(contenders[i]!, minMs))
  }
  return { contenders, rounds: out }
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Median, min and max. */
export interface Spread {
  median: number
  min: number
  max: number
}

export function spread(values: readonly number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) }
}

/** Operations per wall-clock second of each round. */
export function rates(rounds: readonly Round[]): number[] {
  return rounds.map((r) => (r.ops * 1000) / r.wallMs)
}

/** Operations per CPU-second of this process in each round. */
export function cpuRates(rounds: readonly Round[]): number[] {
  return rounds.map((r) => (r.ops * 1000) / Math.max(r.cpuMs, 1e-3))
}

/** Ratio of paired rounds (round i of `a` over round i of `b`). */
export function pairedRatios(a: readonly Round[], b: readonly Round[]): number[] {
  const ra = rates(a)
  const rb = rates(b)
  return ra.map((v, i) => v / rb[i]!)
}

/** Share of the machine used by other processes, per round (rounds without /proc are left out). */
export function othersPerRound(rounds: readonly Round[]): number[] {
  const out: number[] = []
  for (const r of rounds) if (r.busy) out.push(r.busy.others)
  return out
}
