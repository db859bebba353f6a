import {
  type DecodedPacket,
  type GatewayHearing,
  type NodeField,
  type NodeState,
  nodeIdFromNum,
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

const MAX_GATEWAYS = 32

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
      n = {
        num,
        id: nodeIdFromNum(num),
        telemetry: {},
        lastHeard: at,
        packets: 0,
        gateways: {},
        isGateway: false,
      }
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
      const changed: NodeField[] = ['lastHeard', 'packets']
      n.lastHeard = Math.max(n.lastHeard, receivedAt)
      n.packets++
      const app = p.app
      switch (app.type) {
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
    },
    applyReception(from, r) {
      const n = node(from, r.receivedAt)
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
            )
              oldest = id
          }
          delete n.gateways[oldest]
        }
      }
      return { node: n, changed: ['lastHeard', 'gateways'] }
    },
    markGateway(gatewayId, at) {
      const num = nodeNumFromId(gatewayId)
      if (num === undefined) return
      const n = node(num, at)
      n.isGateway = true
    },
  }
}
