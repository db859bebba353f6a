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
import type { SqliteDatabase, SqliteStatement } from './database.js'
import { SqliteStoreError } from './errors.js'

/** Default and maximum page sizes. @internal */
export const DEFAULT_LIMIT = 100
/** @internal */
export const MAX_LIMIT = 1000
/** Boxes covering more 1° cells than this scan by time instead of by cell. */
const MAX_CELLS = 64

type Row = Record<string, unknown>

/** The read half of the store. @internal */
export interface Reader extends StoreQueries {
  getPacket(key: PacketKey): StoredPacket | undefined
  getReceptions(key: PacketKey): Reception[]
  counts(): StoreCounts
}

/** Why a filter can match nothing (a gateway or channel the store never saw). */
const NOTHING = Symbol('nothing')

function limitOf(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT
  if (!Number.isFinite(limit) || limit < 1) {
    throw new SqliteStoreError('INVALID_OPTIONS', `limit must be a positive number, got ${limit}`)
  }
  return Math.min(Math.floor(limit), MAX_LIMIT)
}

function nodeNum(node: NodeRef): number {
  const n = typeof node === 'number' ? node : nodeNumFromId(node, true)
  if (n === undefined || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new SqliteStoreError(
      'INVALID_OPTIONS',
      `not a node number or !xxxxxxxx id: ${String(node)}`,
    )
  }
  return n >>> 0
}

function bboxSql(lat: string, lon: string, b: BoundingBox, params: unknown[]): string {
  for (const v of [b.south, b.west, b.north, b.east]) {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new SqliteStoreError('INVALID_OPTIONS', 'bbox needs finite south, west, north and east')
    }
  }
  params.push(b.south, b.north, b.west, b.east)
  return b.west <= b.east
    ? `${lat} BETWEEN ? AND ? AND ${lon} BETWEEN ? AND ?`
    : `${lat} BETWEEN ? AND ? AND (${lon} >= ? OR ${lon} <= ?)`
}

function portnums(p: number | readonly number[]): number[] {
  const list = typeof p === 'number' ? [p] : [...p]
  if (list.length === 0 || !list.every((n) => Number.isInteger(n))) {
    throw new SqliteStoreError('INVALID_OPTIONS', 'portnum must be an integer or a non-empty list')
  }
  return list
}

function parse<T>(json: unknown): T | undefined {
  return typeof json === 'string' ? (JSON.parse(json) as T) : undefined
}

/** Prepares the reader's statements. @internal */
export function createReader(db: SqliteDatabase, now: () => number): Reader {
  const cache = new Map<string, SqliteStatement>()
  function stmt(sql: string): SqliteStatement {
    let s = cache.get(sql)
    if (!s) {
      s = db.prepare(sql)
      const safe = (s as { safeIntegers?: (on: boolean) => unknown }).safeIntegers
      if (typeof safe === 'function') safe.call(s, false)
      if (cache.size > 500) cache.clear()
      cache.set(sql, s)
    }
    return s
  }

  function gatewayRef(gatewayId: string): number | typeof NOTHING {
    const row = stmt('SELECT id FROM gateways WHERE gateway_id = ?').get(gatewayId) as
      | { id: number }
      | undefined
    return row ? row.id : NOTHING
  }
  function stringRef(value: string): number | typeof NOTHING {
    const row = stmt('SELECT id FROM strings WHERE value = ?').get(value) as
      | { id: number }
      | undefined
    return row ? row.id : NOTHING
  }

  /**
   * Runs a keyset-paginated list over `time` then `id` (both columns of `from`), newest first
   * unless `order: 'asc'`.
   */
  function timeList<T>(
    list: string,
    select: string,
    time: string,
    id: string,
    where: string[],
    params: unknown[],
    q: TimeQuery,
    map: (row: Row) => T,
    split?: { column: string; values: readonly number[] },
  ): Page<T> {
    const limit = limitOf(q.limit)
    const desc = (q.order ?? 'desc') === 'desc'
    const w = [...where]
    const p = [...params]
    if (q.since !== undefined) {
      w.push(`${time} >= ?`)
      p.push(q.since)
    }
    if (q.until !== undefined) {
      w.push(`${time} < ?`)
      p.push(q.until)
    }
    if (q.cursor !== undefined) {
      const [t, i] = decodeCursor(list, q.cursor, 2)
      // The first term bounds the index range; the second breaks ties on the time.
      w.push(
        desc
          ? `${time} <= ? AND (${time} < ? OR ${id} < ?)`
          : `${time} >= ? AND (${time} > ? OR ${id} > ?)`,
      )
      p.push(t, t, i)
    }
    const dir = desc ? 'DESC' : 'ASC'
    if (split) w.push(`${split.column} = ?`)
    const sql = `${select} ${w.length ? `WHERE ${w.join(' AND ')}` : ''} ORDER BY ${time} ${dir}, ${id} ${dir} LIMIT ?`
    let rows: Row[]
    if (!split) rows = stmt(sql).all(...p, limit + 1) as Row[]
    else {
      // One ordered index range per value (a grid cell), merged: no sort of the whole window.
      rows = split.values.flatMap((v) => stmt(sql).all(...p, v, limit + 1) as Row[])
      const sign = desc ? -1 : 1
      rows.sort(
        (a, b) =>
          sign * ((a._t as number) - (b._t as number)) ||
          sign * ((a._id as number) - (b._id as number)),
      )
      if (rows.length > limit + 1) rows.length = limit + 1
    }
    const more = rows.length > limit
    if (more) rows.length = limit
    const last = rows[rows.length - 1]
    const page: Page<T> = { items: rows.map(map) }
    if (more && last) page.nextCursor = encodeCursor(list, [last._t as number, last._id as number])
    return page
  }

  const empty = <T>(): Page<T> => ({ items: [] })

  /** Adds the node / gateway / channel filters shared by the packet-derived lists. */
  function packetFilters(
    q: { node?: NodeRef; gateway?: string; channel?: string },
    cols: { node: string; ref: string; channel: string },
    where: string[],
    params: unknown[],
  ): boolean {
    if (q.node !== undefined) {
      where.push(`${cols.node} = ?`)
      params.push(nodeNum(q.node))
    }
    if (q.channel !== undefined) {
      const c = stringRef(q.channel)
      if (c === NOTHING) return false
      where.push(`${cols.channel} = ?`)
      params.push(c)
    }
    if (q.gateway !== undefined) {
      const g = gatewayRef(q.gateway)
      if (g === NOTHING) return false
      where.push(
        `EXISTS (SELECT 1 FROM receptions rg WHERE rg.packet_ref = ${cols.ref} AND rg.gw = ?)`,
      )
      params.push(g)
    }
    return true
  }

  function nodeRow(r: Row): NodeRow {
    const num = r.num as number
    const user = parse<UserMessage>(r.user_json)
    const n: NodeRow = {
      num,
      id: nodeIdFromNum(num),
      firstSeen: r.first_seen as number,
      lastHeard: r.last_heard as number,
      packets: r.packets as number,
      isGateway: r.is_gateway === 1,
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
    if (r.last_gateway_id !== null) n.lastGatewayId = r.last_gateway_id as string
    if (r.reception_at !== null) {
      n.lastSnr = r.last_snr as number
      n.lastRssi = r.last_rssi as number
      n.lastReceptionClass = CLASSES[r.last_class as number] ?? 'unknown'
    }
    if (r.firmware_version !== null) n.firmwareVersion = r.firmware_version as string
    if (r.region !== null) n.region = r.region as string | number
    if (r.modem_preset !== null) n.modemPreset = r.modem_preset as string | number
    return n
  }

  const NODE_SELECT = `SELECT n.*, n.last_heard AS _t, n.num AS _id, g.gateway_id AS last_gateway_id
    FROM nodes n LEFT JOIN gateways g ON g.id = n.last_gw`

  function receptionOf(r: Row): Reception {
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

  const RECEPTION_SELECT = `SELECT r.*, r.received_at AS _t, r.id AS _id, p.key, p.portnum,
      g.gateway_id, t.value AS topic, s.value AS source, c.value AS channel
    FROM receptions r JOIN packets p ON p.id = r.packet_ref
    LEFT JOIN gateways g ON g.id = r.gw AND r.gw > 0
    LEFT JOIN strings t ON t.id = r.topic_ref
    LEFT JOIN strings s ON s.id = r.source_ref
    LEFT JOIN strings c ON c.id = r.channel_ref`

  function routeOf(
    json: string,
  ): Pick<TracerouteRow, 'route' | 'snrTowardsDb' | 'routeBack' | 'snrBackDb'> {
    return JSON.parse(json)
  }

  const medianAvailable = (() => {
    try {
      db.prepare('SELECT median(1)').get()
      return true
    } catch {
      return false
    }
  })()

  function median(sorted: number[]): number | undefined {
    if (sorted.length === 0) return undefined
    const mid = sorted.length >> 1
    return sorted.length % 2
      ? sorted[mid]
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
  }

  return {
    getPacket(key) {
      const row = stmt(
        'SELECT key, received_at, json FROM packets WHERE key = ? AND json IS NOT NULL',
      ).get(key) as { key: string; received_at: number; json: string } | undefined
      if (!row) return undefined
      return {
        key: row.key,
        packet: unpackPacket(row.json),
        receivedAt: row.received_at,
      }
    },

    getReceptions(key) {
      const rows = stmt(
        `${RECEPTION_SELECT} WHERE r.packet_ref = (SELECT id FROM packets WHERE key = ?) ORDER BY r.id`,
      ).all(key) as Row[]
      return rows.map(receptionOf)
    },

    counts() {
      const packets = stmt('SELECT count(*) AS n FROM packets WHERE portnum IS NOT NULL').get() as {
        n: number
      }
      const receptions = stmt('SELECT count(*) AS n FROM receptions').get() as { n: number }
      const undecoded = stmt('SELECT count(*) AS n FROM undecoded').get() as { n: number }
      return { packets: packets.n, receptions: receptions.n, undecoded: undecoded.n }
    },

    async listNodes(q: NodeListQuery = {}) {
      const limit = limitOf(q.limit)
      const where: string[] = []
      const params: unknown[] = []
      if (q.since !== undefined) {
        where.push('n.last_heard >= ?')
        params.push(q.since)
      }
      if (q.bbox) where.push(bboxSql('n.latitude', 'n.longitude', q.bbox, params))
      if (q.gateways) where.push('n.is_gateway = 1')
      if (q.search !== undefined && q.search !== '') {
        const like = `%${q.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
        const idLike = `${q.search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`
        where.push(
          `(n.long_name LIKE ? ESCAPE '\\' OR n.short_name LIKE ? ESCAPE '\\' OR printf('!%08x', n.num) LIKE ? ESCAPE '\\')`,
        )
        params.push(like, like, idLike.startsWith('!') ? idLike : `!${idLike}`)
      }
      if (q.cursor !== undefined) {
        const [t, i] = decodeCursor('nodes', q.cursor, 2)
        where.push('n.last_heard <= ? AND (n.last_heard < ? OR n.num < ?)')
        params.push(t, t, i)
      }
      const sql = `${NODE_SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY n.last_heard DESC, n.num DESC LIMIT ?`
      const rows = stmt(sql).all(...params, limit + 1) as Row[]
      const more = rows.length > limit
      if (more) rows.length = limit
      const last = rows[rows.length - 1]
      const page: Page<NodeRow> = { items: rows.map(nodeRow) }
      if (more && last)
        page.nextCursor = encodeCursor('nodes', [last._t as number, last._id as number])
      return page
    },

    async getNode(ref) {
      const num = nodeNum(ref)
      const row = stmt(`${NODE_SELECT} WHERE n.num = ?`).get(num) as Row | undefined
      if (!row) return undefined
      const detail: NodeDetail = { ...nodeRow(row), telemetry: {}, links: [] }
      const user = parse<UserMessage>(row.user_json)
      if (user) detail.user = user
      const map = parse<MapReportMessage>(row.map_json)
      if (map) detail.mapReport = { ...map, at: row.map_at as number }
      for (const t of stmt('SELECT variant, at, metrics FROM node_telemetry WHERE num = ?').all(
        num,
      ) as {
        variant: TelemetryVariant
        at: number
        metrics: string
      }[]) {
        detail.telemetry[t.variant] = { metrics: JSON.parse(t.metrics), at: t.at }
      }
      detail.links = (await this.links({ node: num, since: 0, limit: MAX_LIMIT })).items.sort(
        (a, b) => b.lastSeen - a.lastSeen,
      )
      return detail
    },

    async listPositions(q: PositionQuery = {}) {
      const where: string[] = []
      const params: unknown[] = []
      if (
        !packetFilters(
          q,
          { node: 'x.node', ref: 'x.packet_ref', channel: 'x.channel_ref' },
          where,
          params,
        )
      ) {
        return empty()
      }
      let cells: number[] | undefined
      if (q.bbox) {
        where.push(bboxSql('x.latitude', 'x.longitude', q.bbox, params))
        cells = cellsOf(q.bbox.south, q.bbox.west, q.bbox.north, q.bbox.east, MAX_CELLS)
      }
      return timeList(
        'positions',
        `SELECT x.*, x.received_at AS _t, x.packet_ref AS _id, p.key, c.value AS channel, g.gateway_id
         FROM positions x JOIN packets p ON p.id = x.packet_ref
         LEFT JOIN strings c ON c.id = x.channel_ref LEFT JOIN gateways g ON g.id = x.gw`,
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
        cells && { column: 'x.cell', values: cells },
      )
    },

    async listTelemetry(q: TelemetryQuery = {}) {
      const where: string[] = []
      const params: unknown[] = []
      if (
        !packetFilters(
          q,
          { node: 'x.node', ref: 'x.packet_ref', channel: 'x.channel_ref' },
          where,
          params,
        )
      ) {
        return empty()
      }
      if (q.variant !== undefined) {
        where.push('x.variant = ?')
        params.push(q.variant)
      }
      return timeList(
        'telemetry',
        `SELECT x.*, x.received_at AS _t, x.packet_ref AS _id, p.key, c.value AS channel, g.gateway_id
         FROM telemetry x JOIN packets p ON p.id = x.packet_ref
         LEFT JOIN strings c ON c.id = x.channel_ref LEFT JOIN gateways g ON g.id = x.gw`,
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
      const params: unknown[] = []
      if (
        !packetFilters(
          q,
          { node: 'x.from_num', ref: 'x.packet_ref', channel: 'x.channel_ref' },
          where,
          params,
        )
      ) {
        return empty()
      }
      if (q.to !== undefined) {
        where.push('x.to_num = ?')
        params.push(nodeNum(q.to))
      }
      if (q.direct !== undefined) {
        where.push('x.direct = ?')
        params.push(q.direct ? 1 : 0)
      }
      return timeList(
        'messages',
        `SELECT x.*, x.received_at AS _t, x.packet_ref AS _id, p.key, c.value AS channel, g.gateway_id
         FROM messages x JOIN packets p ON p.id = x.packet_ref
         LEFT JOIN strings c ON c.id = x.channel_ref LEFT JOIN gateways g ON g.id = x.gw`,
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
            direct: r.direct === 1,
            type: r.type as TextPayload['type'],
            text: r.text as string,
            isReaction: r.is_reaction === 1,
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
      const params: unknown[] = []
      if (
        !packetFilters(
          q,
          { node: 'p.from_num', ref: 'p.id', channel: 'p.channel_ref' },
          where,
          params,
        )
      ) {
        return empty()
      }
      if (q.to !== undefined) {
        where.push('p.to_num = ?')
        params.push(nodeNum(q.to))
      }
      if (q.portnum !== undefined) {
        const list = portnums(q.portnum)
        where.push(`p.portnum IN (${list.map(() => '?').join(', ')})`)
        params.push(...list)
      }
      return timeList(
        'packets',
        `SELECT p.*, p.received_at AS _t, p.id AS _id, c.value AS channel, g.gateway_id,
           (SELECT count(*) FROM receptions r WHERE r.packet_ref = p.id) AS receptions
         FROM packets p LEFT JOIN strings c ON c.id = p.channel_ref LEFT JOIN gateways g ON g.id = p.gw`,
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
      const params: unknown[] = []
      if (q.packetKey !== undefined) {
        where.push('r.packet_ref = (SELECT id FROM packets WHERE key = ?)')
        params.push(q.packetKey)
      }
      if (q.node !== undefined) {
        where.push('r.from_num = ?')
        params.push(nodeNum(q.node))
      }
      if (q.gateway !== undefined) {
        const g = gatewayRef(q.gateway)
        if (g === NOTHING) return empty()
        where.push('r.gw = ?')
        params.push(g)
      }
      if (q.channel !== undefined) {
        const c = stringRef(q.channel)
        if (c === NOTHING) return empty()
        where.push('r.channel_ref = ?')
        params.push(c)
      }
      if (q.portnum !== undefined) {
        const list = portnums(q.portnum)
        where.push(`p.portnum IN (${list.map(() => '?').join(', ')})`)
        params.push(...list)
      }
      if (q.receptionClass !== undefined) {
        where.push('r.class = ?')
        params.push(CLASS_CODE[q.receptionClass] ?? -1)
      }
      return timeList(
        'receptions',
        RECEPTION_SELECT,
        'r.received_at',
        'r.id',
        where,
        params,
        q,
        (r) => {
          const out: ReceptionRow = receptionOf(r)
          if (r.from_num !== null) {
            out.from = r.from_num as number
            out.fromId = nodeIdFromNum(r.from_num as number)
          }
          if (r.portnum !== null) out.portnum = r.portnum as number
          return out
        },
      )
    },

    async listTraceroutes(q: TracerouteQuery = {}) {
      const where: string[] = []
      const params: unknown[] = []
      if (q.node !== undefined) {
        const n = nodeNum(q.node)
        where.push('(x.from_num = ? OR x.to_num = ?)')
        params.push(n, n)
      }
      if (q.gateway !== undefined) {
        const g = gatewayRef(q.gateway)
        if (g === NOTHING) return empty()
        where.push('x.gw = ?')
        params.push(g)
      }
      return timeList(
        'traceroutes',
        `SELECT x.*, x.received_at AS _t, x.id AS _id, p.key, g.gateway_id
         FROM traceroutes x JOIN packets p ON p.id = x.packet_ref
         LEFT JOIN gateways g ON g.id = x.gw AND x.gw > 0`,
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
      const since = q.since ?? now() - 86_400_000
      const until = q.until ?? Number.MAX_SAFE_INTEGER
      const where = ['r.received_at >= ?', 'r.received_at < ?', 'r.gw > 0']
      const params: unknown[] = [since, until]
      if (q.gateway !== undefined) {
        const g = gatewayRef(q.gateway)
        if (g === NOTHING) return empty()
        where.push('r.gw = ?')
        params.push(g)
      }
      const radio = `r.rx_rssi <> 0 AND r.class NOT IN (${CLASS_CODE.self}, ${CLASS_CODE.injected})`
      const medians = medianAvailable
        ? `, median(CASE WHEN ${radio} THEN r.rx_snr END) AS median_snr,
             median(CASE WHEN ${radio} THEN r.rx_rssi END) AS median_rssi`
        : ''
      let having = ''
      if (q.cursor !== undefined) {
        const [g] = decodeCursor('gatewayStats', q.cursor, 1)
        having = 'HAVING g.gateway_id > ?'
        params.push(g)
      }
      const rows = stmt(
        `SELECT r.gw, g.gateway_id, g.num, count(*) AS packets, count(DISTINCT r.from_num) AS nodes,
           sum(r.class = ${CLASS_CODE.direct}) AS direct, min(r.received_at) AS first_heard,
           max(r.received_at) AS last_heard ${medians}
         FROM receptions r JOIN gateways g ON g.id = r.gw
         WHERE ${where.join(' AND ')}
         GROUP BY r.gw ${having} ORDER BY g.gateway_id LIMIT ?`,
      ).all(...params, limit + 1) as Row[]
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
        if (medianAvailable) {
          if (r.median_snr !== null) out.medianSnr = r.median_snr as number
          if (r.median_rssi !== null) out.medianRssi = r.median_rssi as number
        } else {
          const values = stmt(
            `SELECT r.rx_snr AS snr, r.rx_rssi AS rssi FROM receptions r
             WHERE r.received_at >= ? AND r.received_at < ? AND r.gw = ? AND ${radio}`,
          ).all(since, until, r.gw) as { snr: number; rssi: number }[]
          const snr = median(values.map((v) => v.snr).sort((a, b) => a - b))
          const rssi = median(values.map((v) => v.rssi).sort((a, b) => a - b))
          if (snr !== undefined) out.medianSnr = snr
          if (rssi !== undefined) out.medianRssi = rssi
        }
        return out
      })
      const page: Page<GatewayStatsRow> = { items }
      const last = items[items.length - 1]
      if (more && last) page.nextCursor = encodeCursor('gatewayStats', [last.gatewayId])
      return page
    },

    async links(q: LinkQuery = {}) {
      const limit = limitOf(q.limit)
      const since = q.since ?? now() - 7 * 86_400_000
      const parts: string[] = []
      const params: unknown[] = []
      const n = q.node === undefined ? undefined : nodeNum(q.node)
      const directSelect = `SELECT 'direct' AS source, l.node AS a, g.num AS b, l.count AS count,
          l.first_seen AS first_seen, l.last_seen AS last_seen, l.last_snr AS snr, l.last_rssi AS rssi
        FROM links l JOIN gateways g ON g.id = l.gw WHERE g.num IS NOT NULL AND l.last_seen >= ?`
      const reportedSelect = `SELECT 'neighborinfo' AS source, n.neighbor AS a, n.node AS b, n.count AS count,
          n.first_seen AS first_seen, n.last_seen AS last_seen, n.last_snr AS snr, NULL AS rssi
        FROM neighbor_links n WHERE n.last_seen >= ?`
      if (q.source === undefined || q.source === 'direct') {
        if (n === undefined) {
          parts.push(directSelect)
          params.push(since)
        } else {
          // Both ends, each through an index: the sender (primary key), the gateway (links_gw).
          parts.push(
            `${directSelect} AND l.node = ?`,
            `${directSelect} AND l.gw IN (SELECT id FROM gateways WHERE num = ?) AND l.node <> ?`,
          )
          params.push(since, n, since, n, n)
        }
      }
      if (q.source === undefined || q.source === 'neighborinfo') {
        if (n === undefined) {
          parts.push(reportedSelect)
          params.push(since)
        } else {
          parts.push(
            `${reportedSelect} AND n.node = ?`,
            `${reportedSelect} AND n.neighbor = ? AND n.node <> ?`,
          )
          params.push(since, n, since, n, n)
        }
      }
      if (parts.length === 0) return empty()
      let after = ''
      if (q.cursor !== undefined) {
        const [s, a, b] = decodeCursor('links', q.cursor, 3)
        after = 'WHERE (source, a, b) > (?, ?, ?)'
        params.push(s, a, b)
      }
      const rows = stmt(
        `SELECT * FROM (${parts.join(' UNION ALL ')}) ${after} ORDER BY source, a, b LIMIT ?`,
      ).all(...params, limit + 1) as Row[]
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
}
