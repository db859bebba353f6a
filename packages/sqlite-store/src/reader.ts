import type {
  BoundingBox,
  GatewayStatsQuery,
  GatewayStatsRow,
  LinkQuery,
  MessageQuery,
  NodeListQuery,
  NodeRef,
  PacketKey,
  PacketQuery,
  Page,
  PositionQuery,
  Reception,
  ReceptionQuery,
  StoreCounts,
  StoredPacket,
  StoreQueries,
  TelemetryQuery,
  TimeQuery,
  TracerouteQuery,
} from '@meshtap/protocol'
import {
  bboxWraps,
  CLASS_CODE,
  type ColumnDialect,
  cellsOf,
  encodeCursor,
  gatewayStatsRow,
  limitOf,
  linkRow,
  MAX_LIMIT,
  nodeDetail,
  nodeNum,
  nodeRow,
  pageOf,
  portnums,
  type QueryChecks,
  type Row,
  receptionOf,
  searchPatterns,
  storedPacket,
  TIME_LISTS,
  type TimeList,
  timeCursor,
  timeKeyset,
} from '@meshtap/protocol/store-kit'
import { decodeCursor } from './cursor.js'
import type { SqliteDatabase, SqliteStatement } from './database.js'
import { SqliteStoreError } from './errors.js'

/** Boxes covering more 1° cells than this scan by time instead of by cell. */
const MAX_CELLS = 64

/** The read half of the store. @internal */
export interface Reader extends StoreQueries {
  getPacket(key: PacketKey): StoredPacket | undefined
  getReceptions(key: PacketKey): Reception[]
  counts(): StoreCounts
}

/** Why a filter can match nothing (a gateway or channel the store never saw). */
const NOTHING = Symbol('nothing')

/** Queries are refused with this store's errors. */
const checks: QueryChecks = {
  invalid: (message) => new SqliteStoreError('INVALID_OPTIONS', message),
  decodeCursor,
}

/** SQLite keeps booleans as 0/1 and a region or preset as the string or number it was given. */
const columns: ColumnDialect = {
  flag: (value) => value === 1,
  scalar: (value) => (value === null ? undefined : (value as string | number)),
}

/** The column names of a packet-derived table for the node / gateway / channel filters. */
interface FilterColumns {
  node: string
  ref: string
  channel: string
}
const BY_NODE: FilterColumns = { node: 'x.node', ref: 'x.packet_ref', channel: 'x.channel_ref' }
const BY_SENDER: FilterColumns = { ...BY_NODE, node: 'x.from_num' }

/** The rows of a table derived from packets (`x`), with their packet key, channel and gateway. */
function derivedSelect(table: string): string {
  return `SELECT x.*, x.received_at AS _t, x.packet_ref AS _id, p.key, c.value AS channel, g.gateway_id
         FROM ${table} x JOIN packets p ON p.id = x.packet_ref
         LEFT JOIN strings c ON c.id = x.channel_ref LEFT JOIN gateways g ON g.id = x.gw`
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

  function bboxSql(lat: string, lon: string, b: BoundingBox, params: unknown[]): string {
    const wraps = bboxWraps(b, checks)
    params.push(b.south, b.north, b.west, b.east)
    return wraps
      ? `${lat} BETWEEN ? AND ? AND (${lon} >= ? OR ${lon} <= ?)`
      : `${lat} BETWEEN ? AND ? AND ${lon} BETWEEN ? AND ?`
  }

  /** `column IN (?, …)` over the port numbers of a `portnum` filter. */
  function portnumSql(column: string, p: number | readonly number[], params: unknown[]): string {
    const list = portnums(p, checks)
    params.push(...list)
    return `${column} IN (${list.map(() => '?').join(', ')})`
  }

  /**
   * Runs a keyset-paginated list over `time` then `id` (both columns of `from`), newest first
   * unless `order: 'asc'`.
   */
  function timeList<T>(
    { list, time, id, map }: TimeList<T>,
    select: string,
    where: string[],
    params: unknown[],
    q: TimeQuery,
    split?: { column: string; values: readonly number[] },
  ): Page<T> {
    const { limit, desc, after } = timeKeyset(list, q, checks)
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
    if (after) {
      const [t, i] = after
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
    return pageOf(rows, limit, (r) => map(r, columns), timeCursor(list))
  }

  const empty = <T>(): Page<T> => ({ items: [] })

  /** Adds the node / gateway / channel filters shared by the packet-derived lists. */
  function packetFilters(
    q: { node?: NodeRef; gateway?: string; channel?: string },
    cols: FilterColumns,
    where: string[],
    params: unknown[],
  ): boolean {
    if (q.node !== undefined) {
      where.push(`${cols.node} = ?`)
      params.push(nodeNum(q.node, checks))
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

  const toNode = (r: Row) => nodeRow(r, columns)

  const NODE_SELECT = `SELECT n.*, n.last_heard AS _t, n.num AS _id, g.gateway_id AS last_gateway_id
    FROM nodes n LEFT JOIN gateways g ON g.id = n.last_gw`

  const RECEPTION_SELECT = `SELECT r.*, r.received_at AS _t, r.id AS _id, p.key, p.portnum,
      g.gateway_id, t.value AS topic, s.value AS source, c.value AS channel
    FROM receptions r JOIN packets p ON p.id = r.packet_ref
    LEFT JOIN gateways g ON g.id = r.gw AND r.gw > 0
    LEFT JOIN strings t ON t.id = r.topic_ref
    LEFT JOIN strings s ON s.id = r.source_ref
    LEFT JOIN strings c ON c.id = r.channel_ref`

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
      ).get(key) as Row | undefined
      return row ? storedPacket(row) : undefined
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
      const limit = limitOf(q.limit, checks)
      const where: string[] = []
      const params: unknown[] = []
      if (q.since !== undefined) {
        where.push('n.last_heard >= ?')
        params.push(q.since)
      }
      if (q.bbox) where.push(bboxSql('n.latitude', 'n.longitude', q.bbox, params))
      if (q.gateways) where.push('n.is_gateway = 1')
      if (q.search !== undefined && q.search !== '') {
        const like = searchPatterns(q.search)
        where.push(
          `(n.long_name LIKE ? ESCAPE '\\' OR n.short_name LIKE ? ESCAPE '\\' OR printf('!%08x', n.num) LIKE ? ESCAPE '\\')`,
        )
        params.push(like.name, like.name, like.id)
      }
      if (q.cursor !== undefined) {
        const [t, i] = decodeCursor('nodes', q.cursor, 2)
        where.push('n.last_heard <= ? AND (n.last_heard < ? OR n.num < ?)')
        params.push(t, t, i)
      }
      const sql = `${NODE_SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY n.last_heard DESC, n.num DESC LIMIT ?`
      const rows = stmt(sql).all(...params, limit + 1) as Row[]
      return pageOf(rows, limit, toNode, timeCursor('nodes'))
    },

    async getNode(ref) {
      const num = nodeNum(ref, checks)
      const row = stmt(`${NODE_SELECT} WHERE n.num = ?`).get(num) as Row | undefined
      if (!row) return undefined
      const telemetry = stmt('SELECT variant, at, metrics FROM node_telemetry WHERE num = ?').all(
        num,
      ) as Row[]
      const links = (await this.links({ node: num, since: 0, limit: MAX_LIMIT })).items.sort(
        (a, b) => b.lastSeen - a.lastSeen,
      )
      return nodeDetail(row, columns, telemetry, links)
    },

    async listPositions(q: PositionQuery = {}) {
      const where: string[] = []
      const params: unknown[] = []
      if (!packetFilters(q, BY_NODE, where, params)) return empty()
      let cells: number[] | undefined
      if (q.bbox) {
        where.push(bboxSql('x.latitude', 'x.longitude', q.bbox, params))
        cells = cellsOf(q.bbox.south, q.bbox.west, q.bbox.north, q.bbox.east, MAX_CELLS)
      }
      const select = derivedSelect('positions')
      const split = cells && { column: 'x.cell', values: cells }
      return timeList(TIME_LISTS.positions, select, where, params, q, split)
    },

    async listTelemetry(q: TelemetryQuery = {}) {
      const where: string[] = []
      const params: unknown[] = []
      if (!packetFilters(q, BY_NODE, where, params)) return empty()
      if (q.variant !== undefined) {
        where.push('x.variant = ?')
        params.push(q.variant)
      }
      const select = derivedSelect('telemetry')
      return timeList(TIME_LISTS.telemetry, select, where, params, q)
    },

    async listMessages(q: MessageQuery = {}) {
      const where: string[] = []
      const params: unknown[] = []
      if (!packetFilters(q, BY_SENDER, where, params)) return empty()
      if (q.to !== undefined) {
        where.push('x.to_num = ?')
        params.push(nodeNum(q.to, checks))
      }
      if (q.direct !== undefined) {
        where.push('x.direct = ?')
        params.push(q.direct ? 1 : 0)
      }
      const select = derivedSelect('messages')
      return timeList(TIME_LISTS.messages, select, where, params, q)
    },

    async listPackets(q: PacketQuery = {}) {
      const where = ['p.portnum IS NOT NULL']
      const params: unknown[] = []
      const cols = { node: 'p.from_num', ref: 'p.id', channel: 'p.channel_ref' }
      if (!packetFilters(q, cols, where, params)) return empty()
      if (q.to !== undefined) {
        where.push('p.to_num = ?')
        params.push(nodeNum(q.to, checks))
      }
      if (q.portnum !== undefined) where.push(portnumSql('p.portnum', q.portnum, params))
      return timeList(
        TIME_LISTS.packets,
        `SELECT p.*, p.received_at AS _t, p.id AS _id, c.value AS channel, g.gateway_id,
           (SELECT count(*) FROM receptions r WHERE r.packet_ref = p.id) AS receptions
         FROM packets p LEFT JOIN strings c ON c.id = p.channel_ref LEFT JOIN gateways g ON g.id = p.gw`,
        where,
        params,
        q,
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
        params.push(nodeNum(q.node, checks))
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
      if (q.portnum !== undefined) where.push(portnumSql('p.portnum', q.portnum, params))
      if (q.receptionClass !== undefined) {
        where.push('r.class = ?')
        params.push(CLASS_CODE[q.receptionClass] ?? -1)
      }
      return timeList(TIME_LISTS.receptions, RECEPTION_SELECT, where, params, q)
    },

    async listTraceroutes(q: TracerouteQuery = {}) {
      const where: string[] = []
      const params: unknown[] = []
      if (q.node !== undefined) {
        const n = nodeNum(q.node, checks)
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
        TIME_LISTS.traceroutes,
        `SELECT x.*, x.received_at AS _t, x.id AS _id, p.key, g.gateway_id
         FROM traceroutes x JOIN packets p ON p.id = x.packet_ref
         LEFT JOIN gateways g ON g.id = x.gw AND x.gw > 0`,
        where,
        params,
        q,
      )
    },

    async gatewayStats(q: GatewayStatsQuery = {}) {
      const limit = limitOf(q.limit, checks)
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
      const toStats = (r: Row): GatewayStatsRow => {
        const out = gatewayStatsRow(r)
        if (!medianAvailable) {
          // No median() in this SQLite build: the window's radio values of the gateway, sorted here.
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
      }
      return pageOf(rows, limit, toStats, (last) =>
        encodeCursor('gatewayStats', [last.gateway_id as string]),
      )
    },

    async links(q: LinkQuery = {}) {
      const limit = limitOf(q.limit, checks)
      const since = q.since ?? now() - 7 * 86_400_000
      const parts: string[] = []
      const params: unknown[] = []
      const n = q.node === undefined ? undefined : nodeNum(q.node, checks)
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
      return pageOf(rows, limit, linkRow, (last) =>
        encodeCursor('links', [last.source as string, last.a as number, last.b as number]),
      )
    },
  }
}
