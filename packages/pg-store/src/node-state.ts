import {
  type DecodedPacket,
  type GatewayHearing,
  type NodeField,
  type NodeState,
  nodeIdFromNum,
  nodeNumFromId,
  type Reception,
} from '@meshtap/protocol'

const MAX_GATEWAYS = 32

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
    let n = this.nodes.get(num)
    if (n) {
      this.nodes.delete(num)
    } else {
      n = {
        num,
        id: nodeIdFromNum(num),
        telemetry: {},
        lastHeard: at,
        packets: 0,
        gateways: {},
        isGateway: false,
      }
    }
    this.nodes.set(num, n)
    this.trim()
    return n
  }

  applyPacket(p: DecodedPacket, receivedAt: number): NodeChange {
    const n = this.node(p.from >>> 0, receivedAt)
    const changed: NodeField[] = ['lastHeard', 'packets']
    n.lastHeard = Math.max(n.lastHeard, receivedAt)
    n.packets++
    const app = p.app
    switch (app?.type) {
      case 'nodeinfo':
        n.user = app.user
        changed.push('user')
        break
      case 'position':
        if (app.latitude !== undefined && app.longitude !== undefined) {
          n.position = {
            latitude: app.latitude,
            longitude: app.longitude,
            ...(app.altitude !== undefined ? { altitude: app.altitude } : {}),
            ...(app.precisionBits !== undefined ? { precisionBits: app.precisionBits } : {}),
            ...(app.radiusM !== undefined ? { radiusM: app.radiusM } : {}),
            at: receivedAt,
            from: 'position',
          }
          changed.push('position')
        }
        break
      case 'telemetry':
        if (app.variant !== 'unknown') {
          n.telemetry[app.variant] = { metrics: app.metrics, at: receivedAt }
          changed.push('telemetry')
        }
        break
      case 'mapreport':
        n.mapReport = app.mapReport
        n.isGateway = true
        changed.push('mapReport', 'isGateway')
        if (
          app.latitude !== undefined &&
          app.longitude !== undefined &&
          n.position?.from !== 'position'
        ) {
          n.position = {
            latitude: app.latitude,
            longitude: app.longitude,
            ...(app.radiusM !== undefined ? { radiusM: app.radiusM } : {}),
            at: receivedAt,
            from: 'mapreport',
          }
          changed.push('position')
        }
        break
    }
    return { node: n, changed }
  }

  applyReception(from: number, r: Reception): NodeChange {
    const n = this.node(from >>> 0, r.receivedAt)
    n.lastHeard = Math.max(n.lastHeard, r.receivedAt)
    if (r.gatewayId === undefined) return { node: n, changed: ['lastHeard'] }
    const prev = n.gateways[r.gatewayId]
    n.gateways[r.gatewayId] = {
      lastHeard: r.receivedAt,
      rxSnr: r.rxSnr,
      rxRssi: r.rxRssi,
      ...(r.hopsAway !== undefined ? { hopsAway: r.hopsAway } : {}),
      receptionClass: r.receptionClass,
      count: (prev?.count ?? 0) + 1,
    }
    if (!prev) {
      const ids = Object.keys(n.gateways)
      if (ids.length > MAX_GATEWAYS) {
        let oldest = ids[0] as string
        for (const id of ids) {
          if (
            (n.gateways[id] as GatewayHearing).lastHeard <
            (n.gateways[oldest] as GatewayHearing).lastHeard
          ) {
            oldest = id
          }
        }
        delete n.gateways[oldest]
      }
    }
    return { node: n, changed: ['lastHeard', 'gateways'] }
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
