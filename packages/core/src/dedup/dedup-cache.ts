import type { PacketKey } from '@meshtap/protocol'

/** What the pipeline remembers about a logical packet. @internal */
export interface DedupEntry {
  /** The packet key: `from:id`, or `from:0:bucket` for a map report. */
  key: PacketKey
  /**
   * Whether the key is `from:id` (kept by number, found with {@link DedupCache.getById}); other keys
   * are kept by string ({@link DedupCache.get}).
   */
  byId: boolean
  /** `from` and `id` as int32 (`x | 0`): the numeric key when {@link DedupEntry.byId} (else unused). */
  from: number
  id: number
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
  /**
   * The entry of the packet `from:id` (an id that is not 0: `packetKeyOf(from, id)` is
   * `${from >>> 0}:${id >>> 0}`), found by number: no key string is built for the lookup.
   */
  getById(from: number, id: number, now: number): DedupEntry | undefined
  /** The entry of a packet whose key is not `from:id` (map reports), by key. */
  get(key: string, now: number): DedupEntry | undefined
  /** Remembers an entry under its key (`entry.byId`: by `entry.from` and `entry.id`). */
  set(entry: DedupEntry): void
  readonly size: number
}

/**
 * A bounded dedup memory: maps for lookups plus a ring buffer of entries for eviction in insertion
 * order (evicting through `map.keys().next()` degrades badly in V8; the ring does not). Entries older
 * than `ttlMs` are treated as absent. Keys `from:id` are kept by number (sender, then id, both
 * int32, which V8 keeps unboxed) rather than by string: most lookups are of copies of a packet
 * already seen, and they need no key string at all.
 * @internal
 */
export function createDedupCache(options: DedupOptions = {}): DedupCache {
  const max = options.maxEntries ?? 200_000
  const ttl = options.ttlMs ?? 6 * 3600_000
  if (!(max >= 1)) throw new RangeError('dedup.maxEntries must be at least 1')
  /** `from:id` keys: sender → id → entry (a sender's map goes when it is empty). */
  const byFrom = new Map<number, Map<number, DedupEntry>>()
  let byIdCount = 0
  /** Other keys. */
  const byKey = new Map<string, DedupEntry>()
  /** The entries in insertion order; evicting one removes whatever its key holds then. */
  const ring: (DedupEntry | undefined)[] = new Array(max)
  let head = 0

  function removeById(from: number, id: number): void {
    const ids = byFrom.get(from)
    if (ids?.delete(id)) {
      byIdCount--
      if (ids.size === 0) byFrom.delete(from)
    }
  }

  return {
    getById(from, id, now) {
      const f = from | 0
      const ids = byFrom.get(f)
      if (ids === undefined) return undefined
      const i = id | 0
      const e = ids.get(i)
      if (e === undefined) return undefined
      if (now - e.firstSeen > ttl) {
        removeById(f, i)
        return undefined
      }
      return e
    },
    get(key, now) {
      const e = byKey.get(key)
      if (e === undefined) return undefined
      if (now - e.firstSeen > ttl) {
        byKey.delete(key)
        return undefined
      }
      return e
    },
    set(entry) {
      const isNew = entry.byId
        ? byFrom.get(entry.from)?.has(entry.id) !== true
        : !byKey.has(entry.key)
      if (isNew) {
        // Evict first: the oldest slot may hold this very key (an entry that expired since).
        const old = ring[head]
        if (old !== undefined) {
          if (old.byId) removeById(old.from, old.id)
          else byKey.delete(old.key)
        }
        ring[head] = entry
        head = head + 1 === max ? 0 : head + 1
      }
      if (entry.byId) {
        let ids = byFrom.get(entry.from)
        if (ids === undefined) {
          ids = new Map()
          byFrom.set(entry.from, ids)
        }
        if (isNew) byIdCount++
        ids.set(entry.id, entry)
      } else {
        byKey.set(entry.key, entry)
      }
    },
    get size() {
      return byIdCount + byKey.size
    },
  }
}
