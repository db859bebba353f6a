import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { assessGrowth, median, quantile, slope } from './analysis.js'

/** Sample times every `step` seconds over `seconds`. */
const timesOver = (seconds: number, step: number) =>
  Array.from({ length: Math.floor(seconds / step) + 1 }, (_, i) => i * step)

/** A small deterministic noise source (xorshift), values in [-1, 1]. */
function noise(seed: number): () => number {
  let x = seed | 0 || 1
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return ((x >>> 0) / 0xffffffff) * 2 - 1
  }
}

const TOL = { slopePerMin: 4, rise: 6 }

describe('median, quantile, slope', () => {
  it('compute the textbook values and ignore non-finite entries', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2, Number.NaN])).toBe(2.5)
    expect(median([])).toBeNaN()
    expect(quantile([0, 10], 0.25)).toBe(2.5)
    expect(quantile([5, 1, 9], 1)).toBe(9)
    expect(slope([0, 1, 2, 3], [1, 3, 5, 7])).toBeCloseTo(2, 12)
    expect(slope([0, 1, 2], [5, Number.NaN, 5])).toBe(0)
    expect(slope([1], [1])).toBe(0)
  })
})

describe('assessGrowth', () => {
  it('does not call a flat but noisy series growing', () => {
    const t = timesOver(120, 5)
    const r = noise(7)
    const v = t.map(() => 200 + 8 * r())
    const g = assessGrowth(t, v, TOL)
    expect(g.decided).toBe(true)
    expect(g.growing).toBe(false)
  })

  it('allows growth during the warm-up half', () => {
    const t = timesOver(600, 10)
    const r = noise(3)
    // Climbs 120 MB over the first four minutes, then stays put.
    const v = t.map((s) => 150 + Math.min(s, 240) * 0.5 + 2 * r())
    expect(assessGrowth(t, v, TOL).growing).toBe(false)
  })

  it('calls a steady leak growing, through noise', () => {
    const t = timesOver(120, 5)
    const r = noise(11)
    const v = t.map((s) => 180 + (s / 60) * 15 + 3 * r()) // 15 MB/min
    const g = assessGrowth(t, v, TOL)
    expect(g.growing).toBe(true)
    expect(g.slopePerMin).toBeGreaterThan(10)
    expect(g.rise).toBeGreaterThan(g.riseLimit)
  })

  it('is not fooled by a single spike or one late garbage-collection peak', () => {
    const t = timesOver(120, 5)
    const v = t.map((s) => (s === 115 ? 400 : 200))
    const g = assessGrowth(t, v, TOL)
    // The spike tilts the regression, but the medians do not move.
    expect(g.slopePerMin).toBeGreaterThan(TOL.slopePerMin)
    expect(g.growing).toBe(false)
  })

  it('scales its limits with the level when relative tolerances are given', () => {
    const t = timesOver(120, 5)
    const v = t.map((s) => 1000 + (s / 60) * 12) // 12 units/min on a level of ~1000
    expect(assessGrowth(t, v, TOL).growing).toBe(true)
    expect(
      assessGrowth(t, v, { ...TOL, relativeSlopePerMin: 0.015, relativeRise: 0.015 }).growing,
    ).toBe(false)
  })

  it('gives no verdict on too few samples', () => {
    const g = assessGrowth([0, 10, 20, 30], [1, 50, 100, 150], TOL)
    expect(g.decided).toBe(false)
    expect(g.growing).toBe(false)
  })

  it('property: noise below the limits never reads as growth; a leak of twice the limit always does', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.integer({ min: 18, max: 120 }), // samples
        fc.double({ min: 50, max: 2000, noNaN: true }), // level
        (seed, n, level) => {
          const t = Array.from({ length: n }, (_, i) => i * 5)
          const r = noise(seed)
          // Uniform noise of ±1 unit: far below the absolute limits.
          const flat = t.map(() => level + r())
          if (assessGrowth(t, flat, TOL).growing) return false
          const minutes = (t[t.length - 1] as number) / 60
          // A leak of 2× the slope limit, with the same noise, plus the absolute rise floor over
          // short runs (so both signs can exceed their limits).
          const perMin = Math.max(2 * TOL.slopePerMin, (3 * TOL.rise) / Math.max(minutes / 3, 1e-9))
          const leak = t.map((s) => level + (s / 60) * perMin + r())
          return assessGrowth(t, leak, TOL).growing
        },
      ),
      { numRuns: 300 },
    )
  })
})
