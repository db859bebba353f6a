/**
 * A bounded FIFO: pushing past the capacity drops the oldest item. `toArray()` returns the same
 * (frozen) array until the next push, so unchanged buffers keep their identity between snapshots.
 *
 * @internal
 */
export class RingBuffer<T> {
  private readonly items: T[] = []
  private head = 0
  private cached: readonly T[] | undefined

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.items.length
  }

  push(item: T): void {
    this.cached = undefined
    if (this.items.length < this.capacity) {
      this.items.push(item)
      return
    }
    this.items[this.head] = item
    this.head = (this.head + 1) % this.capacity
  }

  clear(): void {
    this.items.length = 0
    this.head = 0
    this.cached = undefined
  }

  /** Oldest first. */
  toArray(): readonly T[] {
    if (this.cached) return this.cached
    const out =
      this.head === 0
        ? this.items.slice()
        : this.items.slice(this.head).concat(this.items.slice(0, this.head))
    this.cached = Object.freeze(out)
    return this.cached
  }
}

/**
 * Ring buffers by key, for at most `maxKeys` keys (the least recently pushed key is dropped
 * first). `publish` turns the changes since the last call into a new read-only map that shares
 * every unchanged buffer array with the previous one.
 *
 * @internal
 */
export class KeyedRings<K, T> {
  private readonly rings = new Map<K, RingBuffer<T>>()
  private readonly dirty = new Set<K>()

  constructor(
    readonly maxKeys: number,
    readonly capacity: number,
  ) {}

  get size(): number {
    return this.rings.size
  }

  get changed(): boolean {
    return this.dirty.size > 0
  }

  push(key: K, item: T): void {
    let ring = this.rings.get(key)
    if (ring) this.rings.delete(key)
    else ring = new RingBuffer<T>(this.capacity)
    this.rings.set(key, ring)
    ring.push(item)
    this.dirty.add(key)
    if (this.rings.size > this.maxKeys) {
      const oldest = this.rings.keys().next().value as K
      this.rings.delete(oldest)
      this.dirty.add(oldest)
    }
  }

  clear(): void {
    for (const k of this.rings.keys()) this.dirty.add(k)
    this.rings.clear()
  }

  publish(previous: ReadonlyMap<K, readonly T[]>): ReadonlyMap<K, readonly T[]> {
    if (this.dirty.size === 0) return previous
    const next = new Map(previous)
    for (const k of this.dirty) {
      const ring = this.rings.get(k)
      if (ring) next.set(k, ring.toArray())
      else next.delete(k)
    }
    this.dirty.clear()
    return next
  }
}
