import type { ReceptionClass, TelemetryVariant } from './packet.js'
import type { MapReportMessage, MetricsMessage, UserMessage } from './payloads.js'

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
