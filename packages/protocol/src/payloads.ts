/**
 * The application messages, in protobuf's canonical JSON form as meshtap emits them: lowerCamelCase
 * names, enum values as names (or numbers when newer than meshtap's schemas), 64-bit integers as
 * strings, bytes as base64, fields left at their default value omitted. Fields newer than these
 * declarations still come through (every shape is open).
 * @module
 */

/** Fields present in every canonical JSON message that this version does not name. */
export interface OpenMessage {
  readonly [field: string]: unknown
}

/** `Position` (POSITION_APP). Coordinates are integers × 1e-7; see {@link PositionPayload} for degrees. */
export interface PositionMessage extends OpenMessage {
  latitudeI?: number
  longitudeI?: number
  altitude?: number
  time?: number
  locationSource?: string | number
  altitudeSource?: string | number
  timestamp?: number
  altitudeHae?: number
  altitudeGeoidalSeparation?: number
  PDOP?: number
  HDOP?: number
  VDOP?: number
  gpsAccuracy?: number
  groundSpeed?: number
  groundTrack?: number
  fixQuality?: number
  fixType?: number
  satsInView?: number
  sensorId?: number
  nextUpdate?: number
  seqNumber?: number
  precisionBits?: number
}

/** `User` (NODEINFO_APP): a node's identity. */
export interface UserMessage extends OpenMessage {
  id?: string
  longName?: string
  shortName?: string
  /** Deprecated by firmware; base64. */
  macaddr?: string
  hwModel?: string | number
  isLicensed?: boolean
  role?: string | number
  /** X25519 public key, base64 (32 bytes). */
  publicKey?: string
  isUnmessagable?: boolean
}

/** `Routing` (ROUTING_APP): route discovery or an ACK/NAK (`errorReason`). */
export interface RoutingMessage extends OpenMessage {
  routeRequest?: RouteDiscoveryMessage
  routeReply?: RouteDiscoveryMessage
  errorReason?: string | number
}

/** `RouteDiscovery` (TRACEROUTE_APP). SNRs are dB × 4; −128 means unknown. */
export interface RouteDiscoveryMessage extends OpenMessage {
  route?: number[]
  snrTowards?: number[]
  routeBack?: number[]
  snrBack?: number[]
}

/** One neighbour in {@link NeighborInfoMessage}. */
export interface NeighborMessage extends OpenMessage {
  nodeId?: number
  snr?: number
  lastRxTime?: number
  nodeBroadcastIntervalSecs?: number
}

/** `NeighborInfo` (NEIGHBORINFO_APP). */
export interface NeighborInfoMessage extends OpenMessage {
  nodeId?: number
  lastSentById?: number
  nodeBroadcastIntervalSecs?: number
  neighbors?: NeighborMessage[]
}

/** `MapReport` (MAP_REPORT_APP, on `<root>/2/map/`). */
export interface MapReportMessage extends OpenMessage {
  longName?: string
  shortName?: string
  role?: string | number
  hwModel?: string | number
  firmwareVersion?: string
  region?: string | number
  modemPreset?: string | number
  hasDefaultChannel?: boolean
  latitudeI?: number
  longitudeI?: number
  altitude?: number
  positionPrecision?: number
  numOnlineLocalNodes?: number
  hasOptedReportLocation?: boolean
}

/** `Waypoint` (WAYPOINT_APP). */
export interface WaypointMessage extends OpenMessage {
  id?: number
  latitudeI?: number
  longitudeI?: number
  expire?: number
  lockedTo?: number
  name?: string
  description?: string
  icon?: number
}

/** A group of telemetry metrics (all numbers; names as in the firmware's schema, camelCase). */
export interface MetricsMessage extends OpenMessage {
  readonly [metric: string]: unknown
}

/** `Telemetry` (TELEMETRY_APP): a time and exactly one metrics group. */
export interface TelemetryMessage extends OpenMessage {
  time?: number
  deviceMetrics?: MetricsMessage
  environmentMetrics?: MetricsMessage
  airQualityMetrics?: MetricsMessage
  powerMetrics?: MetricsMessage
  localStats?: MetricsMessage
  healthMetrics?: MetricsMessage
  hostMetrics?: MetricsMessage
}

/** `StoreAndForward` (STORE_FORWARD_APP). */
export interface StoreAndForwardMessage extends OpenMessage {
  rr?: string | number
  stats?: OpenMessage
  history?: OpenMessage
  heartbeat?: OpenMessage
  /** base64 */
  text?: string
}

/** `Paxcount` (PAXCOUNTER_APP). */
export interface PaxcountMessage extends OpenMessage {
  wifi?: number
  ble?: number
  uptime?: number
}
