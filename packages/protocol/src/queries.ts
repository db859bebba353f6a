import type {
  DecodedPacket,
  ReceptionClass,
  TelemetryVariant,
  TextPayload,
  TracerouteHop,
} from './packet.js'
import type { MapReportMessage, MetricsMessage, UserMessage } from './payloads.js'
import type { PacketKey, Reception, Store } from './store.js'

/**
 * A node, by number (`4202035136`) or by id (`'!fa75f7c0'`).
 *
 * @example
 * await store.getNode('!fa75f7c0')
 */
export type NodeRef = number | string

/**
 * One page of a list. Pass `nextCursor` back as `cursor` (with the same filters) for the next page;
 * it is absent on the last page. Cursors are opaque strings: keyset positions, not offsets, so rows
 * written between two calls never make a page repeat or skip a row.
 *
 * @example
 * let page = await store.listPositions({ node: '!fa75f7c0' })
 * while (page.nextCursor) page = await store.listPositions({ node: '!fa75f7c0', cursor: page.nextCursor })
 */
export interface Page<T> {
  items: T[]
  nextCursor?: string
}

/**
 * Paging options every list takes.
 *
 * @example
 * const q: PageQuery = { limit: 50 }
 */
export interface PageQuery {
  /**
   * Rows per page. Stores cap it (1000 for the stores meshtap ships).
   * @default 100
   */
  limit?: number
  /** `nextCursor` of the previous page. The other filters must be the same as for that page. */
  cursor?: string
}

/**
 * A time window over when meshtap received the rows (Unix milliseconds), and the order.
 *
 * @example
 * const lastDay: TimeQuery = { since: Date.now() - 86_400_000 }
 */
export interface TimeQuery extends PageQuery {
  /** Inclusive lower bound, Unix ms. */
  since?: number
  /** Exclusive upper bound, Unix ms. */
  until?: number
  /**
   * `desc` is newest first.
   * @default 'desc'
   */
  order?: 'asc' | 'desc'
}

/**
 * A latitude/longitude box in degrees. A box with `west > east` crosses the antimeridian.
 *
 * @example
 * const bayArea: BoundingBox = { south: 37.2, west: -122.6, north: 38.0, east: -121.7 }
 */
export interface BoundingBox {
  south: number
  west: number
  north: number
  east: number
}

/**
 * Filters shared by the packet-derived lists.
 *
 * @example
 * const q: PacketFilter = { node: '!fa75f7c0', gateway: '!a0c0ffee', channel: 'LongFast' }
 */
export interface PacketFilter {
  /** The sender. */
  node?: NodeRef
  /** Only packets this gateway heard (it published a copy), `!xxxxxxxx`. */
  gateway?: string
  /** Channel name of the first copy (`LongFast`, …). */
  channel?: string
}

/**
 * The node list: ordered by when each node was last heard, newest first.
 *
 * @example
 * await store.listNodes({ since: Date.now() - 3_600_000, bbox })
 */
export interface NodeListQuery extends PageQuery {
  /** Only nodes heard at or after this time (Unix ms). */
  since?: number
  /** Only nodes whose latest position lies in the box. */
  bbox?: BoundingBox
  /** Case-insensitive substring of the long or short name, or a `!xxxxxxxx` id prefix. */
  search?: string
  /** Only nodes that published to MQTT as gateways. */
  gateways?: boolean
}

/**
 * Positions (POSITION_APP packets with a fix).
 *
 * @example
 * await store.listPositions({ node: 0x1234, since: Date.now() - 86_400_000 })
 */
export interface PositionQuery extends TimeQuery, PacketFilter {
  bbox?: BoundingBox
}

/**
 * Telemetry reports.
 *
 * @example
 * await store.listTelemetry({ node: '!fa75f7c0', variant: 'environment' })
 */
export interface TelemetryQuery extends TimeQuery, PacketFilter {
  variant?: TelemetryVariant
}

/**
 * Text messages (text, alert, detection sensor, range test, reply ports).
 *
 * @example
 * await store.listMessages({ channel: 'LongFast', direct: false })
 */
export interface MessageQuery extends TimeQuery, PacketFilter {
  /** The destination. */
  to?: NodeRef
  /** `true`: direct messages only; `false`: channel broadcasts only. */
  direct?: boolean
}

/**
 * Logical packets (decoded ones; see the store's undecoded packets for the rest).
 *
 * @example
 * await store.listPackets({ portnum: [PortNum.TEXT_MESSAGE_APP, PortNum.POSITION_APP] })
 */
export interface PacketQuery extends TimeQuery, PacketFilter {
  to?: NodeRef
  /** One port number or several. */
  portnum?: number | readonly number[]
}

/**
 * Receptions (every gateway's copy), by when meshtap received each copy.
 *
 * @example
 * await store.listReceptions({ gateway: '!a0c0ffee', receptionClass: 'direct' })
 */
export interface ReceptionQuery extends TimeQuery {
  /** The copies of one packet. */
  packetKey?: PacketKey
  /** The sender of the packet. */
  node?: NodeRef
  gateway?: string
  /** Channel name of the copy. */
  channel?: string
  /** Port of the decoded packet (copies of undecoded packets never match). */
  portnum?: number | readonly number[]
  receptionClass?: ReceptionClass
}

/**
 * Traceroutes, one row per gateway copy (gateways rewrite them).
 *
 * @example
 * await store.listTraceroutes({ node: '!fa75f7c0' })
 */
export interface TracerouteQuery extends TimeQuery {
  /** The sender or the destination. */
  node?: NodeRef
  gateway?: string
}

/**
 * Per-gateway statistics over a window, ordered by gateway id.
 *
 * @example
 * await store.gatewayStats({ since: Date.now() - 86_400_000 })
 */
export interface GatewayStatsQuery extends PageQuery {
  /**
   * Inclusive, Unix ms.
   * @default 24 hours before now
   */
  since?: number
  /** Exclusive, Unix ms. */
  until?: number
  /** One gateway only. */
  gateway?: string
}

/**
 * The link graph: who hears whom.
 *
 * @example
 * await store.links({ node: '!fa75f7c0', since: Date.now() - 86_400_000 })
 */
export interface LinkQuery extends PageQuery {
  /** Links seen at or after this time (Unix ms). @default 7 days before now */
  since?: number
  /** Links touching this node (either end). */
  node?: NodeRef
  /** Only inferred links (`direct`) or only reported ones (`neighborinfo`). */
  source?: LinkSource
}

/**
 * A position fix as stored.
 *
 * @example
 * const { latitude, longitude, radiusM } = row
 */
export interface NodePositionRow {
  latitude: number
  longitude: number
  /** Metres above mean sea level. */
  altitude?: number
  precisionBits?: number
  /** Radius of the precision circle in metres (absent at full precision). */
  radiusM?: number
  /** Unix ms when meshtap received it. */
  at: number
  /** Whether it came from a position packet or a map report (coarser). */
  source: 'position' | 'mapreport'
}

/**
 * One node in the node list: its latest known state.
 *
 * @example
 * for (const n of (await store.listNodes()).items) console.log(n.id, n.longName, n.lastHeard)
 */
export interface NodeRow {
  num: number
  /** `!xxxxxxxx` */
  id: string
  longName?: string
  shortName?: string
  hwModel?: string | number
  role?: string | number
  /** X25519 public key, base64. */
  publicKey?: string
  /** Unix ms of the first packet or copy from this node. */
  firstSeen: number
  /** Unix ms of the latest packet or copy from this node. */
  lastHeard: number
  /** Logical packets stored from this node (within retention). */
  packets: number
  position?: NodePositionRow
  /** Latest device metrics (battery, voltage, utilisation, uptime) with their time. */
  deviceMetrics?: MetricsMessage & { at: number }
  /** Hops between the node and the gateways in its latest reception. */
  hopsAway?: number
  /** The gateway of the latest reception, with its signal. */
  lastGatewayId?: string
  lastSnr?: number
  lastRssi?: number
  lastReceptionClass?: ReceptionClass
  /** Published to MQTT as a gateway. */
  isGateway: boolean
  /** From the latest map report. */
  firmwareVersion?: string
  region?: string | number
  modemPreset?: string | number
}

/**
 * One node with everything the store knows about its current state.
 *
 * @example
 * const node = await store.getNode('!fa75f7c0')
 * node?.telemetry.environment?.metrics.temperature
 */
export interface NodeDetail extends NodeRow {
  /** The latest node info. */
  user?: UserMessage
  /** The latest map report. */
  mapReport?: MapReportMessage & { at: number }
  /** The latest report of each telemetry variant. */
  telemetry: Partial<Record<TelemetryVariant, { metrics: MetricsMessage; at: number }>>
  /** Links touching this node (both directions, both sources), most recent first. */
  links: LinkRow[]
}

/**
 * A position report.
 *
 * @example
 * const line = rows.items.map((p) => [p.longitude, p.latitude])
 */
export interface PositionRow extends Omit<NodePositionRow, 'source'> {
  key: PacketKey
  node: number
  nodeId: string
  /** The node's own timestamp (Unix s), when it sent one. */
  time?: number
  satsInView?: number
  /** m/s */
  groundSpeed?: number
  /** Degrees. */
  groundTrack?: number
  channel?: string
  /** The gateway of the first copy. */
  gatewayId?: string
}

/**
 * A telemetry report: the metrics of one variant, as numbers by their firmware names.
 *
 * @example
 * rows.items.map((t) => t.metrics.batteryLevel)
 */
export interface TelemetryRow {
  key: PacketKey
  node: number
  nodeId: string
  /** Unix ms when meshtap received it. */
  at: number
  /** The node's own timestamp (Unix s), when it sent one. */
  time?: number
  variant: TelemetryVariant
  metrics: MetricsMessage
  channel?: string
  gatewayId?: string
}

/**
 * A text message.
 *
 * @example
 * rows.items.map((m) => `${m.fromId}: ${m.text}`)
 */
export interface MessageRow {
  key: PacketKey
  /** The packet id (what replies and reactions refer to). */
  id: number
  from: number
  fromId: string
  to: number
  toId: string
  /** Unix ms when meshtap received it. */
  at: number
  /** Gateway clock of the first copy, Unix s (0 = unknown). */
  rxTime: number
  channel?: string
  /** Sent to one node rather than broadcast on the channel. */
  direct: boolean
  type: TextPayload['type']
  text: string
  /** The message this one answers or reacts to. */
  replyId?: number
  /** The reaction's Unicode code point, for tapbacks. */
  emoji?: number
  isReaction: boolean
  hopsAway?: number
  gatewayId?: string
}

/**
 * A logical packet with its decoded content.
 *
 * @example
 * rows.items.map((p) => `${p.fromId} ${p.portnumName} heard by ${p.receptions}`)
 */
export interface PacketRow {
  key: PacketKey
  id: number
  from: number
  fromId: string
  to: number
  toId: string
  portnum: number
  portnumName?: string
  channel?: string
  /** The gateway of the first copy. */
  gatewayId?: string
  /** Unix ms when meshtap received the first copy. */
  at: number
  rxTime: number
  hopsAway?: number
  /** How many gateway copies are stored. */
  receptions: number
  /** The first copy, fully decoded. */
  packet: DecodedPacket
}

/**
 * One gateway copy, with the sender and port of its packet when known.
 *
 * @example
 * rows.items.map((r) => [r.gatewayId, r.rxSnr, r.rxRssi])
 */
export interface ReceptionRow extends Reception {
  from?: number
  fromId?: string
  /** Absent for copies of packets that are not decoded. */
  portnum?: number
}

/**
 * A traceroute as one gateway published it.
 *
 * @example
 * row.route.map((h) => h.id).join(' → ')
 */
export interface TracerouteRow {
  key: PacketKey
  from: number
  fromId: string
  to: number
  toId: string
  /** Unix ms when meshtap received this copy. */
  at: number
  gatewayId?: string
  /** A reply (it answers `requestId`) rather than a request. */
  isReply: boolean
  requestId?: number
  route: TracerouteHop[]
  snrTowardsDb: (number | null)[]
  routeBack: TracerouteHop[]
  snrBackDb: (number | null)[]
}

/**
 * What one gateway heard in the window.
 *
 * @example
 * rows.items.map((g) => `${g.gatewayId}: ${g.packets} packets from ${g.nodes} nodes, median SNR ${g.medianSnr}`)
 */
export interface GatewayStatsRow {
  gatewayId: string
  /** The gateway's node number, when its id is a node id. */
  num?: number
  /** Packets it published a copy of. */
  packets: number
  /** Distinct senders of those packets. */
  nodes: number
  /** Copies heard straight from the sender (hop 0). */
  direct: number
  /** Median SNR (dB) and RSSI (dBm) of its radio copies (own and injected packets excluded). */
  medianSnr?: number
  medianRssi?: number
  /** Unix ms of its first and latest copy in the window. */
  firstHeard: number
  lastHeard: number
}

/**
 * How a link is known: `direct` = a gateway heard the sender at hop 0 (inferred from receptions);
 * `neighborinfo` = a node reported hearing a neighbour (NEIGHBORINFO_APP).
 *
 * @example
 * const s: LinkSource = 'direct'
 */
export type LinkSource = 'direct' | 'neighborinfo'

/**
 * An edge of the link graph: `to` heard `from` over the radio.
 *
 * @example
 * rows.items.map((l) => `${l.fromId} → ${l.toId} (${l.source}, SNR ${l.snr})`)
 */
export interface LinkRow {
  /** The transmitter. */
  from: number
  fromId: string
  /** The receiver (the gateway, or the reporting node). */
  to: number
  toId: string
  source: LinkSource
  /** Receptions (direct) or reports (neighborinfo) behind the edge. */
  count: number
  /** Unix ms. */
  firstSeen: number
  lastSeen: number
  /** Latest SNR in dB. */
  snr?: number
  /** Latest RSSI in dBm (direct links only). */
  rssi?: number
}

/**
 * Read queries a store may offer besides the {@link Store} contract (an optional capability, like
 * `init`): the lists a dashboard needs, each with keyset pagination. Every method resolves to plain
 * JSON-friendly rows (numbers and strings; no `bigint`, no `Uint8Array`). Times are Unix
 * milliseconds of when meshtap received the data, unless a field says otherwise.
 *
 * @example
 * const store: Store & StoreQueries = createSqliteStore({ path: 'mesh.db' })
 * const { items } = await store.listNodes({ since: Date.now() - 3_600_000 })
 */
export interface StoreQueries {
  /** Nodes with their latest state, last heard first. */
  listNodes(query?: NodeListQuery): Promise<Page<NodeRow>>
  /** One node's detail, or `undefined` when the store never heard of it. */
  getNode(node: NodeRef): Promise<NodeDetail | undefined>
  listPositions(query?: PositionQuery): Promise<Page<PositionRow>>
  listTelemetry(query?: TelemetryQuery): Promise<Page<TelemetryRow>>
  listMessages(query?: MessageQuery): Promise<Page<MessageRow>>
  listPackets(query?: PacketQuery): Promise<Page<PacketRow>>
  listReceptions(query?: ReceptionQuery): Promise<Page<ReceptionRow>>
  listTraceroutes(query?: TracerouteQuery): Promise<Page<TracerouteRow>>
  gatewayStats(query?: GatewayStatsQuery): Promise<Page<GatewayStatsRow>>
  /** The link graph's edges. */
  links(query?: LinkQuery): Promise<Page<LinkRow>>
}

/**
 * A store that also answers {@link StoreQueries}.
 *
 * @example
 * function serve(store: QueryableStore) {}
 */
export type QueryableStore = Store & StoreQueries
