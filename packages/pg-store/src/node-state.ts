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

/** A node's state changed: the node and the fields that changed. @internal */
export interface NodeChange {
  node: NodeState
  changed: NodeField[]
}

/**
 * The latest state per node, updated from packets and receptions the way an ingest's hot cache
 * is (so a change feed emits the same `nodeUpdate` events), most recently heard first, bounded.
 * @internal
 */
export class NodeStates {
  private readonly nodes = new Map<number, NodeState>()

  constructor(private readonly max: number) {}

  get size(): number {
    return this.nodes.size
  }

  get(key: number | string): NodeState | undefined {
    const num = typeof key === 'number' ? key >>> 0 : nodeNumFromId(key)
    return num === undefined ? undefined : this.nodes.get(num)
  }

  /** Most recently heard first. */
  list(): NodeState[] {
    return [...this.nodes.values()].reverse()
  }

  /** Puts a node (seeded from the store) as the most recent. */
  set(node: NodeState): void {
    this.nodes.delete(node.num)
    this.nodes.set(node.num, node)
    this.trim()
  }

  clear(): void {
    this.nodes.clear()
  }

  private trim(): void {
    while (this.nodes.size > this.max) {
      const oldest = this.nodes.keys().next()
      if (oldest.done) break
      this.nodes.delete(oldest.value)
    }
  }

  private node(num: number, at: number): NodeState {
    const n = this.nodes.get(num) ?? newNodeState(num, at)
    this.nodes.delete(num)
    this.nodes.set(num, n)
    this.trim()
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
    const existing = this.nodes.get(num)
    if (existing) existing.isGateway = true
    else this.node(num, at).isGateway = true
  }
}
