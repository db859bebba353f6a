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
import { LruMap } from './bounded.js'

/** A node's state changed: the node and the fields that changed. @internal */
export interface NodeChange {
  node: NodeState
  changed: NodeField[]
}

/**
 * The latest state per node, updated from packets and receptions the way an ingest's hot cache
 * is (so a change feed emits the same `nodeUpdate` events), most recently heard first, bounded
 * (least recently heard forgotten first, in O(1)).
 * @internal
 */
export class NodeStates {
  private readonly nodes: LruMap<number, NodeState>

  constructor(max: number) {
    this.nodes = new LruMap(max)
  }

  get size(): number {
    return this.nodes.size
  }

  get(key: number | string): NodeState | undefined {
    const num = typeof key === 'number' ? key >>> 0 : nodeNumFromId(key)
    return num === undefined ? undefined : this.nodes.peek(num)
  }

  /** Most recently heard first. */
  list(): NodeState[] {
    return this.nodes.values()
  }

  /** Puts a node (seeded from the store) as the most recent. */
  set(node: NodeState): void {
    this.nodes.set(node.num, node)
  }

  clear(): void {
    this.nodes.clear()
  }

  private node(num: number, at: number): NodeState {
    const found = this.nodes.touch(num)
    if (found) return found
    const n = newNodeState(num, at)
    this.nodes.set(num, n)
    return n
  }

  applyPacket(p: DecodedPacket, receivedAt: number): NodeChange {
    const n = this.node(p.from >>> 0, receivedAt)
    return { node: n, changed: applyPacketToNode(n, p, receivedAt) }
  }

  applyReception(from: number, r: Reception): NodeChange {
    const n = this.node(from >>> 0, r.receivedAt)
    return { node: n, changed: applyReceptionToNode(n, r) }
  }

  /** Marks the node behind a gateway id as a gateway. */
  markGateway(gatewayId: string, at: number): void {
    const num = nodeNumFromId(gatewayId)
    if (num === undefined) return
    const existing = this.nodes.peek(num)
    if (existing) existing.isGateway = true
    else this.node(num, at).isGateway = true
  }
}
