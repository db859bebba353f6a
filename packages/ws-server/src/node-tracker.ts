import {
  applyMergePatch,
  createMergePatch,
  type MergePatch,
  type NodePatch,
  type NodeState,
} from '@meshtap/protocol'

/**
 * A node's change over one time slice: its state as last sent (`prev`, undefined for a node not
 * sent before) and now (`next`). Both are private immutable copies, so batches kept for resume can
 * still be filtered on them later.
 * @internal
 */
export interface NodeChange {
  num: number
  prev: NodeState | undefined
  next: NodeState
  /** The merge patch from `prev` to `next` (only when `prev` is known). */
  patch: NodePatch | undefined
}

/**
 * Tracks which nodes changed since the last time slice and what was last sent of each, to send
 * node updates as differences. Copies share unchanged parts with the previous copy (the patch is
 * applied to it), so keeping many of them in the resume ring costs little.
 * @internal
 */
export class NodeTracker {
  readonly #shadows = new Map<number, NodeState>()
  readonly #dirty = new Set<number>()
  readonly #maxNodes: number

  constructor(maxNodes: number) {
    this.#maxNodes = maxNodes
  }

  /** Marks a node as possibly changed. */
  mark(num: number): void {
    this.#dirty.add(num >>> 0)
  }

  get hasDirty(): boolean {
    return this.#dirty.size > 0
  }

  get size(): number {
    return this.#shadows.size
  }

  /** The differences of every marked node, against what was last sent; clears the marks. */
  collect(get: (num: number) => NodeState | undefined): NodeChange[] {
    const out: NodeChange[] = []
    if (this.#dirty.size === 0) return out
    if (this.#shadows.size + this.#dirty.size > this.#maxNodes) {
      // Bounded memory: forget every copy; the next change of each node is sent whole.
      this.#shadows.clear()
    }
    for (const num of this.#dirty) {
      const live = get(num)
      if (!live) continue
      const prev = this.#shadows.get(num)
      if (!prev) {
        const next = createMergePatch(undefined, live) as NodeState
        this.#shadows.set(num, next)
        out.push({ num, prev: undefined, next, patch: undefined })
        continue
      }
      const patch = createMergePatch(prev, live)
      if (patch === undefined) continue
      const next = applyMergePatch<NodeState>(prev, patch as MergePatch<NodeState>)
      this.#shadows.set(num, next)
      out.push({ num, prev, next, patch: patch as NodePatch })
    }
    this.#dirty.clear()
    return out
  }
}
