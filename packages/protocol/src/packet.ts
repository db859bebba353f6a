import type { DecodeError } from './decode-error.js'
import type {
  MapReportMessage,
  MetricsMessage,
  NeighborInfoMessage,
  OpenMessage,
  PaxcountMessage,
  PositionMessage,
  RouteDiscoveryMessage,
  RoutingMessage,
  StoreAndForwardMessage,
  TelemetryMessage,
  UserMessage,
  WaypointMessage,
} from './payloads.js'
import type { PortNumName } from './portnums.js'

/** What the bytes were: the same words `meshtap decode` takes in its `kind` field. */
export type PacketKind = 'envelope' | 'mapreport' | 'meshpacket' | 'json-uplink' | 'data'

/**
 * How a gateway came to publish a copy of a packet:
 * - `self`: the gateway is the sender (its own packet, no radio metadata);
 * - `injected`: no RSSI and no SNR, so it did not come over the radio (MQTT/API/UDP);
 * - `direct`: heard straight from the sender (`hopStart == hopLimit`, both known);
 * - `relayed`: heard through at least one relay;
 * - `unknown`: the hop fields do not say (firmware < 2.3 sends no `hopStart`; many brokers strip `hopLimit`).
 */
export type ReceptionClass = 'self' | 'injected' | 'direct' | 'relayed' | 'unknown'

/** The radio/MQTT header of a packet as one gateway published it. All ids are uint32. */
export interface PacketHeader {
  /** Sender node number. */
  from: number
  /** Destination node number; `0xffffffff` is broadcast. */
  to: number
  /** Packet id, unique per sender for a few minutes. Map reports use 0. */
  id: number
  /** Sender as `!xxxxxxxx`. */
  fromId: string
  /** Destination as `!xxxxxxxx` (`!ffffffff` for broadcast). */
  toId: string
  /** Encrypted packets: the channel hash (0–255). Decoded packets: the gateway's local channel index. */
  channel: number
  /** Hops left when the gateway heard it (0 when not sent). */
  hopLimit: number
  /** Hop limit the sender started with (0 = unknown, firmware < 2.3). */
  hopStart: number
  wantAck: boolean
  /** Set when the packet entered the mesh from MQTT. */
  viaMqtt: boolean
  /** Gateway clock at reception, Unix seconds (0 = gateway had no time). */
  rxTime: number
  /** Gateway SNR in dB (0 for its own packets). */
  rxSnr: number
  /** Gateway RSSI in dBm (0 for its own packets). */
  rxRssi: number
  /** Priority name (e.g. `RELIABLE`), when set. */
  priority?: string
  /** Last byte of the next hop's node number (next-hop routing), when set. */
  nextHop?: number
  /** Last byte of the node that relayed it to the gateway, when set. */
  relayNode?: number
  /** Set on PKI direct messages the gateway could not open. */
  pkiEncrypted?: boolean
  /** Sender's public key carried with a PKI packet, base64. */
  publicKey?: string
  /** How the packet reached the gateway (e.g. `TRANSPORT_LORA`), when set. */
  transportMechanism?: string
  /** Whether the payload was encrypted on the wire. */
  encrypted: boolean
}

/** Where and how one copy of a packet was received: the envelope and topic around the header. */
export interface EnvelopeInfo {
  /** MQTT topic, when known. */
  topic?: string
  /** Topic root before `/2/` (e.g. `msh/US/CA`), when the topic is known. */
  root?: string
  /** Channel name from the envelope (or topic): `LongFast`, `PKI`, … */
  channelId?: string
  /** Gateway that published the copy, `!xxxxxxxx`. */
  gatewayId?: string
}

/** The `Data` layer: port, reply/request links, flags. */
export interface DataInfo {
  /** Application port number. */
  portnum: number
  /** Port name, e.g. `POSITION_APP`; absent for numbers no firmware has named. */
  portnumName?: PortNumName
  wantResponse?: boolean
  dest?: number
  source?: number
  /** The packet this one answers (ACKs, traceroute replies). */
  requestId?: number
  /** The message this one replies or reacts to. */
  replyId?: number
  /** Non-zero: a tapback reaction (a Unicode code point) to `replyId`. */
  emoji?: number
  /** Raw `Data.bitfield` (firmware ≥ 2.5): bit 0 OK-to-MQTT, bit 1 want-response. */
  bitfield?: number
  /** The sender's OK-to-MQTT flag; `undefined` when the sender's firmware does not send it. */
  okToMqtt?: boolean
  /** The `Data.payload` bytes, base64 (the app message before decoding). */
  payload: string
}

/** A hop of a traceroute with the SNR at which it was heard. */
export interface TracerouteHop {
  /** Node number; `0xffffffff` for a node that relayed but could not decrypt. */
  num: number
  /** `!xxxxxxxx` */
  id: string
  /** True for the `0xffffffff` placeholder. */
  unknown: boolean
}

/** Text (TEXT_MESSAGE_APP, ALERT_APP, DETECTION_SENSOR_APP, RANGE_TEST_APP, REPLY_APP). */
export interface TextPayload {
  type: 'text' | 'alert' | 'detection' | 'rangetest' | 'reply'
  text: string
  /** A tapback reaction to `replyId` (`emoji` non-zero). */
  isReaction: boolean
  /** The message this one replies or reacts to. */
  replyId?: number
  /** Range test sequence number (`seq N`). */
  seq?: number
}

/** A position in degrees, with the area its precision allows. */
export interface PositionPayload {
  type: 'position'
  position: PositionMessage
  /** Degrees; absent when there is no fix (missing, or 0,0). */
  latitude?: number
  longitude?: number
  /** Metres above mean sea level. */
  altitude?: number
  /** 32 = exact; 10–19 typical for shared positions; 0 = not shared. */
  precisionBits?: number
  /** Radius of the uncertainty circle in metres, for precision below 32 bits. */
  radiusM?: number
}

/** A node's identity (NODEINFO_APP). */
export interface NodeInfoPayload {
  type: 'nodeinfo'
  user: UserMessage
}

/** An ACK/NAK or route discovery (ROUTING_APP). */
export interface RoutingPayload {
  type: 'routing'
  routing: RoutingMessage
  /** `NONE` for a plain ACK. */
  errorReason?: string
}

/** Which metrics group a telemetry packet carries. */
export type TelemetryVariant =
  | 'device'
  | 'environment'
  | 'airQuality'
  | 'power'
  | 'localStats'
  | 'health'
  | 'host'
  | 'unknown'

/** A telemetry report (TELEMETRY_APP). */
export interface TelemetryPayload {
  type: 'telemetry'
  telemetry: TelemetryMessage
  variant: TelemetryVariant
  /** The metrics of that group (empty for an unknown variant). */
  metrics: MetricsMessage
}

/** A traceroute request or reply (TRACEROUTE_APP), SNRs in dB. */
export interface TraceroutePayload {
  type: 'traceroute'
  routeDiscovery: RouteDiscoveryMessage
  /** Hops towards the destination. */
  route: TracerouteHop[]
  /** SNR in dB of each hop towards the destination (one more than `route`); `null` = unknown. */
  snrTowardsDb: (number | null)[]
  /** Hops on the way back (firmware ≥ 2.5 replies). */
  routeBack: TracerouteHop[]
  /** SNR in dB of each hop on the way back; `null` = unknown. */
  snrBackDb: (number | null)[]
}

/** Neighbours a node reports hearing (NEIGHBORINFO_APP). */
export interface NeighborInfoPayload {
  type: 'neighborinfo'
  neighborInfo: NeighborInfoMessage
}

/** A node's periodic map report (MAP_REPORT_APP). */
export interface MapReportPayload {
  type: 'mapreport'
  mapReport: MapReportMessage
  latitude?: number
  longitude?: number
  radiusM?: number
}

/** A waypoint (WAYPOINT_APP). */
export interface WaypointPayload {
  type: 'waypoint'
  waypoint: WaypointMessage
  latitude?: number
  longitude?: number
}

/** Store-and-forward traffic (STORE_FORWARD_APP). */
export interface StoreForwardPayload {
  type: 'storeforward'
  storeForward: StoreAndForwardMessage
}

/** A people counter report (PAXCOUNTER_APP). */
export interface PaxcounterPayload {
  type: 'paxcounter'
  paxcount: PaxcountMessage
}

/**
 * Anything else: the payload bytes, and the message in canonical JSON when meshtap has a schema for
 * the port (admin, key verification, node status…).
 */
export interface OpaquePayload {
  type: 'opaque'
  /** base64 */
  bytes: string
  message?: OpenMessage
}

/** The decoded application payload, one shape per app, discriminated by `type`. */
export type AppPayload =
  | TextPayload
  | PositionPayload
  | NodeInfoPayload
  | RoutingPayload
  | TelemetryPayload
  | TraceroutePayload
  | NeighborInfoPayload
  | MapReportPayload
  | WaypointPayload
  | StoreForwardPayload
  | PaxcounterPayload
  | OpaquePayload

/** Values derived from the header that are only valid under conditions; see each field. */
export interface DerivedInfo {
  /** `hopStart − hopLimit`, only where both are known and consistent. */
  hopsAway?: number
  /** How this copy reached the gateway. */
  receptionClass: ReceptionClass
}

/** A fully decoded packet: one gateway's copy, with its envelope, header, `Data` and app payload. */
export interface DecodedPacket extends EnvelopeInfo, PacketHeader, DataInfo, DerivedInfo {
  kind: PacketKind
  /** The key-ring entry that decrypted it (its channel name), for encrypted packets. */
  keyName?: string
  /** The decoded app payload. */
  app: AppPayload
  /** The bytes behind the packet, when the codec was created with `includeRaw`. */
  raw?: RawBytes
}

/** The undecoded forms of a packet, for debugging, re-decoding and byte-exact tools. */
export interface RawBytes {
  /** The encrypted payload as it was on the wire, base64 (encrypted packets only). */
  ciphertext?: string
  /** The `Data` message bytes (after decryption), base64. */
  data?: string
  /** For legacy JSON uplinks: the firmware's JSON object exactly as received. */
  uplink?: Record<string, unknown>
}

/**
 * What is known of a packet that could not be decoded: as much of the envelope and header as could be
 * read, and for encrypted packets the ciphertext (base64), so it can be kept and decrypted later.
 */
export interface PartialPacket extends EnvelopeInfo, Partial<PacketHeader>, Partial<DerivedInfo> {
  kind: PacketKind
  /** Ciphertext, base64, when the packet was encrypted and not opened. */
  ciphertext?: string
  /** Port number, when the `Data` layer was read but the payload failed. */
  portnum?: number
  portnumName?: PortNumName
}

/** A failed decode: why, and what was known. */
export interface DecodeFailure {
  error: DecodeError
  packet: PartialPacket
}
