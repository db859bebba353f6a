import type {
  AppPayload,
  DecodedPacket,
  Reception,
  StoredPacket,
  WriteBatch,
} from '@meshtap/protocol'
import {
  Aggregates,
  CLASS_CODE,
  cellOf,
  fromOfKey,
  idOfKey,
  isDirect,
  isText,
  nodeNumOf,
  nul,
  packPacket,
  splitMetrics,
  TELEMETRY_COLUMNS,
  unpackPacket,
} from '@meshtap/protocol/store-kit'
import { Columns, cleanText, numArray, textArray } from './arrays.js'
import { FifoMap } from './bounded.js'
import { PgStoreError } from './errors.js'
import { dayOf } from './partitions.js'
import { ident, type PgPoolClient, TYPES } from './pool.js'

/** Where a packet key's rows live. @internal */
export interface PacketRef {
  id: number
  day: number
  decoded: boolean
}

/** The rows a committed transaction added, for the change log and the caller. @internal */
export interface WriteResult {
  /** Packets stored (new) or filled (a placeholder or undecoded packet now decoded). */
  packets: number[]
  receptions: number[]
  undecoded: number[]
  /** Partition days the new rows went to. */
  days: number[]
  /** Smallest and largest `received_at` of the new receptions. */
  receivedAt?: [number, number]
}

/** What a placeholder packet row is made of: a record refers to a packet not stored yet. */
interface Wanted {
  from: number | null
  to: number | null
  id: number | null
  at: number
}

/** Thrown inside a transaction when a row would go to a day without partitions. @internal */
export class MissingPartitions extends Error {
  constructor(readonly days: number[]) {
    super(`[pg-store] no partitions for days ${days.join(', ')}`)
  }
}

/** The state a transaction builds before it commits (caches are updated only after COMMIT). */
interface Tx {
  strings: Map<string, number>
  gateways: Map<string, number>
  keys: Map<string, PacketRef>
  result: WriteResult
  days: Set<number>
  agg: Aggregates
  typed: Typed
}

const POSITION_COLUMNS = [
  ['day', 'int'],
  ['packet_ref', 'bigint'],
  ['node', 'bigint'],
  ['received_at', 'bigint'],
  ['time', 'bigint'],
  ['latitude', 'float'],
  ['longitude', 'float'],
  ['altitude', 'float'],
  ['precision_bits', 'int'],
  ['radius_m', 'float'],
  ['sats_in_view', 'int'],
  ['ground_speed', 'float'],
  ['ground_track', 'float'],
  ['channel_ref', 'int'],
  ['gw', 'int'],
  ['cell', 'int'],
] as const

const TELEMETRY_SPEC = [
  ['day', 'int'],
  ['packet_ref', 'bigint'],
  ['node', 'bigint'],
  ['received_at', 'bigint'],
  ['time', 'bigint'],
  ['variant', 'text'],
  ...TELEMETRY_COLUMNS.map(
    (c) => [c[0], c[0] === 'uptime_seconds' ? 'bigint' : 'float'] as readonly [string, 'float'],
  ),
  ['extra', 'text'],
  ['channel_ref', 'int'],
  ['gw', 'int'],
] as const

const MESSAGE_COLUMNS = [
  ['day', 'int'],
  ['packet_ref', 'bigint'],
  ['from_num', 'bigint'],
  ['to_num', 'bigint'],
  ['packet_id', 'bigint'],
  ['received_at', 'bigint'],
  ['rx_time', 'bigint'],
  ['channel_ref', 'int'],
  ['direct', 'bool'],
  ['type', 'text'],
  ['text', 'text'],
  ['reply_id', 'bigint'],
  ['emoji', 'bigint'],
  ['is_reaction', 'bool'],
  ['hops_away', 'int'],
  ['gw', 'int'],
] as const

const TRACEROUTE_COLUMNS = [
  ['day', 'int'],
  ['packet_ref', 'bigint'],
  ['gw', 'int'],
  ['from_num', 'bigint'],
  ['to_num', 'bigint'],
  ['received_at', 'bigint'],
  ['request_id', 'bigint'],
  ['route', 'text'],
] as const

const NEIGHBOR_COLUMNS = [
  ['day', 'int'],
  ['packet_ref', 'bigint'],
  ['neighbor', 'bigint'],
  ['node', 'bigint'],
  ['received_at', 'bigint'],
  ['snr', 'float'],
  ['last_rx_time', 'bigint'],
  ['broadcast_interval', 'bigint'],
] as const

const MAP_REPORT_COLUMNS = [
  ['day', 'int'],
  ['packet_ref', 'bigint'],
  ['node', 'bigint'],
  ['received_at', 'bigint'],
  ['long_name', 'text'],
  ['short_name', 'text'],
  ['firmware_version', 'text'],
  ['latitude', 'float'],
  ['longitude', 'float'],
  ['radius_m', 'float'],
  ['json', 'text'],
] as const

const WAYPOINT_COLUMNS = [
  ['day', 'int'],
  ['packet_ref', 'bigint'],
  ['node', 'bigint'],
  ['received_at', 'bigint'],
  ['waypoint_id', 'bigint'],
  ['name', 'text'],
  ['description', 'text'],
  ['latitude', 'float'],
  ['longitude', 'float'],
  ['expire', 'bigint'],
  ['json', 'text'],
] as const

const PACKET_COLUMNS = [
  ['key', 'text'],
  ['day', 'int'],
  ['from_num', 'bigint'],
  ['to_num', 'bigint'],
  ['packet_id', 'bigint'],
  ['portnum', 'int'],
  ['channel_ref', 'int'],
  ['gw', 'int'],
  ['received_at', 'bigint'],
  ['rx_time', 'bigint'],
  ['hops_away', 'int'],
  ['json', 'text'],
] as const

const RECEPTION_COLUMNS = [
  ['day', 'int'],
  ['packet_ref', 'bigint'],
  ['gw', 'int'],
  ['from_num', 'bigint'],
  ['topic_ref', 'int'],
  ['source_ref', 'int'],
  ['channel_ref', 'int'],
  ['rx_time', 'bigint'],
  ['received_at', 'bigint'],
  ['rx_snr', 'float'],
  ['rx_rssi', 'int'],
  ['hop_limit', 'int'],
  ['hop_start', 'int'],
  ['relay_node', 'int'],
  ['hops_away', 'int'],
  ['class', 'smallint'],
  ['app', 'text'],
] as const

const UNDECODED_COLUMNS = [
  ['day', 'int'],
  ['packet_ref', 'bigint'],
  ['gw', 'int'],
  ['from_num', 'bigint'],
  ['to_num', 'bigint'],
  ['packet_id', 'bigint'],
  ['channel_hash', 'int'],
  ['channel_ref', 'int'],
  ['topic_ref', 'int'],
  ['received_at', 'bigint'],
  ['error_code', 'text'],
  ['ciphertext', 'text'],
  ['failure', 'text'],
] as const

const NODE_COLUMNS = [
  ['num', 'bigint'],
  ['first_seen', 'bigint'],
  ['last_heard', 'bigint'],
  ['packets', 'bigint'],
  ['is_gateway', 'bool'],
  ['long_name', 'text'],
  ['short_name', 'text'],
  ['user_json', 'text'],
  ['info_at', 'bigint'],
  ['latitude', 'float'],
  ['longitude', 'float'],
  ['altitude', 'float'],
  ['precision_bits', 'int'],
  ['radius_m', 'float'],
  ['position_at', 'bigint'],
  ['position_src', 'smallint'],
  ['device_json', 'text'],
  ['device_at', 'bigint'],
  ['last_gw', 'int'],
  ['last_snr', 'float'],
  ['last_rssi', 'int'],
  ['last_class', 'smallint'],
  ['hops_away', 'int'],
  ['reception_at', 'bigint'],
  ['firmware_version', 'text'],
  ['region', 'text'],
  ['modem_preset', 'text'],
  ['map_json', 'text'],
  ['map_at', 'bigint'],
] as const

const NODE_TELEMETRY_COLUMNS = [
  ['num', 'bigint'],
  ['variant', 'text'],
  ['at', 'bigint'],
  ['metrics', 'text'],
] as const

const LINK_COLUMNS = [
  ['node', 'bigint'],
  ['gw', 'int'],
  ['first_seen', 'bigint'],
  ['last_seen', 'bigint'],
  ['count', 'bigint'],
  ['last_snr', 'float'],
  ['last_rssi', 'int'],
] as const

const NEIGHBOR_LINK_COLUMNS = [
  ['node', 'bigint'],
  ['neighbor', 'bigint'],
  ['first_seen', 'bigint'],
  ['last_seen', 'bigint'],
  ['count', 'bigint'],
  ['last_snr', 'float'],
] as const

/** What a transaction announces on the change feed's channel. @internal */
export interface Announcement {
  channel: string
  at: number
  payload: string
}

type Spec = readonly (readonly [string, Columns<string>['spec'][number][1]])[]

/** The typed rows of a transaction, one column set per table. */
interface Typed {
  positions: Columns<string>
  telemetry: Columns<string>
  messages: Columns<string>
  traceroutes: Columns<string>
  neighbors: Columns<string>
  mapReports: Columns<string>
  waypoints: Columns<string>
}

function typedColumns(): Typed {
  const c = (spec: Spec) => new Columns<string>(spec)
  return {
    positions: c(POSITION_COLUMNS),
    telemetry: c(TELEMETRY_SPEC),
    messages: c(MESSAGE_COLUMNS),
    traceroutes: c(TRACEROUTE_COLUMNS),
    neighbors: c(NEIGHBOR_COLUMNS),
    mapReports: c(MAP_REPORT_COLUMNS),
    waypoints: c(WAYPOINT_COLUMNS),
  }
}

function guarded(guard: string, columns: readonly string[]): string[] {
  return columns.map((c) => `${c} = CASE WHEN ${guard} THEN excluded.${c} ELSE n.${c} END`)
}

function int(v: number | undefined | null): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : null
}

function routeJson(app: Extract<AppPayload, { type: 'traceroute' }>): string {
  return JSON.stringify({
    route: app.route,
    snrTowardsDb: app.snrTowardsDb,
    routeBack: app.routeBack,
    snrBackDb: app.snrBackDb,
  })
}

/**
 * The write half of the store: statements, caches and derived state. `write` runs inside the
 * caller's transaction; `committed` publishes the transaction's cache entries after COMMIT.
 * @internal
 */
export interface Writer {
  /**
   * Writes the records of a batch in the caller's transaction; `announce` turns what was added
   * into the change announcement written in the same statement as the derived state.
   */
  write(
    client: PgPoolClient,
    batch: WriteBatch,
    announce?: (r: WriteResult) => Announcement | undefined,
  ): Promise<WriteResult>
  /** Writes decoded packets (new ones, or filling placeholders), with typed rows and state. */
  writePackets(
    client: PgPoolClient,
    packets: readonly StoredPacket[],
    announce?: (r: WriteResult) => Announcement | undefined,
  ): Promise<WriteResult>
  /** After COMMIT: the transaction's ids and refs become cache entries. */
  committed(): void
  /** After ROLLBACK: forgets the transaction and every cached packet ref. */
  rolledBack(): void
  /** Forgets cached packet refs (rows deleted by retention). */
  forgetRefs(): void
  /** Fills the typed tables and links from the packets and receptions already stored. */
  backfill(client: PgPoolClient): Promise<void>
  /** The days the records of a batch go to when their packets are new (for partitions). */
  daysOf(batch: WriteBatch): number[]
}

/** Prepares the writer for a migrated schema. @internal */
export function createWriter(
  schema: string,
  options: {
    keyCacheSize?: number
    /** Days without partitions: the write must stop before inserting into them. */
    missing: (days: Iterable<number>) => number[]
  },
): Writer {
  const s = ident(schema)
  const strings = new FifoMap<string, number>(10_000)
  const gateways = new FifoMap<string, number>(10_000)
  const keys = new FifoMap<string, PacketRef>(options.keyCacheSize ?? 100_000)
  let tx: Tx | undefined

  const sql = {
    strings: `WITH v AS (SELECT DISTINCT value FROM unnest($1::text[]) AS value),
      ins AS (INSERT INTO ${s}.strings (value) SELECT value FROM v ORDER BY value
        ON CONFLICT (value) DO NOTHING RETURNING id, value)
      SELECT id, value FROM ins UNION ALL SELECT id, value FROM ${s}.strings WHERE value = ANY($1::text[])`,
    stringsAgain: `SELECT id, value FROM ${s}.strings WHERE value = ANY($1::text[])`,
    gateways: `WITH v AS (SELECT DISTINCT ON (gateway_id) * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u (gateway_id, num, first_seen)),
      ins AS (INSERT INTO ${s}.gateways (gateway_id, num, first_seen) SELECT * FROM v ORDER BY gateway_id
        ON CONFLICT (gateway_id) DO NOTHING RETURNING id, gateway_id)
      SELECT id, gateway_id FROM ins UNION ALL SELECT id, gateway_id FROM ${s}.gateways WHERE gateway_id = ANY($1::text[])`,
    gatewaysAgain: `SELECT id, gateway_id FROM ${s}.gateways WHERE gateway_id = ANY($1::text[])`,
    insertPackets: (c: Columns<string>) =>
      `INSERT INTO ${s}.packets (id, ${c.names()})
       SELECT * FROM (SELECT nextval('${s}.packet_ids'), u.* FROM ${c.unnest()}) AS x ORDER BY key
       ON CONFLICT (key) DO NOTHING RETURNING id, key, day, portnum IS NOT NULL AS decoded`,
    fillPackets: (c: Columns<string>) =>
      `UPDATE ${s}.packets p SET from_num = u.from_num, to_num = u.to_num, packet_id = u.packet_id,
         portnum = u.portnum, channel_ref = u.channel_ref, gw = u.gw, received_at = u.received_at,
         rx_time = u.rx_time, hops_away = u.hops_away, json = u.json
       FROM ${c.unnest()} WHERE p.key = u.key AND p.portnum IS NULL RETURNING p.id, p.key, p.day`,
    refs: `SELECT id, key, day, portnum IS NOT NULL AS decoded FROM ${s}.packets WHERE key = ANY($1::text[])`,
    insertCopies: (r: Columns<string>, u: Columns<string>) =>
      `WITH r AS (INSERT INTO ${s}.receptions (id, ${r.names()})
         SELECT * FROM (SELECT nextval('${s}.reception_ids'), u.* FROM ${r.unnest()}) AS x
         ORDER BY day, packet_ref, gw
         ON CONFLICT (day, packet_ref, gw) DO NOTHING RETURNING id, day, packet_ref, gw),
       d AS (INSERT INTO ${s}.undecoded (id, ${u.names()})
         SELECT x.id, x.day, x.packet_ref, x.gw, x.from_num, x.to_num, x.packet_id, x.channel_hash,
           x.channel_ref, x.topic_ref, x.received_at, x.error_code, decode(x.ciphertext, 'base64'), x.failure
         FROM (SELECT nextval('${s}.undecoded_ids') AS id, u.* FROM ${u.unnest(r.spec.length)}) AS x
         ORDER BY x.day, x.packet_ref, x.gw
         ON CONFLICT (day, packet_ref, gw) DO NOTHING RETURNING id, day, packet_ref, gw)
       SELECT true AS reception, id, day, packet_ref, gw FROM r
       UNION ALL SELECT false, id, day, packet_ref, gw FROM d`,
    dropUndecoded: `DELETE FROM ${s}.undecoded WHERE (day, packet_ref) IN
       (SELECT * FROM unnest($1::int[], $2::bigint[]))`,
    heads: `SELECT id, from_num, to_num, json FROM ${s}.packets WHERE id = ANY($1::bigint[])`,
    insertTyped: (
      table: string,
      c: Columns<string>,
      conflict: string,
      seq: string | undefined,
      offset: number,
    ) =>
      seq
        ? `INSERT INTO ${s}.${table} (id, ${c.names()})
           SELECT * FROM (SELECT nextval('${s}.${seq}'), u.* FROM ${c.unnest(offset)}) AS x ORDER BY ${conflict}
           ON CONFLICT (${conflict}) DO NOTHING`
        : `INSERT INTO ${s}.${table} (${c.names()}) SELECT * FROM ${c.unnest(offset)} ORDER BY ${conflict}
           ON CONFLICT (${conflict}) DO NOTHING`,
    upsertNodes: (c: Columns<string>, offset: number) => `INSERT INTO ${s}.nodes AS n (${c.names()})
      SELECT * FROM ${c.unnest(offset)} ORDER BY num
      ON CONFLICT (num) DO UPDATE SET
        first_seen = least(n.first_seen, excluded.first_seen),
        last_heard = greatest(n.last_heard, excluded.last_heard),
        packets = n.packets + excluded.packets,
        is_gateway = n.is_gateway OR excluded.is_gateway,
        ${[
          ...guarded('excluded.info_at >= coalesce(n.info_at, -1)', [
            'long_name',
            'short_name',
            'user_json',
            'info_at',
          ]),
          ...guarded(
            'excluded.position_at IS NOT NULL AND (n.position_at IS NULL OR (excluded.position_at >= n.position_at AND (excluded.position_src = 0 OR n.position_src = 1)))',
            [
              'latitude',
              'longitude',
              'altitude',
              'precision_bits',
              'radius_m',
              'position_at',
              'position_src',
            ],
          ),
          ...guarded('excluded.device_at >= coalesce(n.device_at, -1)', [
            'device_json',
            'device_at',
          ]),
          ...guarded('excluded.reception_at >= coalesce(n.reception_at, -1)', [
            'last_gw',
            'last_snr',
            'last_rssi',
            'last_class',
            'hops_away',
            'reception_at',
          ]),
          ...guarded('excluded.map_at >= coalesce(n.map_at, -1)', [
            'firmware_version',
            'region',
            'modem_preset',
            'map_json',
            'map_at',
          ]),
        ].join(',\n        ')}`,
    upsertNodeTelemetry: (
      c: Columns<string>,
      offset: number,
    ) => `INSERT INTO ${s}.node_telemetry AS t (${c.names()})
      SELECT * FROM ${c.unnest(offset)} ORDER BY num, variant
      ON CONFLICT (num, variant) DO UPDATE SET at = excluded.at, metrics = excluded.metrics
      WHERE excluded.at >= t.at`,
    upsertLinks: (c: Columns<string>, offset: number) => `INSERT INTO ${s}.links AS l (${c.names()})
      SELECT * FROM ${c.unnest(offset)} ORDER BY node, gw
      ON CONFLICT (node, gw) DO UPDATE SET
        first_seen = least(l.first_seen, excluded.first_seen),
        count = l.count + excluded.count,
        last_snr = CASE WHEN excluded.last_seen >= l.last_seen THEN excluded.last_snr ELSE l.last_snr END,
        last_rssi = CASE WHEN excluded.last_seen >= l.last_seen THEN excluded.last_rssi ELSE l.last_rssi END,
        last_seen = greatest(l.last_seen, excluded.last_seen)`,
    upsertNeighborLinks: (
      c: Columns<string>,
      offset: number,
    ) => `INSERT INTO ${s}.neighbor_links AS l (${c.names()})
      SELECT * FROM ${c.unnest(offset)} ORDER BY node, neighbor
      ON CONFLICT (node, neighbor) DO UPDATE SET
        first_seen = least(l.first_seen, excluded.first_seen),
        count = l.count + excluded.count,
        last_snr = CASE WHEN excluded.last_seen >= l.last_seen THEN excluded.last_snr ELSE l.last_snr END,
        last_seen = greatest(l.last_seen, excluded.last_seen)`,
  }

  async function query<R>(
    client: PgPoolClient,
    text: string,
    values: unknown[],
    name?: string,
  ): Promise<R[]> {
    const res = await client.query({ text, values, types: TYPES, ...(name ? { name } : {}) })
    return res.rows as R[]
  }

  function begin(): Tx {
    tx = {
      strings: new Map(),
      gateways: new Map(),
      keys: new Map(),
      result: { packets: [], receptions: [], undecoded: [], days: [] },
      days: new Set(),
      agg: new Aggregates(),
      typed: typedColumns(),
    }
    return tx
  }

  function current(): Tx {
    return tx ?? begin()
  }

  function stringId(t: Tx, value: string | undefined): number | null {
    if (value === undefined) return null
    return t.strings.get(value) ?? strings.get(value) ?? null
  }

  function gatewayRef(t: Tx, gatewayId: string | undefined): number | null {
    if (gatewayId === undefined) return null
    return t.gateways.get(gatewayId) ?? gateways.get(gatewayId) ?? null
  }

  function refOf(t: Tx, key: string): PacketRef | undefined {
    return t.keys.get(key) ?? keys.get(key)
  }

  /** Interns the strings and gateways the records use that no cache knows yet. */
  async function intern(
    client: PgPoolClient,
    t: Tx,
    values: Set<string>,
    gws: Map<string, number>,
  ): Promise<void> {
    const newStrings = [...values].filter((v) => stringId(t, v) === null).map(cleanText)
    if (newStrings.length > 0) {
      let rows = await query<{ id: number; value: string }>(
        client,
        sql.strings,
        [textArray(newStrings)],
        `meshtap:${schema}:strings`,
      )
      for (const r of rows) t.strings.set(r.value, r.id)
      const again = newStrings.filter((v) => !t.strings.has(v))
      if (again.length > 0) {
        rows = await query(client, sql.stringsAgain, [textArray(again)])
        for (const r of rows) t.strings.set(r.value, r.id)
      }
    }
    const newGateways = [...gws.keys()].filter((g) => gatewayRef(t, g) === null)
    if (newGateways.length > 0) {
      let rows = await query<{ id: number; gateway_id: string }>(
        client,
        sql.gateways,
        [
          textArray(newGateways.map(cleanText)),
          numArray(newGateways.map((g) => nodeNumOf(g))),
          numArray(newGateways.map((g) => gws.get(g) ?? null)),
        ],
        `meshtap:${schema}:gateways`,
      )
      for (const r of rows) t.gateways.set(r.gateway_id, r.id)
      const again = newGateways.filter((g) => !t.gateways.has(g))
      if (again.length > 0) {
        rows = await query(client, sql.gatewaysAgain, [textArray(again)])
        for (const r of rows) t.gateways.set(r.gateway_id, r.id)
      }
    }
  }

  /** A copy's identity within its packet: the gateway, else the topic, else nothing. */
  function identity(t: Tx, gw: number | null, topic: string | undefined): number {
    if (gw !== null) return gw
    const id = stringId(t, topic)
    return id === null ? 0 : -id
  }

  /** Adds the typed rows and the node state of one decoded packet to the transaction. */
  function typedRows(t: Tx, ref: PacketRef, sp: StoredPacket, count = true): void {
    const p = sp.packet
    const at = sp.receivedAt
    const app = p.app
    const from = p.from >>> 0
    const channel = stringId(t, p.channelId)
    const gw = gatewayRef(t, p.gatewayId)
    const day = ref.day
    const n = t.agg.node(from, at)
    if (count) n.packets++
    const ty = t.typed
    t.days.add(day)
    switch (app?.type) {
      case 'position': {
        if (app.latitude === undefined || app.longitude === undefined) break
        const pos = app.position
        ty.positions.push({
          day,
          packet_ref: ref.id,
          node: from,
          received_at: at,
          time: int(pos.time),
          latitude: app.latitude,
          longitude: app.longitude,
          altitude: nul(app.altitude),
          precision_bits: int(app.precisionBits),
          radius_m: nul(app.radiusM),
          sats_in_view: int(pos.satsInView),
          ground_speed: nul(pos.groundSpeed),
          ground_track: nul(pos.groundTrack),
          channel_ref: channel,
          gw,
          cell: cellOf(app.latitude, app.longitude),
        })
        t.agg.setPosition(n, {
          lat: app.latitude,
          lon: app.longitude,
          alt: nul(app.altitude),
          bits: nul(app.precisionBits),
          radius: nul(app.radiusM),
          at,
          src: 0,
        })
        break
      }
      case 'telemetry': {
        const { columns, extra } = splitMetrics(app.variant, app.metrics)
        const row: Record<string, unknown> = {
          day,
          packet_ref: ref.id,
          node: from,
          received_at: at,
          time: int(app.telemetry.time),
          variant: app.variant,
          extra,
          channel_ref: channel,
          gw,
        }
        TELEMETRY_COLUMNS.forEach(([c], i) => {
          row[c] = columns[i]
        })
        ty.telemetry.push(row)
        if (app.variant !== 'unknown') {
          const json = JSON.stringify(app.metrics)
          t.agg.setTelemetry({ num: from, variant: app.variant, at, json })
          if (app.variant === 'device') t.agg.setDevice(n, { json, at })
        }
        break
      }
      case 'nodeinfo':
        t.agg.setUser(n, {
          longName: nul(app.user.longName),
          shortName: nul(app.user.shortName),
          json: JSON.stringify(app.user),
          at,
        })
        break
      case 'traceroute':
        ty.traceroutes.push({
          day,
          packet_ref: ref.id,
          gw: gw ?? 0,
          from_num: from,
          to_num: p.to >>> 0,
          received_at: at,
          request_id: nul(p.requestId),
          route: routeJson(app),
        })
        break
      case 'neighborinfo': {
        const info = app.neighborInfo
        const reporter =
          typeof info.nodeId === 'number' && info.nodeId !== 0 ? info.nodeId >>> 0 : from
        const seen = new Set<number>()
        for (const nb of info.neighbors ?? []) {
          if (typeof nb.nodeId !== 'number') continue
          const neighbor = nb.nodeId >>> 0
          // Like the SQLite store: a neighbour listed twice counts twice in the link (its last
          // SNR wins) but has one row.
          t.agg.neighbor(reporter, neighbor, at, nul(nb.snr))
          if (seen.has(neighbor)) continue
          seen.add(neighbor)
          ty.neighbors.push({
            day,
            packet_ref: ref.id,
            neighbor,
            node: reporter,
            received_at: at,
            snr: nul(nb.snr),
            last_rx_time: int(nb.lastRxTime),
            broadcast_interval: int(nb.nodeBroadcastIntervalSecs ?? info.nodeBroadcastIntervalSecs),
          })
        }
        break
      }
      case 'mapreport': {
        const m = app.mapReport
        const json = JSON.stringify(m)
        ty.mapReports.push({
          day,
          packet_ref: ref.id,
          node: from,
          received_at: at,
          long_name: nul(m.longName),
          short_name: nul(m.shortName),
          firmware_version: nul(m.firmwareVersion),
          latitude: nul(app.latitude),
          longitude: nul(app.longitude),
          radius_m: nul(app.radiusM),
          json,
        })
        t.agg.setMap(n, {
          fw: nul(m.firmwareVersion),
          region: nul(m.region),
          preset: nul(m.modemPreset),
          json,
          at,
        })
        if (m.longName !== undefined || m.shortName !== undefined) {
          // A map report names the node too (at -1: a real NODEINFO, even an older one, wins).
          t.agg.setUser(n, {
            longName: nul(m.longName),
            shortName: nul(m.shortName),
            json: JSON.stringify({
              longName: m.longName,
              shortName: m.shortName,
              hwModel: m.hwModel,
              role: m.role,
            }),
            at: -1,
          })
        }
        if (app.latitude !== undefined && app.longitude !== undefined) {
          t.agg.setPosition(n, {
            lat: app.latitude,
            lon: app.longitude,
            alt: nul(m.altitude),
            bits: nul(m.positionPrecision),
            radius: nul(app.radiusM),
            at,
            src: 1,
          })
        }
        break
      }
      case 'waypoint': {
        const w = app.waypoint
        ty.waypoints.push({
          day,
          packet_ref: ref.id,
          node: from,
          received_at: at,
          waypoint_id: int(w.id),
          name: nul(w.name),
          description: nul(w.description),
          latitude: nul(app.latitude),
          longitude: nul(app.longitude),
          expire: int(w.expire),
          json: JSON.stringify(w),
        })
        break
      }
      default:
        if (app && isText(app)) {
          ty.messages.push({
            day,
            packet_ref: ref.id,
            from_num: from,
            to_num: p.to >>> 0,
            packet_id: p.id >>> 0,
            received_at: at,
            rx_time: p.rxTime,
            channel_ref: channel,
            direct: isDirect(p),
            type: app.type,
            text: app.text,
            reply_id: nul(p.replyId),
            emoji: nul(p.emoji),
            is_reaction: app.isReaction,
            hops_away: int(p.hopsAway),
            gw,
          })
        }
    }
  }

  /**
   * Inserts the decoded packets and the placeholders of the packets the other records refer to,
   * in one statement; fills placeholders that exist already (receptions or undecoded copies came
   * first) with their packet; resolves the references that were already stored. Returns the
   * packets now stored (new or filled); packets that are already decoded keep their first copy.
   */
  async function insertPackets(
    client: PgPoolClient,
    t: Tx,
    list: readonly StoredPacket[],
    wanted: ReadonlyMap<string, Wanted> = new Map(),
  ): Promise<{ sp: StoredPacket; ref: PacketRef; filled: boolean }[]> {
    const todo = new Map<string, StoredPacket>()
    for (const sp of list) {
      if (typeof sp?.key !== 'string' || !sp.packet) {
        throw new PgStoreError('INVALID_BATCH', 'a packet without a key')
      }
      if (todo.has(sp.key) || refOf(t, sp.key)?.decoded) continue
      todo.set(sp.key, sp)
    }
    const stubs = [...wanted].filter(([key]) => !todo.has(key) && !refOf(t, key))
    const out: { sp: StoredPacket; ref: PacketRef; filled: boolean }[] = []
    if (todo.size === 0 && stubs.length === 0) return out
    const cols = new Columns<string>(PACKET_COLUMNS)
    for (const sp of todo.values()) {
      const p = sp.packet
      cols.push({
        key: sp.key,
        day: dayOf(sp.receivedAt),
        from_num: p.from >>> 0,
        to_num: p.to >>> 0,
        packet_id: p.id >>> 0,
        portnum: p.portnum,
        channel_ref: stringId(t, p.channelId),
        gw: gatewayRef(t, p.gatewayId),
        received_at: sp.receivedAt,
        rx_time: p.rxTime,
        hops_away: int(p.hopsAway),
        json: packPacket(p),
      })
    }
    for (const [key, w] of stubs) {
      cols.push({
        key,
        day: dayOf(w.at),
        from_num: w.from,
        to_num: w.to,
        packet_id: w.id ?? idOfKey(key),
        portnum: null,
        channel_ref: null,
        gw: null,
        received_at: w.at,
        rx_time: null,
        hops_away: null,
        json: null,
      })
    }
    const inserted = await query<{ id: number; key: string; day: number; decoded: boolean }>(
      client,
      sql.insertPackets(cols),
      cols.params(),
      `meshtap:${schema}:packets`,
    )
    for (const r of inserted) {
      const ref = { id: r.id, day: r.day, decoded: r.decoded }
      t.keys.set(r.key, ref)
      const sp = todo.get(r.key)
      if (sp) {
        out.push({ sp, ref, filled: false })
        todo.delete(r.key)
      }
    }
    if (todo.size > 0) {
      const fill = new Columns<string>(PACKET_COLUMNS)
      for (let i = 0; i < cols.length; i++) {
        if (!todo.has((cols.data.key as unknown[])[i] as string)) continue
        const row: Record<string, unknown> = {}
        for (const [c] of PACKET_COLUMNS) row[c] = (cols.data[c] as unknown[])[i]
        fill.push(row)
      }
      const filled = await query<{ id: number; key: string; day: number }>(
        client,
        sql.fillPackets(fill),
        fill.params(),
        `meshtap:${schema}:fill`,
      )
      for (const r of filled) {
        const ref = { id: r.id, day: r.day, decoded: true }
        t.keys.set(r.key, ref)
        out.push({ sp: todo.get(r.key) as StoredPacket, ref, filled: true })
        todo.delete(r.key)
      }
    }
    // Already stored: decoded packets, and placeholders or packets the batch refers to. (A row
    // another writer inserted after this transaction's statement began is read here too.)
    const unknown = [...new Set([...todo.keys(), ...wanted.keys()])].filter((k) => {
      const ref = refOf(t, k)
      return !ref || (todo.has(k) && !ref.decoded)
    })
    if (unknown.length > 0) {
      const found = await query<{ id: number; key: string; day: number; decoded: boolean }>(
        client,
        sql.refs,
        [textArray(unknown)],
        `meshtap:${schema}:refs`,
      )
      for (const r of found) t.keys.set(r.key, { id: r.id, day: r.day, decoded: r.decoded })
    }
    return out
  }

  function checkPartitions(days: Iterable<number>): void {
    const missing = options.missing(days)
    if (missing.length > 0) throw new MissingPartitions(missing)
  }

  /** The typed tables: `[table, columns of the transaction, conflict key, id sequence]`. */
  function typedSteps(ty: Typed): [string, Columns<string>, string, string?][] {
    return [
      ['positions', ty.positions, 'day, packet_ref'],
      ['telemetry', ty.telemetry, 'day, packet_ref'],
      ['messages', ty.messages, 'day, packet_ref'],
      ['traceroutes', ty.traceroutes, 'day, packet_ref, gw', 'traceroute_ids'],
      ['neighbors', ty.neighbors, 'day, packet_ref, neighbor'],
      ['map_reports', ty.mapReports, 'day, packet_ref'],
      ['waypoints', ty.waypoints, 'day, packet_ref'],
    ]
  }

  function stateColumns(a: Aggregates) {
    const nodes = new Columns<string>(NODE_COLUMNS)
    for (const n of a.nodes.values()) {
      nodes.push({
        num: n.num,
        first_seen: n.firstSeen,
        last_heard: n.lastHeard,
        packets: n.packets,
        is_gateway: n.isGateway === 1,
        long_name: n.user?.longName ?? null,
        short_name: n.user?.shortName ?? null,
        user_json: n.user?.json ?? null,
        info_at: n.user?.at ?? null,
        latitude: n.position?.lat ?? null,
        longitude: n.position?.lon ?? null,
        altitude: n.position?.alt ?? null,
        precision_bits: int(n.position?.bits),
        radius_m: n.position?.radius ?? null,
        position_at: n.position?.at ?? null,
        position_src: n.position?.src ?? null,
        device_json: n.device?.json ?? null,
        device_at: n.device?.at ?? null,
        last_gw: n.reception?.gw ?? null,
        last_snr: n.reception?.snr ?? null,
        last_rssi: int(n.reception?.rssi),
        last_class: n.reception?.cls ?? null,
        hops_away: int(n.reception?.hops),
        reception_at: n.reception?.at ?? null,
        firmware_version: n.map?.fw ?? null,
        region:
          n.map?.region === undefined || n.map.region === null
            ? null
            : JSON.stringify(n.map.region),
        modem_preset:
          n.map?.preset === undefined || n.map.preset === null
            ? null
            : JSON.stringify(n.map.preset),
        map_json: n.map?.json ?? null,
        map_at: n.map?.at ?? null,
      })
    }
    const telemetry = new Columns<string>(NODE_TELEMETRY_COLUMNS)
    for (const x of a.telemetry.values()) {
      telemetry.push({ num: x.num, variant: x.variant, at: x.at, metrics: x.json })
    }
    const links = new Columns<string>(LINK_COLUMNS)
    for (const x of a.links.values()) {
      links.push({
        node: x.node,
        gw: x.gw,
        first_seen: x.first,
        last_seen: x.last,
        count: x.count,
        last_snr: x.snr,
        last_rssi: int(x.rssi),
      })
    }
    const neighbors = new Columns<string>(NEIGHBOR_LINK_COLUMNS)
    for (const x of a.neighbors.values()) {
      neighbors.push({
        node: x.node,
        neighbor: x.neighbor,
        first_seen: x.first,
        last_seen: x.last,
        count: x.count,
        last_snr: x.snr,
      })
    }
    return { nodes, telemetry, links, neighbors }
  }

  let tailText: string | undefined

  /**
   * One statement for everything after the packets and receptions: the typed rows, the latest
   * state (hot rows last in the transaction: their locks are held until COMMIT) and the change
   * announcement — data-modifying CTEs, so a batch costs a handful of round trips whatever it
   * holds. The text is the same for every batch (empty arrays insert nothing): one prepared
   * statement. (Leaving out the empty parts, one statement per combination, measured no faster.)
   */
  async function writeTail(client: PgPoolClient, t: Tx, change?: Announcement): Promise<void> {
    const state = stateColumns(t.agg)
    const parts: { cols: Columns<string>; sql: (offset: number) => string }[] = [
      ...typedSteps(t.typed).map(([table, cols, conflict, seq]) => ({
        cols,
        sql: (o: number) => sql.insertTyped(table, cols, conflict, seq, o),
      })),
      { cols: state.nodes, sql: (o) => sql.upsertNodes(state.nodes, o) },
      { cols: state.telemetry, sql: (o) => sql.upsertNodeTelemetry(state.telemetry, o) },
      { cols: state.links, sql: (o) => sql.upsertLinks(state.links, o) },
      { cols: state.neighbors, sql: (o) => sql.upsertNeighborLinks(state.neighbors, o) },
    ]
    if (!change && parts.every((p) => p.cols.length === 0)) return
    const values: unknown[] = []
    const ctes: string[] = []
    for (const [i, part] of parts.entries()) {
      ctes.push(`w${i} AS (${part.sql(values.length)})`)
      values.push(...part.cols.params())
    }
    const at = values.length + 1
    values.push(change?.at ?? null, change?.payload ?? null, change?.channel ?? null)
    tailText ??= `WITH ${ctes.join(',\n')},
      chg AS (INSERT INTO ${s}.changes (at, payload) SELECT $${at}::bigint, $${at + 1}::text
        WHERE $${at + 1}::text IS NOT NULL RETURNING id)
      SELECT pg_notify($${at + 2}::text, CASE WHEN octet_length($${at + 1}::text) < 7000
        THEN chg.id || ' ' || $${at + 1}::text ELSE chg.id::text END) FROM chg`
    await client.query({ name: `meshtap:${schema}:tail`, text: tailText, values, types: TYPES })
  }

  /** Sender, destination and request id of stored packets (for traceroute copies). */
  async function heads(
    client: PgPoolClient,
    refs: number[],
  ): Promise<Map<number, { from: number | null; to: number | null; requestId: number | null }>> {
    const out = new Map<
      number,
      { from: number | null; to: number | null; requestId: number | null }
    >()
    if (refs.length === 0) return out
    const rows = await query<{
      id: number
      from_num: number | null
      to_num: number | null
      json: string | null
    }>(client, sql.heads, [numArray(refs)])
    for (const r of rows) {
      const requestId = r.json ? unpackPacket(r.json).requestId : undefined
      out.set(r.id, { from: r.from_num, to: r.to_num, requestId: requestId ?? null })
    }
    return out
  }

  /** Packets (new or filled) → typed rows, dropped undecoded copies, result ids. */
  async function afterPackets(
    client: PgPoolClient,
    t: Tx,
    stored: { sp: StoredPacket; ref: PacketRef; filled: boolean }[],
  ): Promise<void> {
    for (const x of stored) {
      t.result.packets.push(x.ref.id)
      typedRows(t, x.ref, x.sp)
    }
    const filled = stored.filter((x) => x.filled)
    if (filled.length > 0) {
      // A packet that was kept undecoded (its key was added since) is no longer undecoded.
      await client.query({
        text: sql.dropUndecoded,
        values: [numArray(filled.map((x) => x.ref.day)), numArray(filled.map((x) => x.ref.id))],
        types: TYPES,
      })
    }
  }

  async function writeBatch(
    client: PgPoolClient,
    batch: WriteBatch,
    announce?: (r: WriteResult) => Announcement | undefined,
  ): Promise<WriteResult> {
    const t = begin()
    // 1. Strings and gateways.
    const values = new Set<string>()
    const gws = new Map<string, number>()
    const addGw = (g: string | undefined, at: number) => {
      if (g === undefined) return
      const prev = gws.get(g)
      if (prev === undefined || at < prev) gws.set(g, at)
    }
    for (const sp of batch.packets) {
      if (sp?.packet?.channelId !== undefined) values.add(sp.packet.channelId)
      addGw(sp?.packet?.gatewayId, sp?.receivedAt)
    }
    for (const r of batch.receptions) {
      if (typeof r?.packetKey !== 'string') {
        throw new PgStoreError('INVALID_BATCH', 'a reception without a packetKey')
      }
      if (r.topic !== undefined) values.add(r.topic)
      if (r.source !== undefined) values.add(r.source)
      if (r.channelId !== undefined) values.add(r.channelId)
      addGw(r.gatewayId, r.receivedAt)
    }
    for (const u of batch.undecoded) {
      if (typeof u?.key !== 'string' || !u.failure?.packet) {
        throw new PgStoreError('INVALID_BATCH', 'an undecoded packet without a key')
      }
      const p = u.failure.packet
      if (p.channelId !== undefined) values.add(p.channelId)
      if (p.topic !== undefined) values.add(p.topic)
      addGw(p.gatewayId, u.receivedAt)
    }
    await intern(client, t, values, gws)

    // 2. Packets, and placeholders for the packets the receptions and undecoded copies refer to
    // that no cache knows.
    const wanted = new Map<string, Wanted>()
    for (const u of batch.undecoded) {
      const p = u.failure.packet
      if (!wanted.has(u.key) && !refOf(t, u.key)) {
        wanted.set(u.key, {
          from: p.from === undefined ? fromOfKey(u.key) : p.from >>> 0,
          to: p.to === undefined ? null : p.to >>> 0,
          id: p.id === undefined ? null : p.id >>> 0,
          at: u.receivedAt,
        })
      }
    }
    for (const r of batch.receptions) {
      if (!wanted.has(r.packetKey) && !refOf(t, r.packetKey)) {
        wanted.set(r.packetKey, {
          from: fromOfKey(r.packetKey),
          to: null,
          id: null,
          at: r.receivedAt,
        })
      }
    }
    const stored = await insertPackets(client, t, batch.packets, wanted)

    // Every row below goes to its packet's day.
    const days = new Set<number>(stored.map((x) => x.ref.day))
    for (const r of batch.receptions) days.add((refOf(t, r.packetKey) as PacketRef).day)
    for (const u of batch.undecoded) days.add((refOf(t, u.key) as PacketRef).day)
    checkPartitions(days)

    await afterPackets(client, t, stored)

    // 4. Receptions.
    const recs = new Columns<string>(RECEPTION_COLUMNS)
    const recIndex = new Map<string, Reception>()
    for (const r of batch.receptions) {
      const ref = refOf(t, r.packetKey) as PacketRef
      const gw = gatewayRef(t, r.gatewayId)
      const ident = identity(t, gw, r.topic)
      const k = `${ref.id}|${ident}`
      if (recIndex.has(k)) continue
      recIndex.set(k, r)
      recs.push({
        day: ref.day,
        packet_ref: ref.id,
        gw: ident,
        from_num: fromOfKey(r.packetKey),
        topic_ref: stringId(t, r.topic),
        source_ref: stringId(t, r.source),
        channel_ref: stringId(t, r.channelId),
        rx_time: int(r.rxTime) ?? 0,
        received_at: r.receivedAt,
        rx_snr: r.rxSnr,
        rx_rssi: int(r.rxRssi) ?? 0,
        hop_limit: int(r.hopLimit) ?? 0,
        hop_start: int(r.hopStart) ?? 0,
        relay_node: int(r.relayNode),
        hops_away: int(r.hopsAway),
        class: CLASS_CODE[r.receptionClass] ?? 0,
        app: r.app === undefined ? null : JSON.stringify(r.app),
      })
    }
    // Undecoded copies (of packets that are not decoded meanwhile), in the same statement.
    const und = new Columns<string>(UNDECODED_COLUMNS)
    const undSeen = new Set<string>()
    for (const u of batch.undecoded) {
      const ref = refOf(t, u.key) as PacketRef
      if (ref.decoded) continue
      const p = u.failure.packet
      const gw = gatewayRef(t, p.gatewayId) ?? 0
      const k = `${ref.id}|${gw}`
      if (undSeen.has(k)) continue
      undSeen.add(k)
      const { ciphertext, ...header } = p
      und.push({
        day: ref.day,
        packet_ref: ref.id,
        gw,
        from_num: p.from === undefined ? fromOfKey(u.key) : p.from >>> 0,
        to_num: p.to === undefined ? null : p.to >>> 0,
        packet_id: p.id === undefined ? null : p.id >>> 0,
        channel_hash: int(p.channel),
        channel_ref: stringId(t, p.channelId),
        topic_ref: stringId(t, p.topic),
        received_at: u.receivedAt,
        error_code: u.failure.error.code,
        ciphertext: ciphertext ?? null,
        failure: JSON.stringify({ error: u.failure.error, packet: header }),
      })
    }
    const newCopies: { id: number; ref: number; day: number; ident: number; r: Reception }[] = []
    if (recs.length > 0 || und.length > 0) {
      const rows = await query<{
        reception: boolean
        id: number
        day: number
        packet_ref: number
        gw: number
      }>(
        client,
        sql.insertCopies(recs, und),
        [...recs.params(), ...und.params()],
        `meshtap:${schema}:copies`,
      )
      for (const row of rows) {
        if (!row.reception) {
          t.result.undecoded.push(row.id)
          t.days.add(row.day)
          continue
        }
        const r = recIndex.get(`${row.packet_ref}|${row.gw}`) as Reception
        newCopies.push({ id: row.id, ref: row.packet_ref, day: row.day, ident: row.gw, r })
      }
      newCopies.sort((a, b) => a.id - b.id)
      t.result.undecoded.sort((a, b) => a - b)
    }
    let minAt = Number.POSITIVE_INFINITY
    let maxAt = Number.NEGATIVE_INFINITY
    const traceCopies: typeof newCopies = []
    for (const c of newCopies) {
      const r = c.r
      t.result.receptions.push(c.id)
      t.days.add(c.day)
      const at = r.receivedAt
      if (at < minAt) minAt = at
      if (at > maxAt) maxAt = at
      const from = fromOfKey(r.packetKey)
      const gw = gatewayRef(t, r.gatewayId)
      const cls = CLASS_CODE[r.receptionClass] ?? 0
      if (from !== null) {
        t.agg.setReception(t.agg.node(from, at), {
          gw,
          snr: r.rxSnr,
          rssi: r.rxRssi,
          cls,
          hops: nul(r.hopsAway),
          at,
        })
      }
      if (gw !== null) {
        const gwNum = nodeNumOf(r.gatewayId)
        if (gwNum !== null) t.agg.node(gwNum, at).isGateway = 1
        if (r.receptionClass === 'direct' && from !== null && from !== gwNum) {
          t.agg.link(from, gw, at, r.rxSnr, r.rxRssi)
        }
      }
      if (r.app?.type === 'traceroute') traceCopies.push(c)
    }
    if (newCopies.length > 0) t.result.receivedAt = [minAt, maxAt]
    if (traceCopies.length > 0) {
      const inBatch = new Map<number, DecodedPacket>()
      for (const sp of batch.packets) {
        const ref = refOf(t, sp.key)
        if (ref) inBatch.set(ref.id, sp.packet)
      }
      const h = await heads(
        client,
        traceCopies.map((c) => c.ref).filter((ref) => !inBatch.has(ref)),
      )
      for (const c of traceCopies) {
        const app = c.r.app as Extract<AppPayload, { type: 'traceroute' }>
        const p = inBatch.get(c.ref)
        const head = p
          ? { from: p.from >>> 0, to: p.to >>> 0, requestId: p.requestId ?? null }
          : h.get(c.ref)
        t.typed.traceroutes.push({
          day: c.day,
          packet_ref: c.ref,
          gw: c.ident,
          from_num: head?.from ?? fromOfKey(c.r.packetKey) ?? 0,
          to_num: head?.to ?? 0,
          received_at: c.r.receivedAt,
          request_id: head?.requestId ?? null,
          route: routeJson(app),
        })
      }
    }

    // 6. Typed rows, the latest state and the announcement, in one statement.
    t.result.days = [...t.days].sort((a, b) => a - b)
    await writeTail(client, t, announce?.(t.result))
    return t.result
  }

  function committed(): void {
    const t = current()
    for (const [k, v] of t.strings) strings.set(k, v)
    for (const [k, v] of t.gateways) gateways.set(k, v)
    for (const [k, v] of t.keys) keys.set(k, v)
    tx = undefined
  }

  return {
    write: writeBatch,

    async writePackets(client, packets, announce) {
      const t = begin()
      const gws = new Map<string, number>()
      const values = new Set<string>()
      for (const sp of packets) {
        if (sp.packet.channelId !== undefined) values.add(sp.packet.channelId)
        if (sp.packet.gatewayId !== undefined) gws.set(sp.packet.gatewayId, sp.receivedAt)
      }
      await intern(client, t, values, gws)
      const stored = await insertPackets(client, t, packets)
      checkPartitions(stored.map((x) => x.ref.day))
      await afterPackets(client, t, stored)
      t.result.days = [...t.days].sort((a, b) => a - b)
      await writeTail(client, t, announce?.(t.result))
      return t.result
    },

    committed,

    rolledBack() {
      tx = undefined
      keys.clear()
    },

    forgetRefs() {
      keys.clear()
    },

    daysOf(batch) {
      const days = new Set<number>()
      for (const sp of batch.packets ?? []) {
        if (typeof sp?.receivedAt === 'number') days.add(dayOf(sp.receivedAt))
      }
      for (const r of batch.receptions ?? []) {
        if (typeof r?.receivedAt === 'number') days.add(dayOf(r.receivedAt))
      }
      for (const u of batch.undecoded ?? []) {
        if (typeof u?.receivedAt === 'number') days.add(dayOf(u.receivedAt))
      }
      return [...days]
    },

    async backfill(client) {
      let last = 0
      for (;;) {
        const rows = await query<{
          id: number
          day: number
          key: string
          received_at: number
          json: string
        }>(
          client,
          `SELECT id, day, key, received_at, json FROM ${s}.packets
           WHERE json IS NOT NULL AND id > $1 ORDER BY id LIMIT 5000`,
          [last],
        )
        if (rows.length === 0) break
        const t = begin()
        const values = new Set<string>()
        const gws = new Map<string, number>()
        const packets = rows.map((r) => {
          const packet = unpackPacket(r.json)
          if (packet.channelId !== undefined) values.add(packet.channelId)
          if (packet.gatewayId !== undefined) gws.set(packet.gatewayId, r.received_at)
          return { r, sp: { key: r.key, packet, receivedAt: r.received_at } }
        })
        await intern(client, t, values, gws)
        for (const { r, sp } of packets) {
          typedRows(t, { id: r.id, day: r.day, decoded: true }, sp, false)
          last = r.id
        }
        await writeTail(client, t)
        committed()
      }
      await client.query(`INSERT INTO ${s}.links (node, gw, first_seen, last_seen, count, last_snr, last_rssi)
        SELECT r.from_num, r.gw, min(r.received_at), max(r.received_at), count(*),
          (array_agg(r.rx_snr ORDER BY r.received_at DESC, r.id DESC))[1],
          (array_agg(r.rx_rssi ORDER BY r.received_at DESC, r.id DESC))[1]
        FROM ${s}.receptions r JOIN ${s}.gateways g ON g.id = r.gw
        WHERE r.class = ${CLASS_CODE.direct} AND r.from_num IS NOT NULL AND r.gw > 0
          AND (g.num IS NULL OR g.num <> r.from_num)
        GROUP BY r.from_num, r.gw
        ON CONFLICT (node, gw) DO NOTHING`)
      let lastCopy = 0
      for (;;) {
        const rows = await query<{
          id: number
          day: number
          packet_ref: number
          gw: number
          from_num: number | null
          received_at: number
          app: string
        }>(
          client,
          `SELECT id, day, packet_ref, gw, from_num, received_at, app FROM ${s}.receptions
           WHERE app IS NOT NULL AND id > $1 ORDER BY id LIMIT 5000`,
          [lastCopy],
        )
        if (rows.length === 0) break
        const t = begin()
        const copies = rows.filter((r) => {
          lastCopy = r.id
          return (JSON.parse(r.app) as AppPayload).type === 'traceroute'
        })
        const h = await heads(
          client,
          copies.map((c) => c.packet_ref),
        )
        for (const c of copies) {
          const app = JSON.parse(c.app) as Extract<AppPayload, { type: 'traceroute' }>
          const head = h.get(c.packet_ref)
          t.typed.traceroutes.push({
            day: c.day,
            packet_ref: c.packet_ref,
            gw: c.gw,
            from_num: head?.from ?? c.from_num ?? 0,
            to_num: head?.to ?? 0,
            received_at: c.received_at,
            request_id: head?.requestId ?? null,
            route: routeJson(app),
          })
        }
        await writeTail(client, t)
        committed()
      }
    },
  }
}

/** Sorted ids as `[first, count]` runs (the change log's compact form). @internal */
export function toRanges(ids: readonly number[]): [number, number][] {
  const sorted = [...ids].sort((a, b) => a - b)
  const out: [number, number][] = []
  for (const id of sorted) {
    const last = out[out.length - 1]
    if (last && id === last[0] + last[1]) last[1]++
    else if (!last || id >= last[0] + last[1]) out.push([id, 1])
  }
  return out
}

/** The ids of `[first, count]` runs. @internal */
export function fromRanges(ranges: readonly (readonly [number, number])[]): number[] {
  const out: number[] = []
  for (const [first, count] of ranges) for (let i = 0; i < count; i++) out.push(first + i)
  return out
}
