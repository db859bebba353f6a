import {
  type BoundingBox,
  type GatewayStatsQuery,
  type GatewayStatsRow,
  type LinkQuery,
  type LinkRow,
  type LinkSource,
  type MapReportMessage,
  type MessageQuery,
  type MessageRow,
  type MetricsMessage,
  type NodeDetail,
  type NodeListQuery,
  type NodeRef,
  type NodeRow,
  nodeIdFromNum,
  nodeNumFromId,
  type PacketKey,
  type PacketQuery,
  type PacketRow,
  type Page,
  type PositionQuery,
  type PositionRow,
  portnumName,
  type Reception,
  type ReceptionQuery,
  type ReceptionRow,
  type StoreCounts,
  type StoredPacket,
  type StoreQueries,
  type TelemetryQuery,
  type TelemetryRow,
  type TelemetryVariant,
  type TextPayload,
  type TimeQuery,
  type TracerouteQuery,
  type TracerouteRow,
  type UserMessage,
} from '@meshtap/protocol'
import {
  CLASS_CODE,
  CLASSES,
  cellsOf,
  joinMetrics,
  unpackPacket,
} from '@meshtap/protocol/store-kit'
import { decodeCursor, encodeCursor } from './cursor.js'
import { PgStoreError } from './errors.js'
import { ident, type PgPool, TYPES } from './pool.js'

/** Default and maximum page sizes. @internal */
export const DEFAULT_LIMIT = 100
/** @internal */
export const MAX_LIMIT = 1000
/** Boxes covering more 1° cells than this scan by time instead of by cell. */
const MAX_CELLS = 64

type Row = Record<string, unknown>

/** The read half of the store. @internal */
export interface Reader extends StoreQueries {
  getPacket(key: PacketKey): Promise<StoredPacket | undefined>
  getReceptions(key: PacketKey): Promise<Reception[]>
  counts(): Promise<StoreCounts>
}

/** Why a filter can match nothing (a gateway or channel the store never saw). */
const NOTHING = Symbol('nothing')

function limitOf(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT
  if (!Number.isFinite(limit) || limit < 1) {
    throw new PgStoreError('INVALID_OPTIONS', `limit must be a positive number, got ${limit}`)
  }
  return Math.min(Math.floor(limit), MAX_LIMIT)
}

/** A node number from a number or a `!xxxxxxxx` id. @internal */
export function nodeNum(node: NodeRef): number {
  const n = typeof node === 'number' ? node : nodeNumFromId(node, true)
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new PgStoreError('INVALID_OPTIONS', `not a node number or !xxxxxxxx id: ${String(node)}`)
  }
  return n >>> 0
}

function portnums(p: number | readonly number[]): number[] {
  const list = typeof p === 'number' ? [p] : [...p]
  if (list.length === 0 || !list.every((n) => Number.isInteger(n))) {
    throw new PgStoreError('INVALID_OPTIONS', 'portnum must be an integer or a non-empty list')
  }
  return list
}

function parse<T>(json: unknown): T | undefined {
  return typeof json === 'string' ? (JSON.parse(json) as T) : undefined
}

/** Positional parameters: `p(value)` adds one and returns its placeholder. */
class Params {
  readonly values: unknown[] = []
  p(value: unknown): string {
    this.values.push(value)
    return `$${this.values.length}`
  }
}

/** Builds a node row from a `nodes` row (with `last_gateway_id`). @internal */
export function nodeRow(r: Row): NodeRow {
  const num = r.num as number
  const user = parse<UserMessage>(r.user_json)
  const n: NodeRow = {
    num,
    id: nodeIdFromNum(num),
    firstSeen: r.first_seen as number,
    lastHeard: r.last_heard as number,
    packets: r.packets as number,
    isGateway: r.is_gateway === true,
  }
  if (r.long_name !== null) n.longName = r.long_name as string
  if (r.short_name !== null) n.shortName = r.short_name as string
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
  const region = parse<string | number>(r.region)
  if (region !== undefined) n.region = region
  const preset = parse<string | number>(r.modem_preset)
  if (preset !== undefined) n.modemPreset = preset
  return n
}

/** Builds a reception from a row of the reception select. @internal */
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
  if (r.gateway_id !== null) out.gatewayId = r.gateway_id as string
  if (r.topic !== null) out.topic = r.topic as string
  if (r.source !== null) out.source = r.source as string
  if (r.channel !== null) out.channelId = r.channel as string
  if (r.relay_node !== null) out.relayNode = r.relay_node as number
  if (r.hops_away !== null) out.hopsAway = r.hops_away as number
  if (r.app !== null) out.app = JSON.parse(r.app as string)
  return out
}

/** The receptions with their packet key, gateway and strings, for schema `s` (quoted). @internal */
export function receptionSelect(s: string): string {
  return `SELECT r.*, r.received_at AS _t, r.id AS _id, p.key, p.portnum,
      g.gateway_id, t.value AS topic, so.value AS source, c.value AS channel
    FROM ${s}.receptions r JOIN ${s}.packets p ON p.id = r.packet_ref
    LEFT JOIN ${s}.gateways g ON g.id = r.gw AND r.gw > 0
    LEFT JOIN ${s}.strings t ON t.id = r.topic_ref
    LEFT JOIN ${s}.strings so ON so.id = r.source_ref
    LEFT JOIN ${s}.strings c ON c.id = r.channel_ref`
}

/** The nodes with the id of their last gateway, for schema `s` (quoted). @internal */
export function nodeSelect(s: string): string {
  return `SELECT n.*, n.last_heard AS _t, n.num AS _id, g.gateway_id AS last_gateway_id
    FROM ${s}.nodes n LEFT JOIN ${s}.gateways g ON g.id = n.last_gw`
}

/** Prepares the reader for a migrated schema. @internal */
export function createReader(pool: () => PgPool, schema: string, now: () => number): Reader {
  const s = ident(schema)

  async function all(text: string, values: unknown[] = []): Promise<Row[]> {
    const res = await pool().query({ text, values, types: TYPES })
    return res.rows
  }

  async function gatewayRef(gatewayId: string): Promise<number | typeof NOTHING> {
    const rows = await all(`SELECT id FROM ${s}.gateways WHERE gateway_id = $1`, [gatewayId])
    return rows[0] ? (rows[0].id as number) : NOTHING
  }
  async function stringRef(value: string): Promise<number | typeof NOTHING> {
    const rows = await all(`SELECT id FROM ${s}.strings WHERE value = $1`, [value])
    return rows[0] ? (rows[0].id as number) : NOTHING
  }

  function bboxSql(lat: string, lon: string, b: BoundingBox, q: Params): string {
    for (const v of [b.south, b.west, b.north, b.east]) {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new PgStoreError('INVALID_OPTIONS', 'bbox needs finite south, west, north and east')
      }
    }
    const south = q.p(b.south)
    const north = q.p(b.north)
    const west = q.p(b.west)
    const east = q.p(b.east)
    return b.west <= b.east
      ? `${lat} BETWEEN ${south} AND ${north} AND ${lon} BETWEEN ${west} AND ${east}`
      : `${lat} BETWEEN ${south} AND ${north} AND (${lon} >= ${west} OR ${lon} <= ${east})`
  }

  /**
   * Runs a keyset-paginated list over `time` then `id` (both columns of `from`), newest first
   * unless `order: 'asc'`.
   */
  async function timeList<T>(
    list: string,
    select: string,
    time: string,
    id: string,
    where: string[],
    params: Params,
    q: TimeQuery,
    map: (row: Row) => T,
  ): Promise<Page<T>> {
    const limit = limitOf(q.limit)
    const desc = (q.order ?? 'desc') === 'desc'
    const w = [...where]
    if (q.since !== undefined) w.push(`${time} >= ${params.p(q.since)}`)
    if (q.until !== undefined) w.push(`${time} < ${params.p(q.until)}`)
    if (q.cursor !== undefined) {
      const [t, i] = decodeCursor(list, q.cursor, 2)
      w.push(
        `(${time}, ${id}) ${desc ? '<' : '>'} (${params.p(t)}::bigint, ${params.p(i)}::bigint)`,
      )
    }
    const dir = desc ? 'DESC' : 'ASC'
    const text = `${select} ${w.length ? `WHERE ${w.join(' AND ')}` : ''} ORDER BY ${time} ${dir}, ${id} ${dir} LIMIT ${params.p(limit + 1)}`
    const rows = await all(text, params.values)
    const more = rows.length > limit
    if (more) rows.length = limit
    const last = rows[rows.length - 1]
    const page: Page<T> = { items: rows.map(map) }
    if (more && last) page.nextCursor = encodeCursor(list, [last._t as number, last._id as number])
    return page
  }

  const empty = <T>(): Page<T> => ({ items: [] })

  /** Adds the node / gateway / channel filters shared by the packet-derived lists. */
  async function packetFilters(
    q: { node?: NodeRef; gateway?: string; channel?: string },
    cols: { node: string; ref: string; day: string; channel: string },
    where: string[],
    params: Params,
  ): Promise<boolean> {
    if (q.node !== undefined) where.push(`${cols.node} = ${params.p(nodeNum(q.node))}`)
    if (q.channel !== undefined) {
      const c = await stringRef(q.channel)
      if (c === NOTHING) return false
      where.push(`${cols.channel} = ${params.p(c)}`)
    }
    if (q.gateway !== undefined) {
      const g = await gatewayRef(q.gateway)
      if (g === NOTHING) return false
      where.push(
        `EXISTS (SELECT 1 FROM ${s}.receptions rg WHERE rg.day = ${cols.day} AND rg.packet_ref = ${cols.ref} AND rg.gw = ${params.p(g)})`,
      )
    }
    return true
  }

  const RECEPTIONS = receptionSelect(s)
  const NODES = nodeSelect(s)

  function routeOf(
    json: string,
  ): Pick<TracerouteRow, 'route' | 'snrTowardsDb' | 'routeBack' | 'snrBackDb'> {
    return JSON.parse(json)
  }

  const reader: Reader = {
    async getPacket(key) {
      const rows = await all(
        `SELECT key, received_at, json FROM ${s}.packets WHERE key = $1 AND json IS NOT NULL`,
        [key],
      )
      const row = rows[0]
      if (!row) return undefined
      return {
        key: row.key as string,
        packet: unpackPacket(row.json as string),
        receivedAt: row.received_at as number,
      }
    },

    async getReceptions(key) {
      const rows = await all(
        `WITH k AS (SELECT id, day FROM ${s}.packets WHERE key = $1)
         ${RECEPTIONS} JOIN k ON r.day = k.day AND r.packet_ref = k.id ORDER BY r.id`,
        [key],
      )
      return rows.map(receptionOf)
    },

    async counts() {
      const rows = await all(`SELECT
        (SELECT count(*) FROM ${s}.packets WHERE portnum IS NOT NULL) AS packets,
        (SELECT count(*) FROM ${s}.receptions) AS receptions,
        (SELECT count(*) FROM ${s}.undecoded) AS undecoded`)
      const r = rows[0] as { packets: number; receptions: number; undecoded: number }
      return { packets: r.packets, receptions: r.receptions, undecoded: r.undecoded }
    },

    async listNodes(q: NodeListQuery = {}) {
      const limit = limitOf(q.limit)
      const where: string[] = []
      const params = new Params()
      if (q.since !== undefined) where.push(`n.last_heard >= ${params.p(q.since)}`)
      if (q.bbox) where.push(bboxSql('n.latitude', 'n.longitude', q.bbox, params))
      if (q.gateways) where.push('n.is_gateway')
      if (q.search !== undefined && q.search !== '') {
        const escapeLike = (v: string) => v.replace(/[\\%_]/g, (c) => `\\${c}`)
        const like = params.p(`%${escapeLike(q.search)}%`)
        const idLike = escapeLike(q.search.toLowerCase())
        const id = params.p(idLike.startsWith('!') ? `${idLike}%` : `!${idLike}%`)
        where.push(
          `(n.long_name ILIKE ${like} OR n.short_name ILIKE ${like} OR ('!' || lpad(to_hex(n.num), 8, '0')) LIKE ${id})`,
        )
      }
      if (q.cursor !== undefined) {
        const [t, i] = decodeCursor('nodes', q.cursor, 2)
        where.push(`(n.last_heard, n.num) < (${params.p(t)}::bigint, ${params.p(i)}::bigint)`)
      }
      const text = `${NODES} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY n.last_heard DESC, n.num DESC LIMIT ${params.p(limit + 1)}`
      const rows = await all(text, params.values)
      const more = rows.length > limit
      if (more) rows.length = limit
      const last = rows[rows.length - 1]
      const page: Page<NodeRow> = { items: rows.map(nodeRow) }
      if (more && last) {
        page.nextCursor = encodeCursor('nodes', [last._t as number, last._id as number])
      }
      return page
    },

    async getNode(ref) {
      const num = nodeNum(ref)
      const rows = await all(`${NODES} WHERE n.num = $1`, [num])
      const row = rows[0]
      if (!row) return undefined
      const detail: NodeDetail = { ...nodeRow(row), telemetry: {}, links: [] }
      const user = parse<UserMessage>(row.user_json)
      if (user) detail.user = user
      const map = parse<MapReportMessage>(row.map_json)
      if (map) detail.mapReport = { ...map, at: row.map_at as number }
      const telemetry = await all(
        `SELECT variant, at, metrics FROM ${s}.node_telemetry WHERE num = $1`,
        [num],
      )
      for (const t of telemetry) {
        detail.telemetry[t.variant as TelemetryVariant] = {
          metrics: JSON.parse(t.metrics as string),
          at: t.at as number,
        }
      }
      detail.links = (await reader.links({ node: num, since: 0, limit: MAX_LIMIT })).items.sort(
        (a, b) => b.lastSeen - a.lastSeen,
      )
      return detail
    },

    async listPositions(q: PositionQuery = {}) {
      const where: string[] = []
      const params = new Params()
      const cols = { node: 'x.node', ref: 'x.packet_ref', day: 'x.day', channel: 'x.channel_ref' }
      if (!(await packetFilters(q, cols, where, params))) return empty()
      if (q.bbox) {
        where.push(bboxSql('x.latitude', 'x.longitude', q.bbox, params))
        const cells = cellsOf(q.bbox.south, q.bbox.west, q.bbox.north, q.bbox.east, MAX_CELLS)
        if (cells) where.push(`x.cell = ANY(${params.p(`{${cells.join(',')}}`)}::int[])`)
      }
      return timeList(
        'positions',
        `SELECT x.*, x.received_at AS _t, x.packet_ref AS _id, p.key, c.value AS channel, g.gateway_id
         FROM ${s}.positions x JOIN ${s}.packets p ON p.id = x.packet_ref
         LEFT JOIN ${s}.strings c ON c.id = x.channel_ref LEFT JOIN ${s}.gateways g ON g.id = x.gw`,
        'x.received_at',
        'x.packet_ref',
        where,
        params,
        q,
        (r): PositionRow => {
          const out: PositionRow = {
            key: r.key as string,
            node: r.node as number,
            nodeId: nodeIdFromNum(r.node as number),
            at: r.received_at as number,
            latitude: r.latitude as number,
            longitude: r.longitude as number,
          }
          if (r.time !== null) out.time = r.time as number
          if (r.altitude !== null) out.altitude = r.altitude as number
          if (r.precision_bits !== null) out.precisionBits = r.precision_bits as number
          if (r.radius_m !== null) out.radiusM = r.radius_m as number
          if (r.sats_in_view !== null) out.satsInView = r.sats_in_view as number
          if (r.ground_speed !== null) out.groundSpeed = r.ground_speed as number
          if (r.ground_track !== null) out.groundTrack = r.ground_track as number
          if (r.channel !== null) out.channel = r.channel as string
          if (r.gateway_id !== null) out.gatewayId = r.gateway_id as string
          return out
        },
      )
    },

    async listTelemetry(q: TelemetryQuery = {}) {
      const where: string[] = []
      const params = new Params()
      const cols = { node: 'x.node', ref: 'x.packet_ref', day: 'x.day', channel: 'x.channel_ref' }
      if (!(await packetFilters(q, cols, where, params))) return empty()
      if (q.variant !== undefined) where.push(`x.variant = ${params.p(q.variant)}`)
      return timeList(
        'telemetry',
        `SELECT x.*, x.received_at AS _t, x.packet_ref AS _id, p.key, c.value AS channel, g.gateway_id
         FROM ${s}.telemetry x JOIN ${s}.packets p ON p.id = x.packet_ref
         LEFT JOIN ${s}.strings c ON c.id = x.channel_ref LEFT JOIN ${s}.gateways g ON g.id = x.gw`,
        'x.received_at',
        'x.packet_ref',
        where,
        params,
        q,
        (r): TelemetryRow => {
          const variant = r.variant as TelemetryVariant
          const out: TelemetryRow = {
            key: r.key as string,
            node: r.node as number,
            nodeId: nodeIdFromNum(r.node as number),
            at: r.received_at as number,
            variant,
            metrics: joinMetrics(variant, r, r.extra as string | null),
          }
          if (r.time !== null) out.time = r.time as number
          if (r.channel !== null) out.channel = r.channel as string
          if (r.gateway_id !== null) out.gatewayId = r.gateway_id as string
          return out
        },
      )
    },

    async listMessages(q: MessageQuery = {}) {
      const where: string[] = []
      const params = new Params()
      const cols = {
        node: 'x.from_num',
        ref: 'x.packet_ref',
        day: 'x.day',
        channel: 'x.channel_ref',
      }
      if (!(await packetFilters(q, cols, where, params))) return empty()
      if (q.to !== undefined) where.push(`x.to_num = ${params.p(nodeNum(q.to))}`)
      if (q.direct !== undefined) where.push(`x.direct = ${params.p(q.direct)}`)
      return timeList(
        'messages',
        `SELECT x.*, x.received_at AS _t, x.packet_ref AS _id, p.key, c.value AS channel, g.gateway_id
         FROM ${s}.messages x JOIN ${s}.packets p ON p.id = x.packet_ref
         LEFT JOIN ${s}.strings c ON c.id = x.channel_ref LEFT JOIN ${s}.gateways g ON g.id = x.gw`,
        'x.received_at',
        'x.packet_ref',
        where,
        params,
        q,
        (r): MessageRow => {
          const out: MessageRow = {
            key: r.key as string,
            id: r.packet_id as number,
            from: r.from_num as number,
            fromId: nodeIdFromNum(r.from_num as number),
            to: r.to_num as number,
            toId: nodeIdFromNum(r.to_num as number),
            at: r.received_at as number,
            rxTime: r.rx_time as number,
            direct: r.direct === true,
            type: r.type as TextPayload['type'],
            text: r.text as string,
            isReaction: r.is_reaction === true,
          }
          if (r.channel !== null) out.channel = r.channel as string
          if (r.reply_id !== null) out.replyId = r.reply_id as number
          if (r.emoji !== null) out.emoji = r.emoji as number
          if (r.hops_away !== null) out.hopsAway = r.hops_away as number
          if (r.gateway_id !== null) out.gatewayId = r.gateway_id as string
          return out
        },
      )
    },

    async listPackets(q: PacketQuery = {}) {
      const where = ['p.portnum IS NOT NULL']
      const params = new Params()
      const cols = { node: 'p.from_num', ref: 'p.id', day: 'p.day', channel: 'p.channel_ref' }
      if (!(await packetFilters(q, cols, where, params))) return empty()
      if (q.to !== undefined) where.push(`p.to_num = ${params.p(nodeNum(q.to))}`)
      if (q.portnum !== undefined) {
        where.push(`p.portnum = ANY(${params.p(`{${portnums(q.portnum).join(',')}}`)}::int[])`)
      }
      return timeList(
        'packets',
        `SELECT p.*, p.received_at AS _t, p.id AS _id, c.value AS channel, g.gateway_id,
           (SELECT count(*) FROM ${s}.receptions r WHERE r.day = p.day AND r.packet_ref = p.id) AS receptions
         FROM ${s}.packets p LEFT JOIN ${s}.strings c ON c.id = p.channel_ref
         LEFT JOIN ${s}.gateways g ON g.id = p.gw`,
        'p.received_at',
        'p.id',
        where,
        params,
        q,
        (r): PacketRow => {
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
          if (r.channel !== null) out.channel = r.channel as string
          if (r.gateway_id !== null) out.gatewayId = r.gateway_id as string
          if (r.hops_away !== null) out.hopsAway = r.hops_away as number
          return out
        },
      )
    },

    async listReceptions(q: ReceptionQuery = {}) {
      const where: string[] = []
      const params = new Params()
      if (q.packetKey !== undefined) {
        const k = params.p(q.packetKey)
        where.push(`(r.day, r.packet_ref) = (SELECT day, id FROM ${s}.packets WHERE key = ${k})`)
      }
      if (q.node !== undefined) where.push(`r.from_num = ${params.p(nodeNum(q.node))}`)
      if (q.gateway !== undefined) {
        const g = await gatewayRef(q.gateway)
        if (g === NOTHING) return empty()
        where.push(`r.gw = ${params.p(g)}`)
      }
      if (q.channel !== undefined) {
        const c = await stringRef(q.channel)
        if (c === NOTHING) return empty()
        where.push(`r.channel_ref = ${params.p(c)}`)
      }
      if (q.portnum !== undefined) {
        where.push(`p.portnum = ANY(${params.p(`{${portnums(q.portnum).join(',')}}`)}::int[])`)
      }
      if (q.receptionClass !== undefined) {
        where.push(`r.class = ${params.p(CLASS_CODE[q.receptionClass] ?? -1)}`)
      }
      return timeList('receptions', RECEPTIONS, 'r.received_at', 'r.id', where, params, q, (r) => {
        const out: ReceptionRow = receptionOf(r)
        if (r.from_num !== null) {
          out.from = r.from_num as number
          out.fromId = nodeIdFromNum(r.from_num as number)
        }
        if (r.portnum !== null) out.portnum = r.portnum as number
        return out
      })
    },

    async listTraceroutes(q: TracerouteQuery = {}) {
      const where: string[] = []
      const params = new Params()
      if (q.node !== undefined) {
        const n = params.p(nodeNum(q.node))
        where.push(`(x.from_num = ${n} OR x.to_num = ${n})`)
      }
      if (q.gateway !== undefined) {
        const g = await gatewayRef(q.gateway)
        if (g === NOTHING) return empty()
        where.push(`x.gw = ${params.p(g)}`)
      }
      return timeList(
        'traceroutes',
        `SELECT x.*, x.received_at AS _t, x.id AS _id, p.key, g.gateway_id
         FROM ${s}.traceroutes x JOIN ${s}.packets p ON p.id = x.packet_ref
         LEFT JOIN ${s}.gateways g ON g.id = x.gw AND x.gw > 0`,
        'x.received_at',
        'x.id',
        where,
        params,
        q,
        (r): TracerouteRow => {
          const out: TracerouteRow = {
            key: r.key as string,
            from: r.from_num as number,
            fromId: nodeIdFromNum(r.from_num as number),
            to: r.to_num as number,
            toId: nodeIdFromNum(r.to_num as number),
            at: r.received_at as number,
            isReply: r.request_id !== null,
            ...routeOf(r.route as string),
          }
          if (r.request_id !== null) out.requestId = r.request_id as number
          if (r.gateway_id !== null) out.gatewayId = r.gateway_id as string
          return out
        },
      )
    },

    async gatewayStats(q: GatewayStatsQuery = {}) {
      const limit = limitOf(q.limit)
      const params = new Params()
      const since = q.since ?? now() - 86_400_000
      const until = q.until ?? Number.MAX_SAFE_INTEGER
      const where = [
        `r.received_at >= ${params.p(since)}`,
        `r.received_at < ${params.p(until)}`,
        'r.gw > 0',
      ]
      if (q.gateway !== undefined) {
        const g = await gatewayRef(q.gateway)
        if (g === NOTHING) return empty()
        where.push(`r.gw = ${params.p(g)}`)
      }
      const radio = `r.rx_rssi <> 0 AND r.class NOT IN (${CLASS_CODE.self}, ${CLASS_CODE.injected})`
      let having = ''
      if (q.cursor !== undefined) {
        const [g] = decodeCursor('gatewayStats', q.cursor, 1)
        having = `HAVING g.gateway_id COLLATE "C" > ${params.p(g)}`
      }
      const rows = await all(
        `SELECT r.gw, g.gateway_id, g.num, count(*) AS packets, count(DISTINCT r.from_num) AS nodes,
           count(*) FILTER (WHERE r.class = ${CLASS_CODE.direct}) AS direct,
           min(r.received_at) AS first_heard, max(r.received_at) AS last_heard,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY r.rx_snr) FILTER (WHERE ${radio}) AS median_snr,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY r.rx_rssi) FILTER (WHERE ${radio}) AS median_rssi
         FROM ${s}.receptions r JOIN ${s}.gateways g ON g.id = r.gw
         WHERE ${where.join(' AND ')}
         GROUP BY r.gw, g.gateway_id, g.num ${having}
         ORDER BY g.gateway_id COLLATE "C" LIMIT ${params.p(limit + 1)}`,
        params.values,
      )
      const more = rows.length > limit
      if (more) rows.length = limit
      const items = rows.map((r): GatewayStatsRow => {
        const out: GatewayStatsRow = {
          gatewayId: r.gateway_id as string,
          packets: r.packets as number,
          nodes: r.nodes as number,
          direct: r.direct as number,
          firstHeard: r.first_heard as number,
          lastHeard: r.last_heard as number,
        }
        if (r.num !== null) out.num = r.num as number
        if (r.median_snr !== null) out.medianSnr = r.median_snr as number
        if (r.median_rssi !== null) out.medianRssi = r.median_rssi as number
        return out
      })
      const page: Page<GatewayStatsRow> = { items }
      const last = items[items.length - 1]
      if (more && last) page.nextCursor = encodeCursor('gatewayStats', [last.gatewayId])
      return page
    },

    async links(q: LinkQuery = {}) {
      const limit = limitOf(q.limit)
      const params = new Params()
      const since = q.since ?? now() - 7 * 86_400_000
      const parts: string[] = []
      const n = q.node === undefined ? undefined : nodeNum(q.node)
      const directSelect = (
        since: string,
      ) => `SELECT 'direct'::text AS source, l.node AS a, g.num AS b,
          l.count AS count, l.first_seen AS first_seen, l.last_seen AS last_seen, l.last_snr AS snr,
          l.last_rssi AS rssi
        FROM ${s}.links l JOIN ${s}.gateways g ON g.id = l.gw
        WHERE g.num IS NOT NULL AND l.last_seen >= ${since}`
      const reportedSelect = (since: string) => `SELECT 'neighborinfo'::text AS source,
          nl.neighbor AS a, nl.node AS b, nl.count AS count, nl.first_seen AS first_seen,
          nl.last_seen AS last_seen, nl.last_snr AS snr, NULL::integer AS rssi
        FROM ${s}.neighbor_links nl WHERE nl.last_seen >= ${since}`
      const sinceP = params.p(since)
      const nodeP = n === undefined ? '' : params.p(n)
      if (q.source === undefined || q.source === 'direct') {
        if (n === undefined) parts.push(directSelect(sinceP))
        else {
          // Both ends, each through an index: the sender (primary key), the gateway (links_gw).
          parts.push(
            `${directSelect(sinceP)} AND l.node = ${nodeP}`,
            `${directSelect(sinceP)} AND l.gw IN (SELECT id FROM ${s}.gateways WHERE num = ${nodeP}) AND l.node <> ${nodeP}`,
          )
        }
      }
      if (q.source === undefined || q.source === 'neighborinfo') {
        if (n === undefined) parts.push(reportedSelect(sinceP))
        else {
          parts.push(
            `${reportedSelect(sinceP)} AND nl.node = ${nodeP}`,
            `${reportedSelect(sinceP)} AND nl.neighbor = ${nodeP} AND nl.node <> ${nodeP}`,
          )
        }
      }
      if (parts.length === 0) return empty()
      let after = ''
      if (q.cursor !== undefined) {
        const [src, a, b] = decodeCursor('links', q.cursor, 3)
        after = `WHERE (source COLLATE "C", a, b) > (${params.p(src)}::text COLLATE "C", ${params.p(a)}::bigint, ${params.p(b)}::bigint)`
      }
      const rows = await all(
        `SELECT * FROM (${parts.join(' UNION ALL ')}) AS x ${after}
         ORDER BY source COLLATE "C", a, b LIMIT ${params.p(limit + 1)}`,
        params.values,
      )
      const more = rows.length > limit
      if (more) rows.length = limit
      const items = rows.map((r): LinkRow => {
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
        if (r.snr !== null) out.snr = r.snr as number
        if (r.rssi !== null) out.rssi = r.rssi as number
        return out
      })
      const page: Page<LinkRow> = { items }
      const last = rows[rows.length - 1]
      if (more && last) {
        page.nextCursor = encodeCursor('links', [
          last.source as string,
          last.a as number,
          last.b as number,
        ])
      }
      return page
    },
  }
  return reader
}
