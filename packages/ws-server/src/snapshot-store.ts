import type {
  GatewayHearing,
  MetricsMessage,
  NodeState,
  ReceptionClass,
  WireBoundingBox,
} from '@meshtap/protocol'

/**
 * A node as a store's `listNodes` returns it (the fields of `@meshtap/protocol`'s `NodeRow` that a
 * snapshot uses).
 *
 * @example
 * const row: WsStoreNode = { num: 1, id: '!00000001', firstSeen: 0, lastHeard: 5, packets: 2, isGateway: false }
 */
export interface WsStoreNode {
  num: number
  id: string
  longName?: string
  shortName?: string
  hwModel?: string | number
  role?: string | number
  publicKey?: string
  lastHeard: number
  packets: number
  position?: {
    latitude: number
    longitude: number
    altitude?: number
    precisionBits?: number
    radiusM?: number
    at: number
    source: 'position' | 'mapreport'
  }
  deviceMetrics?: MetricsMessage & { at: number }
  hopsAway?: number
  lastGatewayId?: string
  lastSnr?: number
  lastRssi?: number
  lastReceptionClass?: ReceptionClass
  isGateway: boolean
}

/**
 * A store a snapshot can read nodes from: any store with the `listNodes` query (the
 * `StoreQueries` capability of `@meshtap/protocol`). Without it, snapshots come from the source's
 * cache only.
 *
 * @example
 * createWsServer({ server, source: ingest, store: createSqliteStore({ path: 'mesh.db' }) })
 */
export interface WsSnapshotStore {
  listNodes?(query?: {
    limit?: number
    cursor?: string
    since?: number
    bbox?: WireBoundingBox
  }): Promise<{ items: WsStoreNode[]; nextCursor?: string }>
}

/** A store row as a {@link NodeState} (what the store keeps of it). @internal */
export function nodeStateFromRow(row: WsStoreNode): NodeState {
  const n: NodeState = {
    num: row.num >>> 0,
    id: row.id,
    telemetry: {},
    lastHeard: row.lastHeard,
    packets: row.packets,
    gateways: {},
    isGateway: row.isGateway,
  }
  if (row.longName !== undefined || row.shortName !== undefined || row.publicKey !== undefined) {
    n.user = { id: row.id }
    if (row.longName !== undefined) n.user.longName = row.longName
    if (row.shortName !== undefined) n.user.shortName = row.shortName
    if (row.hwModel !== undefined) n.user.hwModel = row.hwModel
    if (row.role !== undefined) n.user.role = row.role
    if (row.publicKey !== undefined) n.user.publicKey = row.publicKey
  }
  const p = row.position
  if (p) {
    n.position = { latitude: p.latitude, longitude: p.longitude, at: p.at, from: p.source }
    if (p.altitude !== undefined) n.position.altitude = p.altitude
    if (p.precisionBits !== undefined) n.position.precisionBits = p.precisionBits
    if (p.radiusM !== undefined) n.position.radiusM = p.radiusM
  }
  if (row.deviceMetrics) {
    const { at, ...metrics } = row.deviceMetrics
    n.telemetry.device = { metrics, at }
  }
  if (row.lastGatewayId !== undefined) {
    const g: GatewayHearing = {
      lastHeard: row.lastHeard,
      rxSnr: row.lastSnr ?? 0,
      rxRssi: row.lastRssi ?? 0,
      receptionClass: row.lastReceptionClass ?? 'unknown',
      count: 1,
    }
    if (row.hopsAway !== undefined) g.hopsAway = row.hopsAway
    n.gateways[row.lastGatewayId] = g
  }
  return n
}
