import { PortNum, type PriorityLevel } from '@meshtap/protocol'

/** Priority levels, most important first. */
export const PRIORITY_LEVELS: readonly PriorityLevel[] = ['critical', 'high', 'medium', 'low']

/** A priority level name. */
export type { PriorityLevel }

const CRITICAL = new Set<number>([
  PortNum.TEXT_MESSAGE_APP,
  PortNum.TEXT_MESSAGE_COMPRESSED_APP,
  PortNum.ROUTING_APP,
  PortNum.ALERT_APP,
  PortNum.DETECTION_SENSOR_APP,
])
const HIGH = new Set<number>([
  PortNum.POSITION_APP,
  PortNum.NODEINFO_APP,
  PortNum.MAP_REPORT_APP,
  PortNum.WAYPOINT_APP,
])
const MEDIUM = new Set<number>([
  PortNum.TELEMETRY_APP,
  PortNum.TRACEROUTE_APP,
  PortNum.NEIGHBORINFO_APP,
])

/**
 * The queue priority of a port: 0 critical (text, routing, alerts), 1 high (position, node info, map
 * reports, waypoints), 2 medium (telemetry, traceroute, neighbour info), 3 low (everything else,
 * including packets that could not be decoded).
 */
export function priorityOf(portnum: number | undefined): number {
  if (portnum === undefined) return 3
  if (CRITICAL.has(portnum)) return 0
  if (HIGH.has(portnum)) return 1
  if (MEDIUM.has(portnum)) return 2
  return 3
}

/** A FIFO ring that grows by doubling. @internal */
class Ring<T> {
  #items: (T | undefined)[] = new Array(64)
  #head = 0
  #size = 0

  get size(): number {
    return this.#size
  }

  push(item: T): void {
    if (this.#size === this.#items.length) {
      const next: (T | undefined)[] = new Array(this.#items.length * 2)
      for (let i = 0; i < this.#size; i++)
        next[i] = this.#items[(this.#head + i) % this.#items.length]
      this.#items = next
      this.#head = 0
    }
    this.#items[(this.#head + this.#size) % this.#items.length] = item
    this.#size++
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined
    const item = this.#items[this.#head]
    this.#items[this.#head] = undefined
    this.#head = (this.#head + 1) % this.#items.length
    this.#size--
    return item
  }
}

/** The outcome of {@link BoundedPriorityQueue.push}. */
export type PushResult<T> =
  | { accepted: true; evicted?: { item: T; priority: number } }
  | { accepted: false }

/**
 * A bounded queue with four priority levels. When full, a new item evicts the oldest item of the
 * lowest non-empty level below its own; when no such item exists, the new item is refused. Within a
 * level, order is FIFO. O(1) per operation.
 */
export class BoundedPriorityQueue<T> {
  readonly capacity: number
  #levels: Ring<T>[] = PRIORITY_LEVELS.map(() => new Ring<T>())
  #size = 0

  constructor(capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('queue capacity must be at least 1')
    this.capacity = capacity
  }

  get size(): number {
    return this.#size
  }

  /** Items per level, most important first. */
  sizes(): number[] {
    return this.#levels.map((l) => l.size)
  }

  push(item: T, priority: number): PushResult<T> {
    const p = Math.min(Math.max(priority | 0, 0), this.#levels.length - 1)
    if (this.#size < this.capacity) {
      ;(this.#levels[p] as Ring<T>).push(item)
      this.#size++
      return { accepted: true }
    }
    for (let lower = this.#levels.length - 1; lower > p; lower--) {
      const level = this.#levels[lower] as Ring<T>
      if (level.size > 0) {
        const evicted = level.shift() as T
        ;(this.#levels[p] as Ring<T>).push(item)
        return { accepted: true, evicted: { item: evicted, priority: lower } }
      }
    }
    return { accepted: false }
  }

  /** Takes up to `max` items, most important level first, FIFO within a level. */
  take(max: number): T[] {
    const out: T[] = []
    for (const level of this.#levels) {
      while (out.length < max && level.size > 0) out.push(level.shift() as T)
      if (out.length >= max) break
    }
    this.#size -= out.length
    return out
  }
}
