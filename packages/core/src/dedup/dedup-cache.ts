/** What the pipeline remembers about a logical packet. @internal */
export interface DedupEntry {
  /** Port of the first copy (−1 when it could not be decoded). */
  portnum: number
  /** What became of the first copy. */
  fate: 'accepted' | 'dropped' | 'undecoded'
  /** Why it was dropped (its later copies are dropped for the same reason). */
  dropReason?: 'rate-limited' | 'queue-full' | 'store-failed'
  /** Whether the first copy's `Data` carried a bitfield (firmware ≥ 2.5). */
  hasBitfield: boolean
  /** Unix ms of the first copy. */
  firstSeen: number
  /** Copies seen so far, including the first. */
  copies: number
  /** Priority level of the logical packet. */
  priority: number
  /**
   * Gateways whose copy of this packet was already taken (a gateway that uplinks the same packet
   * twice, for example after hearing a rebroadcast, adds no reception: the store keeps one row per
   * packet and gateway). Undefined when the first copy named no gateway.
   */
  gateways?: string[]
}

/** Options of the dedup memory (`dedup` in `createIngest`). */
export interface DedupOptions {
  /**
   * How many packets to remember. At 100 packets/s, 200,000 covers more than half an hour.
   * @default 200000
   */
  maxEntries?: number
  /**
   * How long a packet is remembered: a copy arriving later is a new packet. Packet ids are unique per
   * sender "for a few minutes"; store-and-forward replays and gateway offline queues arrive later.
   * @default 21600000 (6 h)
   */
  ttlMs?: number
}

/** A bounded map from packet key to {@link DedupEntry}. @internal */
export interface DedupCache {
  get(key: string, now: number): DedupEntry | undefined
  set(key: string, entry: DedupEntry): void
  readonly size: number
}

/**
 * A bounded dedup memory: a `Map` for lookups plus a ring buffer of keys for eviction in insertion
 * order (evicting through `map.keys().next()` degrades badly in V8; the ring does not). Entries older
 * than `ttlMs` are treated as absent.
 * @internal
 */
export function createDedupCache(options: DedupOptions = {}): DedupCache {
  const max = options.maxEntries ?? 200_000
  const ttl = options.ttlMs ?? 6 * 3600_000
  if (!(max >= 1)) throw new RangeError('dedup.maxEntries must be at least 1')
  const map = new Map<string, DedupEntry>()
  const ring: (string | undefined)[] = new Array(max)
  let head = 0
  return {
    get(key, now) {
      const e = map.get(key)
      if (e === undefined) return undefined
      if (now - e.firstSeen > ttl) {
        map.delete(key)
        return undefined
      }
      return e
    },
    set(key, entry) {
      if (!map.has(key)) {
        const old = ring[head]
        if (old !== undefined) map.delete(old)
        ring[head] = key
        head = head + 1 === max ? 0 : head + 1
      }
      map.set(key, entry)
    },
    get size() {
      return map.size
    },
  }
}
