import {
  applyPacketToNode,
  applyReceptionToNode,
  type DecodedPacket,
  type NodeField,
  type NodeState,
  newNodeState,
  nodeNumFromId,
  type Reception,
} from '@meshtap/protocol'
import { LRUCache } from 'lru-cache'

/** Options of the hot cache. */
export interface NodeCacheOptions {
  /**
   * Nodes kept (least recently heard forgotten first).
   * @default 20000
   */
  maxNodes?: number
}

/** The hot cache: latest state per node. */
export interface NodeCache {
  /** A node by number or `!id`. */
  get(node: number | string): NodeState | undefined
  /** Every cached node, most recently heard first. */
  list(): NodeState[]
  readonly size: number
}

/** @internal */
export interface MutableNodeCache extends NodeCache {
  /** Applies a decoded logical packet; returns the changed fields. */
  applyPacket(p: DecodedPacket, receivedAt: number): { node: NodeState; changed: NodeField[] }
  /** Applies one reception; returns the changed fields. */
  applyReception(from: number, r: Reception): { node: NodeState; changed: NodeField[] }
  /** Marks a gateway. */
  markGateway(gatewayId: string, at: number): void
}

/** Creates the hot cache (`lru-cache` underneath). @internal */
export function createNodeCache(options: NodeCacheOptions = {}): MutableNodeCache {
  const lru = new LRUCache<number, NodeState>({ max: options.maxNodes ?? 20_000 })
  const node = (num: number, at: number): NodeState => {
    let n = lru.get(num)
    if (!n) {
      n = newNodeState(num, at)
      lru.set(num, n)
    }
    return n
  }
  return {
    get(key) {
      const num = typeof key === 'number' ? key >>> 0 : nodeNumFromId(key)
      return num === undefined ? undefined : lru.peek(num)
    },
    list() {
      return [...lru.values()]
    },
    get size() {
      return lru.size
    },
    applyPacket(p, receivedAt) {
      const n = node(p.from, receivedAt)
      return { node: n, changed: applyPacketToNode(n, p, receivedAt) }
    },
    applyReception(from, r) {
      const n = node(from, r.receivedAt)
      return { node: n, changed: applyReceptionToNode(n, r) }
    },
    markGateway(gatewayId, at) {
      const num = nodeNumFromId(gatewayId)
      if (num === undefined) return
      const n = node(num, at)
      n.isGateway = true
    },
  }
}
