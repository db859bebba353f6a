import type {
  BoundingBox,
  GatewayStatsQuery,
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
  nodeNum as validNodeNum,
} from '@meshtap/protocol/store-kit'
import { decodeCursor } from './cursor.js'
import { PgStoreError } from './errors.js'
import { ident, type PgPool, TYPES } from './pool.js'

export { receptionOf } from '@meshtap/protocol/store-kit'

/** The read half of the store. @internal */
export interface Reader extends StoreQueries {
  getPacket(key: PacketKey): Promise<StoredPacket | undefined>
  getReceptions(key: PacketKey): Promise<Reception[]>
  counts(): Promise<StoreCounts>
}

/** Boxes covering more 1° cells than this scan by time instead of by cell. */
const MAX_CELLS = 64

/** Why a filter can match nothing (a gateway or channel the store never saw). */
const NOTHING = Symbol('nothing')

/** Queries are refused with this store's errors. */
const checks: QueryChecks = {
  invalid: (message) => new PgStoreError('INVALID_OPTIONS', message),
  decodeCursor,
}

/** PostgreSQL has real booleans, and keeps a region or preset (string or number) as JSON text. */
const columns: ColumnDialect = {
  flag: (value) => value === true,
  scalar: (value) =>
    typeof value === 'string' ? (JSON.parse(value) as string | number) : undefined,
}

/** A node number from a number or a `!xxxxxxxx` id. @internal */
export function nodeNum(node: NodeRef): number {
  return validNodeNum(node, checks)
}

/** Positional parameters: `p(value)` adds one and returns its placeholder. */
class Params {
  readonly values: unknown[] = []
  p(value: unknown): string {
    this.values.push(value)
    return `$${this.values.length}`
  }
}

/** `column = ANY(…)` over the port numbers of a `portnum` filter. */
function portnumSql(column: string, p: number | readonly number[], params: Params): string {
  return `${column} = ANY(${params.p(`{${portnums(p, checks).join(',')}}`)}::int[])`
}

/** The column names of a packet-derived table for the node / gateway / channel filters. */
interface FilterColumns {
  node: string
  ref: string
  day: string
  channel: string
}
const BY_NODE: FilterColumns = {
  node: 'x.node',
  ref: 'x.packet_ref',
  day: 'x.day',
  channel: 'x.channel_ref',
}
const BY_SENDER: FilterColumns = { ...BY_NODE, node: 'x.from_num' }

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
    const wraps = bboxWraps(b, checks)
    const south = q.p(b.south)
    const north = q.p(b.north)
    const west = q.p(b.west)
    const east = q.p(b.east)
    return wraps
      ? `${lat} BETWEEN ${south} AND ${north} AND (${lon} >= ${west} OR ${lon} <= ${east})`
      : `${lat} BETWEEN ${south} AND ${north} AND ${lon} BETWEEN ${west} AND ${east}`
  }

  /** The rows of a table derived from packets (`x`), with their packet key, channel and gateway. */
  function derivedSelect(table: string): string {
    return `SELECT x.*, x.received_at AS _t, x.packet_ref AS _id, p.key, c.value AS channel, g.gateway_id
         FROM ${s}.${table} x JOIN ${s}.packets p ON p.id = x.packet_ref
         LEFT JOIN ${s}.strings c ON c.id = x.channel_ref LEFT JOIN ${s}.gateways g ON g.id = x.gw`
  }

  /**
   * Runs a keyset-paginated list over `time` then `id` (both columns of `from`), newest first
   * unless `order: 'asc'`.
   */
  async function timeList<T>(
    { list, time, id, map }: TimeList<T>,
    select: string,
    where: string[],
    params: Params,
    q: TimeQuery,
  ): Promise<Page<T>> {
    const { limit, desc, after } = timeKeyset(list, q, checks)
    const w = [...where]
    if (q.since !== undefined) w.push(`${time} >= ${params.p(q.since)}`)
    if (q.until !== undefined) w.push(`${time} < ${params.p(q.until)}`)
    if (after) {
      const [t, i] = after
      w.push(
        `(${time}, ${id}) ${desc ? '<' : '>'} (${params.p(t)}::bigint, ${params.p(i)}::bigint)`,
      )
    }
    const dir = desc ? 'DESC' : 'ASC'
    const text = `${select} ${w.length ? `WHERE ${w.join(' AND ')}` : ''} ORDER BY ${time} ${dir}, ${id} ${dir} LIMIT ${params.p(limit + 1)}`
    const rows = await all(text, params.values)
    return pageOf(rows, limit, (r) => map(r, columns), timeCursor(list))
  }

  const empty = <T>(): Page<T> => ({ items: [] })

  /** Adds the node / gateway / channel filters shared by the packet-derived lists. */
  async function packetFilters(
    q: { node?: NodeRef; gateway?: string; channel?: string },
    cols: FilterColumns,
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
  const toNode = (r: Row) => nodeRow(r, columns)

  const reader: Reader = {
    async getPacket(key) {
      const rows = await all(
        `SELECT key, received_at, json FROM ${s}.packets WHERE key = $1 AND json IS NOT NULL`,
        [key],
      )
      const row = rows[0]
      return row ? storedPacket(row) : undefined
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
      const limit = limitOf(q.limit, checks)
      const where: string[] = []
      const params = new Params()
      if (q.since !== undefined) where.push(`n.last_heard >= ${params.p(q.since)}`)
      if (q.bbox) where.push(bboxSql('n.latitude', 'n.longitude', q.bbox, params))
      if (q.gateways) where.push('n.is_gateway')
      if (q.search !== undefined && q.search !== '') {
        const patterns = searchPatterns(q.search)
        const like = params.p(patterns.name)
        const id = params.p(patterns.id)
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
      return pageOf(await all(text, params.values), limit, toNode, timeCursor('nodes'))
    },

    async getNode(ref) {
      const num = nodeNum(ref)
      const rows = await all(`${NODES} WHERE n.num = $1`, [num])
      const row = rows[0]
      if (!row) return undefined
      const telemetry = await all(
        `SELECT variant, at, metrics FROM ${s}.node_telemetry WHERE num = $1`,
        [num],
      )
      const links = (await reader.links({ node: num, since: 0, limit: MAX_LIMIT })).items.sort(
        (a, b) => b.lastSeen - a.lastSeen,
      )
      return nodeDetail(row, columns, telemetry, links)
    },

    async listPositions(q: PositionQuery = {}) {
      const where: string[] = []
      const params = new Params()
      if (!(await packetFilters(q, BY_NODE, where, params))) return empty()
      if (q.bbox) {
        where.push(bboxSql('x.latitude', 'x.longitude', q.bbox, params))
        const cells = cellsOf(q.bbox.south, q.bbox.west, q.bbox.north, q.bbox.east, MAX_CELLS)
        if (cells) where.push(`x.cell = ANY(${params.p(`{${cells.join(',')}}`)}::int[])`)
      }
      const select = derivedSelect('positions')
      return timeList(TIME_LISTS.positions, select, where, params, q)
    },

    async listTelemetry(q: TelemetryQuery = {}) {
      const where: string[] = []
      const params = new Params()
      if (!(await packetFilters(q, BY_NODE, where, params))) return empty()
      if (q.variant !== undefined) where.push(`x.variant = ${params.p(q.variant)}`)
      const select = derivedSelect('telemetry')
      return timeList(TIME_LISTS.telemetry, select, where, params, q)
    },

    async listMessages(q: MessageQuery = {}) {
      const where: string[] = []
      const params = new Params()
      if (!(await packetFilters(q, BY_SENDER, where, params))) return empty()
      if (q.to !== undefined) where.push(`x.to_num = ${params.p(nodeNum(q.to))}`)
      if (q.direct !== undefined) where.push(`x.direct = ${params.p(q.direct)}`)
      const select = derivedSelect('messages')
      return timeList(TIME_LISTS.messages, select, where, params, q)
    },

    async listPackets(q: PacketQuery = {}) {
      const where = ['p.portnum IS NOT NULL']
      const params = new Params()
      const cols = { node: 'p.from_num', ref: 'p.id', day: 'p.day', channel: 'p.channel_ref' }
      if (!(await packetFilters(q, cols, where, params))) return empty()
      if (q.to !== undefined) where.push(`p.to_num = ${params.p(nodeNum(q.to))}`)
      if (q.portnum !== undefined) where.push(portnumSql('p.portnum', q.portnum, params))
      return timeList(
        TIME_LISTS.packets,
        `SELECT p.*, p.received_at AS _t, p.id AS _id, c.value AS channel, g.gateway_id,
           (SELECT count(*) FROM ${s}.receptions r WHERE r.day = p.day AND r.packet_ref = p.id) AS receptions
         FROM ${s}.packets p LEFT JOIN ${s}.strings c ON c.id = p.channel_ref
         LEFT JOIN ${s}.gateways g ON g.id = p.gw`,
        where,
        params,
        q,
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
      if (q.portnum !== undefined) where.push(portnumSql('p.portnum', q.portnum, params))
      if (q.receptionClass !== undefined) {
        where.push(`r.class = ${params.p(CLASS_CODE[q.receptionClass] ?? -1)}`)
      }
      return timeList(TIME_LISTS.receptions, RECEPTIONS, where, params, q)
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
        TIME_LISTS.traceroutes,
        `SELECT x.*, x.received_at AS _t, x.id AS _id, p.key, g.gateway_id
         FROM ${s}.traceroutes x JOIN ${s}.packets p ON p.id = x.packet_ref
         LEFT JOIN ${s}.gateways g ON g.id = x.gw AND x.gw > 0`,
        where,
        params,
        q,
      )
    },

    async gatewayStats(q: GatewayStatsQuery = {}) {
      const limit = limitOf(q.limit, checks)
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
      return pageOf(rows, limit, gatewayStatsRow, (last) =>
        encodeCursor('gatewayStats', [last.gateway_id as string]),
      )
    },

    async links(q: LinkQuery = {}) {
      const limit = limitOf(q.limit, checks)
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
      return pageOf(rows, limit, linkRow, (last) =>
        encodeCursor('links', [last.source as string, last.a as number, last.b as number]),
      )
    },
  }
  return reader
}
