import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { packetKeyOf } from '../pipeline/ingest.js'
import { createDedupCache, type DedupEntry } from './dedup-cache.js'

/** The dedup memory as it was before keys `from:id` were kept by number: one map by key string. */
function reference(max: number, ttl: number) {
  const map = new Map<string, DedupEntry>()
  const ring: (string | undefined)[] = new Array(max)
  let head = 0
  return {
    get(key: string, now: number) {
      const e = map.get(key)
      if (e === undefined) return undefined
      if (now - e.firstSeen > ttl) {
        map.delete(key)
        return undefined
      }
      return e
    },
    set(key: string, entry: DedupEntry) {
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

function entry(from: number, id: number, at: number, firstSeen: number): DedupEntry {
  const byId = id !== 0
  return {
    key: packetKeyOf(from, id, at),
    byId,
    from: byId ? from | 0 : 0,
    id: id | 0,
    portnum: 1,
    fate: 'accepted',
    hasBitfield: false,
    firstSeen,
    copies: 1,
    priority: 0,
  }
}

describe('createDedupCache', () => {
  it('finds `from:id` packets by number and others by key, as one map by key string would', () => {
    // Few senders and ids (so keys repeat), ids 0 (map reports, by key), values beyond int32 and
    // non-integers (JavaScript callers), a small capacity (evictions) and a short TTL.
    const num = fc.oneof(
      fc.constantFrom(0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32, -1, 1.5),
      fc.nat(3),
    )
    const op = fc.record({
      set: fc.boolean(),
      from: num,
      id: num,
      bucket: fc.nat(2),
      dt: fc.nat(40),
    })
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(op, { maxLength: 80 }), (max, ops) => {
        const ttl = 50
        const cache = createDedupCache({ maxEntries: max, ttlMs: ttl })
        const ref = reference(max, ttl)
        let now = 0
        for (const o of ops) {
          now += o.dt
          const at = o.bucket * 600_000
          const key = packetKeyOf(o.from, o.id, at)
          if (o.set) {
            const e = entry(o.from, o.id, at, now)
            cache.set(e)
            ref.set(key, e)
          } else {
            const want = ref.get(key, now)
            const got = o.id !== 0 ? cache.getById(o.from, o.id, now) : cache.get(key, now)
            expect(got).toBe(want)
            if (got) expect(got.key).toBe(key)
          }
          expect(cache.size).toBe(ref.size)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('evicts in insertion order, and an expired key set again is evicted by its old slot', () => {
    const cache = createDedupCache({ maxEntries: 2, ttlMs: 10 })
    const a = entry(1, 1, 0, 0)
    cache.set(a)
    cache.set(entry(1, 2, 0, 0))
    cache.set(entry(2, 0, 0, 0)) // evicts 1:1
    expect(cache.getById(1, 1, 0)).toBeUndefined()
    expect(cache.getById(1, 2, 0)).toBeDefined()
    expect(cache.get(packetKeyOf(2, 0, 0), 0)).toBeDefined()
    expect(cache.size).toBe(2)
    expect(cache.getById(1, 2, 11)).toBeUndefined() // expired: forgotten
    expect(cache.size).toBe(1)
  })
})
