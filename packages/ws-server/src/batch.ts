import type { CompiledFilter, EventMeta } from './filter.js'
import type { NodeChange } from './node-tracker.js'

/** An event other than a node update, serialised once when it arrived. @internal */
export interface EventItem {
  node: false
  meta: EventMeta
  /** The event as a wire JSON object. */
  json: string
}

/** A node update; its wire form depends on the filter (full, patch or leave). @internal */
export interface NodeItem {
  node: true
  id: number
  change: NodeChange
  patchJson?: string
  fullJson?: string
  leaveJson?: string
}

/** One time slice of events. @internal */
export interface Batch {
  seq: number
  items: (EventItem | NodeItem)[]
  /** Approximate memory held, in bytes of JSON. */
  bytes: number
}

function nodeJson(item: NodeItem, op: 'full' | 'patch' | 'leave'): string {
  const c = item.change
  const head = `{"id":${item.id},"kind":"node","num":${c.num},"op":"${op}"`
  switch (op) {
    case 'full':
      item.fullJson ??= `${head},"node":${JSON.stringify(c.next)}}`
      return item.fullJson
    case 'patch':
      item.patchJson ??= `${head},"patch":${JSON.stringify(c.patch)}}`
      return item.patchJson
    case 'leave':
      item.leaveJson ??= `${head}}`
      return item.leaveJson
  }
}

/**
 * A node update as one filter sees it: `full` when the node enters the filter (or was never sent),
 * `patch` when it stays in, `leave` when it goes out, nothing when it stays out. Whether it was in
 * is decided on the state last sent, so every client of the filter — and a client resuming later —
 * gets the same answer without per-client state.
 * @internal
 */
export function nodeEventFor(filter: CompiledFilter, item: NodeItem): string | undefined {
  const { prev, next } = item.change
  const inNext = filter.matchesNode(next)
  const inPrev = prev !== undefined && (filter.dynamicNodes ? filter.matchesNode(prev) : inNext)
  if (inNext) return nodeJson(item, inPrev ? 'patch' : 'full')
  return inPrev ? nodeJson(item, 'leave') : undefined
}

/** Serialises the node update JSON that every filter may need, to estimate the batch's size. @internal */
export function nodeItemBytes(item: NodeItem): number {
  return item.change.prev ? nodeJson(item, 'patch').length : nodeJson(item, 'full').length
}

/**
 * The events of a batch that match a filter, as a wire `batch` message (and how many events it
 * holds), or `undefined` when none do.
 * @internal
 */
export function batchText(
  filter: CompiledFilter,
  batch: Batch,
): { text: string; events: number } | undefined {
  const parts: string[] = []
  for (const item of batch.items) {
    if (item.node) {
      if (!filter.wantsNodes) continue
      const json = nodeEventFor(filter, item)
      if (json !== undefined) parts.push(json)
    } else if (filter.matchesEvent(item.meta)) {
      parts.push(item.json)
    }
  }
  if (parts.length === 0) return undefined
  return {
    text: `{"type":"batch","seq":${batch.seq},"events":[${parts.join(',')}]}`,
    events: parts.length,
  }
}

/**
 * The recent batches, by sequence number, for `resume` and for clients catching up. Bounded by a
 * number of batches and by their total size; the oldest go first.
 * @internal
 */
export class BatchRing {
  readonly #items: (Batch | undefined)[] = []
  #head = 0
  #bytes = 0
  readonly #maxBatches: number
  readonly #maxBytes: number

  constructor(maxBatches: number, maxBytes: number) {
    this.#maxBatches = Math.max(1, maxBatches)
    this.#maxBytes = maxBytes
  }

  get size(): number {
    return this.#items.length - this.#head
  }

  get bytes(): number {
    return this.#bytes
  }

  /** The oldest sequence number kept, or `fallback` (the next one) when empty. */
  oldestSeq(fallback: number): number {
    return this.#items[this.#head]?.seq ?? fallback
  }

  push(batch: Batch): void {
    this.#items.push(batch)
    this.#bytes += batch.bytes
    while (this.size > this.#maxBatches || (this.#bytes > this.#maxBytes && this.size > 1)) {
      const old = this.#items[this.#head] as Batch
      this.#items[this.#head] = undefined
      this.#head++
      this.#bytes -= old.bytes
    }
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head)
      this.#head = 0
    }
  }

  /** The batch with this sequence number, if still kept (sequence numbers are consecutive). */
  get(seq: number): Batch | undefined {
    const first = this.#items[this.#head]
    if (!first) return undefined
    const i = this.#head + (seq - first.seq)
    if (i < this.#head || i >= this.#items.length) return undefined
    return this.#items[i]
  }
}
