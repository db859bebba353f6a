/**
 * A map bounded to `max` entries that forgets the oldest insertion first, in O(1): a ring of the
 * keys in insertion order next to the map. (Evicting through `map.keys().next()` instead walks
 * over the deleted slots V8 leaves at the front of the table: tens of times slower once full.)
 * Setting a key that is already there keeps its place in the ring.
 * @internal
 */
export class FifoMap<K, V> {
  private readonly map = new Map<K, V>()
  private readonly ring: (K | undefined)[]
  private head = 0

  constructor(private readonly max: number) {
    this.ring = new Array<K | undefined>(Math.max(1, Math.floor(max)))
  }

  get size(): number {
    return this.map.size
  }

  get(key: K): V | undefined {
    return this.map.get(key)
  }

  has(key: K): boolean {
    return this.map.has(key)
  }

  set(key: K, value: V): this {
    if (!this.map.has(key)) {
      // The slot at `head` holds the oldest key once the ring has gone round.
      const old = this.ring[this.head]
      if (old !== undefined && this.map.size >= this.ring.length) this.map.delete(old)
      this.ring[this.head] = key
      this.head = (this.head + 1) % this.ring.length
    }
    this.map.set(key, value)
    return this
  }

  clear(): void {
    this.map.clear()
    this.ring.fill(undefined)
    this.head = 0
  }
}

interface Link<K, V> {
  key: K
  value: V
  newer: Link<K, V> | undefined
  older: Link<K, V> | undefined
}

/**
 * A map bounded to `max` entries that forgets the least recently used one first: a doubly linked
 * list through the entries, so touching, inserting and evicting are O(1) whatever the size.
 * @internal
 */
export class LruMap<K, V> {
  private readonly map = new Map<K, Link<K, V>>()
  private newest: Link<K, V> | undefined
  private oldest: Link<K, V> | undefined

  constructor(private readonly max: number) {}

  get size(): number {
    return this.map.size
  }

  /** The value, without making it the most recent. */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value
  }

  /** The value, made the most recent. */
  touch(key: K): V | undefined {
    const link = this.map.get(key)
    if (!link) return undefined
    this.unlink(link)
    this.push(link)
    return link.value
  }

  /** Puts (or replaces) a value as the most recent, evicting the least recent beyond `max`. */
  set(key: K, value: V): void {
    const link = this.map.get(key)
    if (link) {
      link.value = value
      this.unlink(link)
      this.push(link)
      return
    }
    const added: Link<K, V> = { key, value, newer: undefined, older: undefined }
    this.map.set(key, added)
    this.push(added)
    while (this.map.size > this.max && this.oldest) {
      const gone = this.oldest
      this.unlink(gone)
      this.map.delete(gone.key)
    }
  }

  /** The values, most recent first. */
  values(): V[] {
    const out: V[] = []
    for (let l = this.newest; l; l = l.older) out.push(l.value)
    return out
  }

  clear(): void {
    this.map.clear()
    this.newest = undefined
    this.oldest = undefined
  }

  private unlink(link: Link<K, V>): void {
    if (link.newer) link.newer.older = link.older
    else this.newest = link.older
    if (link.older) link.older.newer = link.newer
    else this.oldest = link.newer
    link.newer = undefined
    link.older = undefined
  }

  private push(link: Link<K, V>): void {
    link.older = this.newest
    if (this.newest) this.newest.newer = link
    this.newest = link
    if (!this.oldest) this.oldest = link
  }
}
