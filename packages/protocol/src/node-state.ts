import { nodeIdFromNum } from './node-id.js'
import type { DecodedPacket, ReceptionClass, TelemetryVariant } from './packet.js'
import type { MapReportMessage, MetricsMessage, UserMessage } from './payloads.js'
import type { Reception } from './store.js'

/** How one gateway last heard a node. */
export interface GatewayHearing {
  /** Unix ms. */
  lastHeard: number
  rxSnr: number
  rxRssi: number
  hopsAway?: number
  receptionClass: ReceptionClass
  /** Copies this gateway published for the node. */
  count: number
}

/** A node's last known position. */
export interface NodePosition {
  latitude: number
  longitude: number
  altitude?: number
  precisionBits?: number
  radiusM?: number
  /** Unix ms when meshtap received it. */
  at: number
  /** Where it came from. */
  from: 'position' | 'mapreport'
}

/** The latest state of one node, for instant snapshots. */
export interface NodeState {
  num: number
  /** `!xxxxxxxx` */
  id: string
  /** Latest node info. */
  user?: UserMessage
  position?: NodePosition
  /** Latest telemetry of each kind, with when it was received (Unix ms). */
  telemetry: Partial<Record<TelemetryVariant, { metrics: MetricsMessage; at: number }>>
  /** Latest map report (gateways only). */
  mapReport?: MapReportMessage
  /** Unix ms of the latest packet or copy from this node. */
  lastHeard: number
  /** Logical packets seen from this node. */
  packets: number
  /** Gateways that heard it, by gateway id (the most recent 32). */
  gateways: Record<string, GatewayHearing>
  /** Whether this node has published to MQTT as a gateway. */
  isGateway: boolean
}

/** The fields of {@link NodeState} an update changed. */
export type NodeField = Exclude<keyof NodeState, 'num' | 'id'>

/** How many gateways a {@link NodeState} remembers (the most recently heard). */
export const MAX_NODE_GATEWAYS = 32

/** A fresh state for a node first heard at `at` (Unix ms). */
export function newNodeState(num: number, at: number): NodeState {
  return {
    num,
    id: nodeIdFromNum(num),
    telemetry: {},
    lastHeard: at,
    packets: 0,
    gateways: {},
    isGateway: false,
  }
}

/**
 * Applies a decoded logical packet from the node to its state (in place) and returns the fields
 * that changed. The one reducer behind every node cache (an ingest's hot cache, a change feed's).
 *
 * @example
 * const changed = applyPacketToNode(state, packet, Date.now()) // ['lastHeard', 'packets', 'position']
 */
export function applyPacketToNode(n: NodeState, p: DecodedPacket, receivedAt: number): NodeField[] {
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
  return changed
}

/**
 * Applies one reception of the node's packets to its state (in place): last heard, and how the
 * gateway heard it (the {@link MAX_NODE_GATEWAYS} most recent gateways are kept). Returns the fields
 * that changed.
 *
 * @example
 * applyReceptionToNode(state, reception) // ['lastHeard', 'gateways']
 */
export function applyReceptionToNode(n: NodeState, r: Reception): NodeField[] {
  n.lastHeard = Math.max(n.lastHeard, r.receivedAt)
  if (r.gatewayId === undefined) return ['lastHeard']
  const prev = n.gateways[r.gatewayId]
  if (prev !== undefined && (prev.hopsAway === undefined) === (r.hopsAway === undefined)) {
    // The gateway heard the node before: its hearing is updated in place (same fields, same
    // order as a rebuilt one), like the rest of the state.
    prev.lastHeard = r.receivedAt
    prev.rxSnr = r.rxSnr
    prev.rxRssi = r.rxRssi
    if (r.hopsAway !== undefined) prev.hopsAway = r.hopsAway
    prev.receptionClass = r.receptionClass
    prev.count++
    return ['lastHeard', 'gateways']
  }
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
    if (ids.length > MAX_NODE_GATEWAYS) {
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
  return ['lastHeard', 'gateways']
}
