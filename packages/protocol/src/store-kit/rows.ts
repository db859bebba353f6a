import type {
  GatewayStatsRow,
  LinkRow,
  LinkSource,
  MapReportMessage,
  MessageRow,
  MetricsMessage,
  NodeDetail,
  NodeRow,
  PacketRow,
  PositionRow,
  Reception,
  ReceptionRow,
  StoredPacket,
  TelemetryRow,
  TelemetryVariant,
  TextPayload,
  TracerouteRow,
  UserMessage,
} from '../index.js'
import { nodeIdFromNum, portnumName } from '../index.js'
import { CLASSES, joinMetrics } from './extract.js'
import { unpackPacket } from './packing.js'
import type { Row } from './paging.js'

/**
 * The column values the two databases hand back differently; everything else (numbers, text,
 * NULL) reads the same. @internal
 */
export interface ColumnDialect {
  /** A boolean column (SQLite: `0`/`1`; PostgreSQL: `false`/`true`). */
  flag(value: unknown): boolean
  /**
   * A column holding a string or a number (`region`, `modem_preset`): SQLite keeps the value as
   * it came, PostgreSQL its JSON text. `undefined` for NULL.
   */
  scalar(value: unknown): string | number | undefined
}

/**
 * Copies the columns of `r` that are not NULL onto `out`: `[property, column]` pairs, in order.
 */
function copyPresent<T extends object>(
  out: T,
  r: Row,
  pairs: readonly (readonly [keyof T & string, string])[],
): T {
  for (const [key, column] of pairs) {
    const v = r[column]
    if (v !== null) (out as Record<string, unknown>)[key] = v
  }
  return out
}

/** A JSON text column's value, or undefined for NULL. */
function parse<T>(json: unknown): T | undefined {
  return typeof json === 'string' ? (JSON.parse(json) as T) : undefined
}

/**
 * A node from a `nodes` row joined with the id of its last gateway (`last_gateway_id`, which may
 * be absent).
 *
 * @example
 * const nodes = rows.map((r) => nodeRow(r, dialect))
 * @internal
 */
export function nodeRow(r: Row, d: ColumnDialect): NodeRow {
  const num = r.num as number
  const user = parse<UserMessage>(r.user_json)
  const n: NodeRow = {
    num,
    id: nodeIdFromNum(num),
    firstSeen: r.first_seen as number,
    lastHeard: r.last_heard as number,
    packets: r.packets as number,
    isGateway: d.flag(r.is_gateway),
  }
  copyPresent(n, r, [
    ['longName', 'long_name'],
    ['shortName', 'short_name'],
  ])
  if (user?.hwModel !== undefined) n.hwModel = user.hwModel
  if (user?.role !== undefined) n.role = user.role
  if (user?.publicKey !== undefined) n.publicKey = user.publicKey
  if (r.position_at !== null && r.latitude !== null && r.longitude !== null) {
    n.position = {
      latitude: r.latitude as number,
      longitude: r.longitude as number,
      at: r.position_at as number,
      source: r.position_src === 1 ? 'mapreport' : 'position',
    }
    if (r.altitude !== null) n.position.altitude = r.altitude as number
    if (r.precision_bits !== null) n.position.precisionBits = r.precision_bits as number
    if (r.radius_m !== null) n.position.radiusM = r.radius_m as number
  }
  if (r.device_json !== null) {
    n.deviceMetrics = { ...parse<MetricsMessage>(r.device_json), at: r.device_at as number }
  }
  if (r.hops_away !== null) n.hopsAway = r.hops_away as number
  if (r.last_gateway_id !== null && r.last_gateway_id !== undefined) {
    n.lastGatewayId = r.last_gateway_id as string
  }
  if (r.reception_at !== null) {
    n.lastSnr = r.last_snr as number
    n.lastRssi = r.last_rssi as number
    n.lastReceptionClass = CLASSES[r.last_class as number] ?? 'unknown'
  }
  if (r.firmware_version !== null) n.firmwareVersion = r.firmware_version as string
  const region = d.scalar(r.region)
  if (region !== undefined) n.region = region
  const preset = d.scalar(r.modem_preset)
  if (preset !== undefined) n.modemPreset = preset
  return n
}

/**
 * A node's detail: its row, its latest node info and map report, its latest telemetry of each
 * variant (`node_telemetry` rows: `variant`, `at`, `metrics` JSON) and its links.
 *
 * @example
 * const detail = nodeDetail(row, dialect, telemetryRows, links)
 * @internal
 */
export function nodeDetail(
  row: Row,
  d: ColumnDialect,
  telemetry: readonly Row[],
  links: LinkRow[],
): NodeDetail {
  const detail: NodeDetail = { ...nodeRow(row, d), telemetry: {}, links: [] }
  const user = parse<UserMessage>(row.user_json)
  if (user) detail.user = user
  const map = parse<MapReportMessage>(row.map_json)
  if (map) detail.mapReport = { ...map, at: row.map_at as number }
  for (const t of telemetry) {
    detail.telemetry[t.variant as TelemetryVariant] = {
      metrics: JSON.parse(t.metrics as string),
      at: t.at as number,
    }
  }
  detail.links = links
  return detail
}

/**
 * A stored packet from a `packets` row (`key`, `received_at`, packed `json`).
 *
 * @example
 * return row ? storedPacket(row) : undefined
 * @internal
 */
export function storedPacket(row: Row): StoredPacket {
  return {
    key: row.key as string,
    packet: unpackPacket(row.json as string),
    receivedAt: row.received_at as number,
  }
}

const RECEPTION_OPTIONAL = [
  ['gatewayId', 'gateway_id'],
  ['topic', 'topic'],
  ['source', 'source'],
  ['channelId', 'channel'],
  ['relayNode', 'relay_node'],
  ['hopsAway', 'hops_away'],
] as const

/**
 * A reception from a `receptions` row joined with its packet's `key`, its `gateway_id` and its
 * `topic`, `source` and `channel` strings.
 *
 * @example
 * const receptions = rows.map(receptionOf)
 * @internal
 */
export function receptionOf(r: Row): Reception {
  const out: Reception = {
    packetKey: r.key as string,
    rxTime: r.rx_time as number,
    receivedAt: r.received_at as number,
    rxSnr: r.rx_snr as number,
    rxRssi: r.rx_rssi as number,
    hopLimit: r.hop_limit as number,
    hopStart: r.hop_start as number,
    receptionClass: CLASSES[r.class as number] ?? 'unknown',
  }
  copyPresent(out, r, RECEPTION_OPTIONAL)
  if (r.app !== null) out.app = JSON.parse(r.app as string)
  return out
}

/**
 * A reception list row: {@link receptionOf} with the sender and the packet's `portnum`.
 * @internal
 */
export function receptionRow(r: Row): ReceptionRow {
  const out: ReceptionRow = receptionOf(r)
  if (r.from_num !== null) {
    out.from = r.from_num as number
    out.fromId = nodeIdFromNum(r.from_num as number)
  }
  if (r.portnum !== null) out.portnum = r.portnum as number
  return out
}

const POSITION_OPTIONAL = [
  ['time', 'time'],
  ['altitude', 'altitude'],
  ['precisionBits', 'precision_bits'],
  ['radiusM', 'radius_m'],
  ['satsInView', 'sats_in_view'],
  ['groundSpeed', 'ground_speed'],
  ['groundTrack', 'ground_track'],
  ['channel', 'channel'],
  ['gatewayId', 'gateway_id'],
] as const

/** A position from a `positions` row with its packet `key`, `channel` and `gateway_id`. @internal */
export function positionRow(r: Row): PositionRow {
  const out: PositionRow = {
    key: r.key as string,
    node: r.node as number,
    nodeId: nodeIdFromNum(r.node as number),
    at: r.received_at as number,
    latitude: r.latitude as number,
    longitude: r.longitude as number,
  }
  return copyPresent(out, r, POSITION_OPTIONAL)
}

/**
 * A telemetry report from a `telemetry` row (metric columns and `extra` JSON) with its packet
 * `key`, `channel` and `gateway_id`. @internal
 */
export function telemetryRow(r: Row): TelemetryRow {
  const variant = r.variant as TelemetryVariant
  const out: TelemetryRow = {
    key: r.key as string,
    node: r.node as number,
    nodeId: nodeIdFromNum(r.node as number),
    at: r.received_at as number,
    variant,
    metrics: joinMetrics(variant, r, r.extra as string | null),
  }
  return copyPresent(out, r, [
    ['time', 'time'],
    ['channel', 'channel'],
    ['gatewayId', 'gateway_id'],
  ])
}

/** A text message from a `messages` row with its packet `key`, `channel` and `gateway_id`. @internal */
export function messageRow(r: Row, d: ColumnDialect): MessageRow {
  const out: MessageRow = {
    key: r.key as string,
    id: r.packet_id as number,
    from: r.from_num as number,
    fromId: nodeIdFromNum(r.from_num as number),
    to: r.to_num as number,
    toId: nodeIdFromNum(r.to_num as number),
    at: r.received_at as number,
    rxTime: r.rx_time as number,
    direct: d.flag(r.direct),
    type: r.type as TextPayload['type'],
    text: r.text as string,
    isReaction: d.flag(r.is_reaction),
  }
  return copyPresent(out, r, [
    ['channel', 'channel'],
    ['replyId', 'reply_id'],
    ['emoji', 'emoji'],
    ['hopsAway', 'hops_away'],
    ['gatewayId', 'gateway_id'],
  ])
}

/**
 * A packet from a `packets` row (packed `json`) with its `channel`, `gateway_id` and its count of
 * `receptions`. @internal
 */
export function packetRow(r: Row): PacketRow {
  const packet = unpackPacket(r.json as string)
  const out: PacketRow = {
    key: r.key as string,
    id: r.packet_id as number,
    from: r.from_num as number,
    fromId: nodeIdFromNum(r.from_num as number),
    to: r.to_num as number,
    toId: nodeIdFromNum(r.to_num as number),
    portnum: r.portnum as number,
    at: r.received_at as number,
    rxTime: r.rx_time as number,
    receptions: r.receptions as number,
    packet,
  }
  const name = portnumName(r.portnum as number)
  if (name !== undefined) out.portnumName = name
  return copyPresent(out, r, [
    ['channel', 'channel'],
    ['gatewayId', 'gateway_id'],
    ['hopsAway', 'hops_away'],
  ])
}

/** A traceroute from a `traceroutes` row (`route` JSON) with its packet `key` and `gateway_id`. @internal */
export function tracerouteRow(r: Row): TracerouteRow {
  const route: Pick<TracerouteRow, 'route' | 'snrTowardsDb' | 'routeBack' | 'snrBackDb'> =
    JSON.parse(r.route as string)
  const out: TracerouteRow = {
    key: r.key as string,
    from: r.from_num as number,
    fromId: nodeIdFromNum(r.from_num as number),
    to: r.to_num as number,
    toId: nodeIdFromNum(r.to_num as number),
    at: r.received_at as number,
    isReply: r.request_id !== null,
    ...route,
  }
  if (r.request_id !== null) out.requestId = r.request_id as number
  if (r.gateway_id !== null) out.gatewayId = r.gateway_id as string
  return out
}

/**
 * A gateway's figures from a grouped receptions row (`gateway_id`, `num`, `packets`, `nodes`,
 * `direct`, `first_heard`, `last_heard`, and `median_snr` / `median_rssi` when the query computed
 * them: absent or NULL leaves them out). @internal
 */
export function gatewayStatsRow(r: Row): GatewayStatsRow {
  const out: GatewayStatsRow = {
    gatewayId: r.gateway_id as string,
    packets: r.packets as number,
    nodes: r.nodes as number,
    direct: r.direct as number,
    firstHeard: r.first_heard as number,
    lastHeard: r.last_heard as number,
  }
  if (r.num !== null) out.num = r.num as number
  if (r.median_snr !== null && r.median_snr !== undefined) out.medianSnr = r.median_snr as number
  if (r.median_rssi !== null && r.median_rssi !== undefined) {
    out.medianRssi = r.median_rssi as number
  }
  return out
}

/**
 * A link from a row of the links union (`source`, ends `a` → `b`, `count`, `first_seen`,
 * `last_seen`, `snr`, `rssi`). @internal
 */
export function linkRow(r: Row): LinkRow {
  const out: LinkRow = {
    from: r.a as number,
    fromId: nodeIdFromNum(r.a as number),
    to: r.b as number,
    toId: nodeIdFromNum(r.b as number),
    source: r.source as LinkSource,
    count: r.count as number,
    firstSeen: r.first_seen as number,
    lastSeen: r.last_seen as number,
  }
  return copyPresent(out, r, [
    ['snr', 'snr'],
    ['rssi', 'rssi'],
  ])
}

/**
 * A list paged by keyset over (time, id), the same in both stores: the tag of its cursors, its
 * keyset columns (the readers select the list's table as `x`, or `p` for packets and `r` for
 * receptions, and its time and id again as `_t` and `_id` for `timeCursor`) and its row
 * mapper. @internal
 */
export interface TimeList<T> {
  /** The list's name, the tag of its cursors. */
  list: string
  /** The time column, the first key (`received_at`). */
  time: string
  /** The id column, the second key (ties on the time). */
  id: string
  /** Builds the domain row from a database row. */
  map: (row: Row, d: ColumnDialect) => T
}

/**
 * The keyset lists of the store API.
 *
 * @example
 * const { list, time, id, map } = TIME_LISTS.positions
 * @internal
 */
export const TIME_LISTS: {
  readonly positions: TimeList<PositionRow>
  readonly telemetry: TimeList<TelemetryRow>
  readonly messages: TimeList<MessageRow>
  readonly packets: TimeList<PacketRow>
  readonly receptions: TimeList<ReceptionRow>
  readonly traceroutes: TimeList<TracerouteRow>
} = {
  positions: { list: 'positions', time: 'x.received_at', id: 'x.packet_ref', map: positionRow },
  telemetry: { list: 'telemetry', time: 'x.received_at', id: 'x.packet_ref', map: telemetryRow },
  messages: { list: 'messages', time: 'x.received_at', id: 'x.packet_ref', map: messageRow },
  packets: { list: 'packets', time: 'p.received_at', id: 'p.id', map: packetRow },
  receptions: { list: 'receptions', time: 'r.received_at', id: 'r.id', map: receptionRow },
  traceroutes: { list: 'traceroutes', time: 'x.received_at', id: 'x.id', map: tracerouteRow },
}
