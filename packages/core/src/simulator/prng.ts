/**
 * A small seeded pseudo-random generator (mulberry32) with the distributions the simulator needs.
 * Same seed ⇒ same sequence on every platform: only 32-bit integer arithmetic and `Math.log`/`Math.exp`
 * on values it produced itself.
 * @internal
 */
export interface Prng {
  /** A uniform float in [0, 1). */
  next(): number
  /** A uniform uint32. */
  uint32(): number
  /** A uniform integer in [0, n). */
  int(n: number): number
  /** A uniform integer in [min, max] (both inclusive). */
  intBetween(min: number, max: number): number
  /** A uniform float in [min, max). */
  between(min: number, max: number): number
  /** `true` with probability `p`. */
  chance(p: number): boolean
  /** A uniformly chosen element (the array must not be empty). */
  pick<T>(items: readonly T[]): T
  /** An index chosen with probability proportional to its weight (weights ≥ 0, sum > 0). */
  weighted(weights: readonly number[]): number
  /** A standard normal deviate (Box–Muller). */
  normal(): number
  /** An exponential deviate with the given rate (mean `1 / rate`). */
  exponential(rate: number): number
  /** A Poisson deviate with mean `lambda`. */
  poisson(lambda: number): number
  /** `n` random bytes. */
  bytes(n: number): Uint8Array
}

/** Folds any finite number (negative, fractional, beyond 2^32) into a uint32 seed. */
function seedToUint32(seed: number): number {
  if (!Number.isFinite(seed)) return 0x9e3779b9
  const lo = seed >>> 0
  const hi = Math.floor(seed / 2 ** 32) >>> 0
  const frac = Math.floor((seed - Math.floor(seed)) * 2 ** 32) >>> 0
  let h = (lo ^ Math.imul(hi, 0x85ebca6b) ^ Math.imul(frac, 0xc2b2ae35)) >>> 0
  // murmur3 finaliser, so that seeds 1, 2, 3 start far apart.
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/** Creates a mulberry32 generator. @internal */
export function createPrng(seed: number): Prng {
  let state = seedToUint32(seed)
  const uint32 = (): number => {
    state = (state + 0x6d2b79f5) | 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
  const next = (): number => uint32() / 4_294_967_296
  const normal = (): number => {
    const u = 1 - next() // (0, 1]
    const v = next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }
  return {
    next,
    uint32,
    int: (n) => Math.floor(next() * n),
    intBetween: (min, max) => min + Math.floor(next() * (max - min + 1)),
    between: (min, max) => min + next() * (max - min),
    chance: (p) => next() < p,
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
    weighted(weights) {
      let total = 0
      for (const w of weights) total += w
      let r = next() * total
      for (let i = 0; i < weights.length; i++) {
        r -= weights[i] as number
        if (r < 0) return i
      }
      // Rounding: the last index with a positive weight.
      for (let i = weights.length - 1; i >= 0; i--) if ((weights[i] as number) > 0) return i
      return 0
    },
    normal,
    exponential: (rate) => -Math.log(1 - next()) / rate,
    poisson(lambda) {
      if (lambda <= 0) return 0
      if (lambda > 60) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * normal()))
      const limit = Math.exp(-lambda)
      let k = 0
      let p = next()
      while (p > limit) {
        k++
        p *= next()
      }
      return k
    },
    bytes(n) {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i += 4) {
        const v = uint32()
        out[i] = v & 0xff
        if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff
        if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff
        if (i + 3 < n) out[i + 3] = (v >>> 24) & 0xff
      }
      return out
    },
  }
}
