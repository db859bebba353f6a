/**
 * Deciding whether a series "keeps growing" from a noisy soak run.
 *
 * On a shared 2-core machine memory and queue samples jump around (garbage-collection sawtooth,
 * a scrape landing just before or after a batch commit, a neighbour's CPU burst). A series is
 * therefore called growing only when two independent signs agree:
 *
 * 1. the least-squares slope over the **second half** of the run (the first half is warm-up:
 *    JIT, caches and the dedup memory filling) is above a tolerance, and
 * 2. the **median of the last third** is above the median of the middle third by more than a
 *    tolerance — a median ignores single spikes, and a real leak moves the whole third.
 *
 * Each tolerance is the larger of an absolute floor and a fraction of the series' level, so a
 * 200 MB process may wobble by a few megabytes without failing.
 */

/** Tolerances for {@link assessGrowth}. */
export interface GrowthTolerance {
  /** Allowed second-half slope, in units per minute. */
  slopePerMin: number
  /** …or this fraction of the second half's median per minute, when larger. @default 0 */
  relativeSlopePerMin?: number
  /**
   * Allowed rise of the last third's median over the middle third's, in units. The limit is never
   * below what the allowed slope gives over a third of the run (`slope limit × span / 3`), so the
   * two signs measure the same allowance.
   */
  rise: number
  /** …or this fraction of the middle third's median, when larger. @default 0 */
  relativeRise?: number
}

/** The verdict on one series. */
export interface GrowthVerdict {
  /** Least-squares slope over the second half, units per minute. */
  slopePerMin: number
  slopeLimitPerMin: number
  middleMedian: number
  lastMedian: number
  /** `lastMedian − middleMedian`. */
  rise: number
  riseLimit: number
  /** Samples in the second half, the middle third and the last third. */
  counts: { secondHalf: number; middle: number; last: number }
  /** True when both the slope and the rise are above their limits. */
  growing: boolean
  /** False when a window had fewer than three samples (then no verdict can be given). */
  decided: boolean
}

/** The median of the finite values (NaN when there are none). */
export function median(values: readonly number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (v.length === 0) return Number.NaN
  const m = v.length >> 1
  return v.length % 2 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2
}

/** A quantile (0–1) of the finite values, by linear interpolation (NaN when there are none). */
export function quantile(values: readonly number[], q: number): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (v.length === 0) return Number.NaN
  const pos = (v.length - 1) * Math.min(1, Math.max(0, q))
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return (v[lo] as number) + ((v[hi] as number) - (v[lo] as number)) * (pos - lo)
}

/** Least-squares slope of y over x (0 for fewer than two distinct x). */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = Math.min(xs.length, ys.length)
  let sx = 0
  let sy = 0
  let k = 0
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(ys[i]) || !Number.isFinite(xs[i])) continue
    sx += xs[i] as number
    sy += ys[i] as number
    k++
  }
  if (k < 2) return 0
  const mx = sx / k
  const my = sy / k
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(ys[i]) || !Number.isFinite(xs[i])) continue
    const dx = (xs[i] as number) - mx
    num += dx * ((ys[i] as number) - my)
    den += dx * dx
  }
  return den === 0 ? 0 : num / den
}

/**
 * Whether `values` (sampled at `timesS`, seconds from the start of the run) keep growing; see the
 * module comment for the rule.
 * @example
 * assessGrowth([0, 10, 20, 30, 40, 50], [5, 9, 10, 10, 11, 10], { slopePerMin: 2, rise: 2 }).growing // false
 */
export function assessGrowth(
  timesS: readonly number[],
  values: readonly number[],
  tolerance: GrowthTolerance,
): GrowthVerdict {
  const n = Math.min(timesS.length, values.length)
  const t0 = timesS[0] ?? 0
  const end = timesS[n - 1] ?? 0
  const span = end - t0
  const half: { t: number[]; v: number[] } = { t: [], v: [] }
  const middle: number[] = []
  const last: number[] = []
  for (let i = 0; i < n; i++) {
    const t = (timesS[i] as number) - t0
    const v = values[i] as number
    if (!Number.isFinite(v)) continue
    if (t >= span / 2) {
      half.t.push(t / 60)
      half.v.push(v)
    }
    if (t >= span / 3 && t < (2 * span) / 3) middle.push(v)
    else if (t >= (2 * span) / 3) last.push(v)
  }
  const slopePerMin = slope(half.t, half.v)
  const level = median(half.v)
  const slopeLimitPerMin = Math.max(
    tolerance.slopePerMin,
    (tolerance.relativeSlopePerMin ?? 0) * Math.abs(level),
  )
  const middleMedian = median(middle)
  const lastMedian = median(last)
  const rise = lastMedian - middleMedian
  const riseLimit = Math.max(
    tolerance.rise,
    (tolerance.relativeRise ?? 0) * Math.abs(middleMedian),
    (slopeLimitPerMin * span) / 3 / 60,
  )
  const decided = half.v.length >= 3 && middle.length >= 3 && last.length >= 3
  return {
    slopePerMin,
    slopeLimitPerMin,
    middleMedian,
    lastMedian,
    rise,
    riseLimit,
    counts: { secondHalf: half.v.length, middle: middle.length, last: last.length },
    growing: decided && slopePerMin > slopeLimitPerMin && rise > riseLimit,
    decided,
  }
}
