import { LRUCache } from 'lru-cache'

/** Options of the per-node rate limit. */
export interface RateLimitOptions {
  /**
   * Sustained logical packets per second allowed per sender.
   * @default 2
   */
  ratePerSecond?: number
  /**
   * Burst: packets a quiet sender may send at once.
   * @default 20
   */
  burst?: number
  /**
   * Senders tracked at most (least recently seen forgotten first).
   * @default 100000
   */
  maxNodes?: number
}

/** A token bucket per sender. @internal */
export interface RateLimiter {
  /** Takes a token for `node`; false when it is over its rate. */
  take(node: number, now: number): boolean
  readonly size: number
}

/** Creates a per-node token-bucket limiter. @internal */
export function createRateLimiter(options: RateLimitOptions = {}): RateLimiter {
  const rate = options.ratePerSecond ?? 2
  const burst = options.burst ?? 20
  const maxNodes = options.maxNodes ?? 100_000
  if (!(rate > 0) || !(burst >= 1)) {
    throw new RangeError('rateLimit.ratePerSecond must be > 0 and rateLimit.burst ≥ 1')
  }
  const buckets = new LRUCache<number, { tokens: number; at: number }>({ max: maxNodes })
  return {
    take(node, now) {
      let b = buckets.get(node)
      if (b === undefined) {
        b = { tokens: burst, at: now }
        buckets.set(node, b)
      } else {
        b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate)
        b.at = now
      }
      if (b.tokens >= 1) {
        b.tokens -= 1
        return true
      }
      return false
    },
    get size() {
      return buckets.size
    },
  }
}
