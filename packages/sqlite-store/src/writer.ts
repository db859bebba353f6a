import {
  type AppPayload,
  base64ToBytes,
  type DecodedPacket,
  type PacketKey,
  type Reception,
  type StoredPacket,
  type UndecodedPacket,
  type WriteBatch,
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
import type { SqliteDatabase, SqliteStatement } from './database.js'
import { SqliteStoreError } from './errors.js'

const NODE_COLUMNS = [
  'num',
  'first_seen',
  'last_heard',
  'packets',
  'is_gateway',
  'long_name',
  'short_name',
  'user_json',
  'info_at',
  'latitude',
  'longitude',
  'altitude',
  'precision_bits',
  'radius_m',
  'position_at',
  'position_src',
  'device_json',
  'device_at',
  'last_gw',
  'last_snr',
  'last_rssi',
  'last_class',
  'hops_away',
  'reception_at',
  'firmware_version',
  'region',
  'modem_preset',
  'map_json',
  'map_at',
] as const

function guarded(guard: string, columns: readonly string[]): string[] {
  return columns.map((c) => `${c} = CASE WHEN ${guard} THEN excluded.${c} ELSE ${c} END`)
}

const NODE_UPSERT = `INSERT INTO nodes (${NODE_COLUMNS.join(', ')}) VALUES (${NODE_COLUMNS.map(() => '?').join(', ')})
ON CONFLICT (num) DO UPDATE SET
  first_seen = min(first_seen, excluded.first_seen),
  last_heard = max(last_heard, excluded.last_heard),
  packets = packets + excluded.packets,
  is_gateway = max(is_gateway, excluded.is_gateway),
  ${[
    ...guarded('excluded.info_at >= coalesce(info_at, -1)', [
      'long_name',
      'short_name',
      'user_json',
      'info_at',
    ]),
    ...guarded(
      'excluded.position_at IS NOT NULL AND (position_at IS NULL OR (excluded.position_at >= position_at AND (excluded.position_src = 0 OR position_src = 1)))',
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
    ...guarded('excluded.device_at >= coalesce(device_at, -1)', ['device_json', 'device_at']),
    ...guarded('excluded.reception_at >= coalesce(reception_at, -1)', [
      'last_gw',
      'last_snr',
      'last_rssi',
      'last_class',
      'hops_away',
      'reception_at',
    ]),
    ...guarded('excluded.map_at >= coalesce(map_at, -1)', [
      'firmware_version',
      'region',
      'modem_preset',
      'map_json',
      'map_at',
    ]),
  ].join(',\n  ')}`

/**
 * A map of at most `max` entries that forgets the oldest first. The insertion order is kept in a
 * ring of keys: evicting through `Map#keys().next()` instead walks the deleted slots at the front
 * of V8's hash table and gets 25–75× slower once the map is full (see the performance notes).
 * @internal
 */
export class BoundedMap<V> {
  private readonly map = new Map<string, V>()
  private readonly ring: string[] = []
  private next = 0
  private readonly max: number
  /** @param max entries kept (at least 1) */
  constructor(max: number) {
    this.max = Math.max(1, Math.floor(max) || 1)
  }
  /** Entries held. */
  get size(): number {
    return this.map.size
  }
  /** The value of `key`, or undefined. */
  get(key: string): V | undefined {
    return this.map.get(key)
  }
  /** Sets `key`; a new key past `max` entries evicts the oldest key. */
  set(key: string, value: V): this {
    const size = this.map.size
    this.map.set(key, value)
    // A new key (the size grew): the same entries as evicting first, one lookup instead of two.
    if (this.map.size !== size) {
      if (this.ring.length < this.max) this.ring.push(key)
      else {
        this.map.delete(this.ring[this.next] as string)
        this.ring[this.next] = key
        this.next = (this.next + 1) % this.max
      }
    }
    return this
  }
  /** Forgets every entry. */
  clear(): void {
    this.map.clear()
    this.ring.length = 0
    this.next = 0
  }
}

/** What {@link Writer.writePacket} did. @internal */
export type PacketOutcome = 'new' | 'filled' | 'kept'

/**
 * The write half of the store: statements, caches and derived state. Call inside a transaction:
 * `writeBatch`/`writePacket`, optionally `writeState`, then `committed` or `rolledBack`.
 * @internal
 */
export interface Writer {
  /** Writes the records of a batch; the state they change is kept in memory. */
  writeBatch(batch: WriteBatch): void
  /** Writes one decoded packet and its typed rows. */
  writePacket(sp: StoredPacket): PacketOutcome
  /** Writes the node, link, gateway and latest-telemetry state of every record not written yet. */
  writeState(): void
  /** After COMMIT: the state is written (`stateWritten`) or kept pending for a later `writeState`. */
  committed(stateWritten: boolean): void
  /** After ROLLBACK: forgets this transaction's state and every cached id. */
  rolledBack(): void
  /** Forgets cached packet ids (rows deleted by retention). */
  forgetIds(): void
  /** Whether committed records changed state that is not written yet. */
  readonly hasPendingState: boolean
  /** The id of a packet key, or undefined. */
  packetRef(key: PacketKey): number | undefined
  /** Fills the typed tables and links from the packets and receptions already stored. */
  backfill(): void
}

/** Prepares the writer's statements on a migrated database. @internal */
export function createWriter(db: SqliteDatabase, keyCacheSize = 100_000): Writer {
  const s = (sql: string): SqliteStatement => db.prepare(sql)
  const st = {
    internString: s('INSERT INTO strings (value) VALUES (?) ON CONFLICT (value) DO NOTHING'),
    stringId: s('SELECT id FROM strings WHERE value = ?'),
    internGateway: s(
      'INSERT INTO gateways (gateway_id, num) VALUES (?, ?) ON CONFLICT (gateway_id) DO NOTHING',
    ),
    gatewayId: s('SELECT id FROM gateways WHERE gateway_id = ?'),
    insertPacket: s(
      `INSERT INTO packets (key, from_num, to_num, packet_id, portnum, channel_ref, gw, received_at, rx_time, hops_away, json)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
    ),
    fillPacket: s(
      `UPDATE packets SET from_num = ?, to_num = ?, packet_id = ?, portnum = ?, channel_ref = ?, gw = ?,
       received_at = ?, rx_time = ?, hops_away = ?, json = ? WHERE id = ?`,
    ),
    insertStub: s(
      `INSERT INTO packets (key, from_num, to_num, packet_id, received_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (key) DO NOTHING`,
    ),
    packetByKey: s('SELECT id, json IS NOT NULL AS decoded FROM packets WHERE key = ?'),
    dropUndecoded: s('DELETE FROM undecoded WHERE packet_ref = ?'),
    packetHead: s('SELECT from_num, to_num, json FROM packets WHERE id = ?'),
    insertReception: s(
      `INSERT INTO receptions (packet_ref, gw, from_num, topic_ref, source_ref, channel_ref, rx_time, received_at,
       rx_snr, rx_rssi, hop_limit, hop_start, relay_node, hops_away, class, app)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (packet_ref, gw) DO NOTHING`,
    ),
    insertUndecoded: s(
      `INSERT INTO undecoded (packet_ref, gw, from_num, to_num, packet_id, channel_hash, channel_ref, topic_ref,
       received_at, error_code, ciphertext, failure)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (packet_ref, gw) DO NOTHING`,
    ),
    insertPosition: s(
      `INSERT INTO positions (packet_ref, node, received_at, time, latitude, longitude, altitude, precision_bits,
       radius_m, sats_in_view, ground_speed, ground_track, channel_ref, gw, cell)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
    insertTelemetry: s(
      `INSERT INTO telemetry (packet_ref, node, received_at, time, variant, ${TELEMETRY_COLUMNS.map((c) => c[0]).join(', ')}, extra, channel_ref, gw)
       VALUES (?, ?, ?, ?, ?, ${TELEMETRY_COLUMNS.map(() => '?').join(', ')}, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
    insertMessage: s(
      `INSERT INTO messages (packet_ref, from_num, to_num, packet_id, received_at, rx_time, channel_ref, direct, type,
       text, reply_id, emoji, is_reaction, hops_away, gw)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
    insertTraceroute: s(
      `INSERT INTO traceroutes (packet_ref, gw, from_num, to_num, received_at, request_id, route)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (packet_ref, gw) DO NOTHING`,
    ),
    insertNeighbor: s(
      `INSERT INTO neighbors (packet_ref, neighbor, node, received_at, snr, last_rx_time, broadcast_interval)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
    insertMapReport: s(
      `INSERT INTO map_reports (packet_ref, node, received_at, long_name, short_name, firmware_version, latitude,
       longitude, radius_m, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
    insertWaypoint: s(
      `INSERT INTO waypoints (packet_ref, node, received_at, waypoint_id, name, description, latitude, longitude,
       expire, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
    upsertNode: s(NODE_UPSERT),
    upsertNodeTelemetry: s(
      `INSERT INTO node_telemetry (num, variant, at, metrics) VALUES (?, ?, ?, ?)
       ON CONFLICT (num, variant) DO UPDATE SET at = excluded.at, metrics = excluded.metrics
       WHERE excluded.at >= node_telemetry.at`,
    ),
    upsertLink: s(
      `INSERT INTO links (node, gw, first_seen, last_seen, count, last_snr, last_rssi) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (node, gw) DO UPDATE SET
         first_seen = min(first_seen, excluded.first_seen),
         count = count + excluded.count,
         last_snr = CASE WHEN excluded.last_seen >= last_seen THEN excluded.last_snr ELSE last_snr END,
         last_rssi = CASE WHEN excluded.last_seen >= last_seen THEN excluded.last_rssi ELSE last_rssi END,
         last_seen = max(last_seen, excluded.last_seen)`,
    ),
    upsertNeighborLink: s(
      `INSERT INTO neighbor_links (node, neighbor, first_seen, last_seen, count, last_snr) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (node, neighbor) DO UPDATE SET
         first_seen = min(first_seen, excluded.first_seen),
         count = count + excluded.count,
         last_snr = CASE WHEN excluded.last_seen >= last_seen THEN excluded.last_snr ELSE last_snr END,
         last_seen = max(last_seen, excluded.last_seen)`,
    ),
    updateGateway: s(
      `UPDATE gateways SET first_seen = min(coalesce(first_seen, ?), ?), last_seen = max(coalesce(last_seen, ?), ?),
       receptions = receptions + ?, direct = direct + ? WHERE id = ?`,
    ),
  }

  const strings = new BoundedMap<number>(10_000)
  /** gateway id → its row id, and its node number when the id is a `!xxxxxxxx` node id. */
  const gateways = new BoundedMap<GatewayEntry>(10_000)
  /** key → id × 2 + (decoded ? 1 : 0) */
  const keys = new BoundedMap<number>(keyCacheSize)

  // The last packet key looked up (the copies of a packet follow each other) and the last channel
  // id interned (nearly every record has the same): answers without a cache lookup. Cleared with
  // the caches they shortcut.
  let lastKey: string | undefined
  let lastCode = 0
  let lastFrom: number | null = null
  let lastChannel: string | undefined
  let lastChannelRef = 0

  /** State from the current batch (discarded if it rolls back). */
  let local = new Aggregates()
  /** State from committed batches not written yet. */
  let pending = new Aggregates()

  function intern(value: string | undefined): number | null {
    if (value === undefined) return null
    let id = strings.get(value)
    if (id === undefined) {
      const r = st.internString.run(value)
      id = r.changes ? Number(r.lastInsertRowid) : (st.stringId.get(value) as { id: number }).id
      strings.set(value, id)
    }
    return id
  }

  /** {@link intern} for channel ids, remembering the last one. */
  function internChannel(value: string | undefined): number | null {
    if (value === undefined) return null
    if (value === lastChannel) return lastChannelRef
    const id = intern(value) as number
    lastChannel = value
    lastChannelRef = id
    return id
  }

  /** {@link intern} for a copy's topic, remembering the last topic of its gateway. */
  function internTopic(g: GatewayEntry | undefined, topic: string | undefined): number | null {
    if (topic === undefined) return null
    if (g === undefined) return intern(topic)
    if (g.topic === topic) return g.topicRef
    const id = intern(topic) as number
    g.topic = topic
    g.topicRef = id
    return id
  }

  function gatewayOf(gatewayId: string): GatewayEntry {
    let g = gateways.get(gatewayId)
    if (g === undefined) {
      const num = nodeNumOf(gatewayId)
      const r = st.internGateway.run(gatewayId, num)
      const ref = r.changes
        ? Number(r.lastInsertRowid)
        : (st.gatewayId.get(gatewayId) as { id: number }).id
      g = { ref, num, topic: undefined, topicRef: 0 }
      gateways.set(gatewayId, g)
    }
    return g
  }

  function gatewayRef(gatewayId: string | undefined): number | null {
    return gatewayId === undefined ? null : gatewayOf(gatewayId).ref
  }

  /** Forgets the shortcuts past the caches (with the caches). */
  function forgetLast(): void {
    lastKey = undefined
    lastChannel = undefined
  }

  const node = (num: number, at: number) => local.node(num, at)

  /**
   * The id × 2 + (decoded ? 1 : 0) of the packet with this key, creating a placeholder row when
   * there is none yet.
   */
  function codeOf(
    key: PacketKey,
    from: number | null,
    to: number | null,
    id: number | null,
    at: number,
  ): number {
    let code = keys.get(key)
    if (code === undefined) {
      const r = st.insertStub.run(key, from, to, id ?? idOfKey(key), at)
      if (r.changes) code = Number(r.lastInsertRowid) * 2
      else {
        const row = st.packetByKey.get(key) as { id: number; decoded: number }
        code = row.id * 2 + row.decoded
      }
      keys.set(key, code)
    }
    return code
  }

  function writeTyped(
    ref: number,
    p: DecodedPacket,
    at: number,
    channel: number | null,
    gw: number | null,
    count = true,
  ): void {
    const app = p.app
    const from = p.from >>> 0
    const n = node(from, at)
    if (count) n.packets++
    switch (app.type) {
      case 'position': {
        if (app.latitude === undefined || app.longitude === undefined) break
        const pos = app.position
        st.insertPosition.run(
          ref,
          from,
          at,
          nul(pos.time),
          app.latitude,
          app.longitude,
          nul(app.altitude),
          nul(app.precisionBits),
          nul(app.radiusM),
          nul(pos.satsInView),
          nul(pos.groundSpeed),
          nul(pos.groundTrack),
          channel,
          gw,
          cellOf(app.latitude, app.longitude),
        )
        local.setPosition(n, {
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
        st.insertTelemetry.run(
          ref,
          from,
          at,
          nul(app.telemetry.time),
          app.variant,
          ...columns,
          extra,
          channel,
          gw,
        )
        if (app.variant !== 'unknown') {
          const json = JSON.stringify(app.metrics)
          local.setTelemetry({ num: from, variant: app.variant, at, json })
          if (app.variant === 'device') local.setDevice(n, { json, at })
        }
        break
      }
      case 'nodeinfo': {
        local.setUser(n, {
          longName: nul(app.user.longName),
          shortName: nul(app.user.shortName),
          json: JSON.stringify(app.user),
          at,
        })
        break
      }
      case 'traceroute':
        st.insertTraceroute.run(
          ref,
          gw ?? 0,
          from,
          p.to >>> 0,
          at,
          nul(p.requestId),
          routeJson(app),
        )
        break
      case 'neighborinfo': {
        const info = app.neighborInfo
        const reporter =
          typeof info.nodeId === 'number' && info.nodeId !== 0 ? info.nodeId >>> 0 : from
        for (const nb of info.neighbors ?? []) {
          if (typeof nb.nodeId !== 'number') continue
          st.insertNeighbor.run(
            ref,
            nb.nodeId >>> 0,
            reporter,
            at,
            nul(nb.snr),
            nul(nb.lastRxTime),
            nul(nb.nodeBroadcastIntervalSecs ?? info.nodeBroadcastIntervalSecs),
          )
          local.neighbor(reporter, nb.nodeId >>> 0, at, nul(nb.snr))
        }
        break
      }
      case 'mapreport': {
        const m = app.mapReport
        const json = JSON.stringify(m)
        st.insertMapReport.run(
          ref,
          from,
          at,
          nul(m.longName),
          nul(m.shortName),
          nul(m.firmwareVersion),
          nul(app.latitude),
          nul(app.longitude),
          nul(app.radiusM),
          json,
        )
        local.setMap(n, {
          fw: nul(m.firmwareVersion),
          region: nul(m.region),
          preset: nul(m.modemPreset),
          json,
          at,
        })
        if (m.longName !== undefined || m.shortName !== undefined) {
          // A map report names the node too (at -1: a real NODEINFO, even an older one, wins).
          local.setUser(n, {
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
          local.setPosition(n, {
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
        st.insertWaypoint.run(
          ref,
          from,
          at,
          nul(w.id),
          nul(w.name),
          nul(w.description),
          nul(app.latitude),
          nul(app.longitude),
          nul(w.expire),
          JSON.stringify(w),
        )
        break
      }
      default:
        if (isText(app)) {
          st.insertMessage.run(
            ref,
            from,
            p.to >>> 0,
            p.id >>> 0,
            at,
            p.rxTime,
            channel,
            isDirect(p) ? 1 : 0,
            app.type,
            app.text,
            nul(p.replyId),
            nul(p.emoji),
            app.isReaction ? 1 : 0,
            nul(p.hopsAway),
            gw,
          )
        }
    }
  }

  function writePacket(sp: StoredPacket): PacketOutcome {
    if (typeof sp?.key !== 'string')
      throw new SqliteStoreError('INVALID_BATCH', 'a packet without a key')
    // The key's cache entry may change below: the shortcut past the cache must not outlive it.
    if (sp.key === lastKey) lastKey = undefined
    const cached = keys.get(sp.key)
    if (cached !== undefined && cached & 1) return 'kept'
    const p = sp.packet
    const channel = internChannel(p.channelId)
    const gw = gatewayRef(p.gatewayId)
    const json = packPacket(p)
    const from = p.from >>> 0
    const to = p.to >>> 0
    const id = p.id >>> 0
    const hops = nul(p.hopsAway)
    let ref: number
    let outcome: PacketOutcome = 'new'
    if (cached === undefined) {
      const r = st.insertPacket.run(
        sp.key,
        from,
        to,
        id,
        p.portnum,
        channel,
        gw,
        sp.receivedAt,
        p.rxTime,
        hops,
        json,
      )
      if (r.changes) ref = Number(r.lastInsertRowid)
      else {
        const row = st.packetByKey.get(sp.key) as { id: number; decoded: number }
        ref = row.id
        if (row.decoded) {
          keys.set(sp.key, ref * 2 + 1)
          return 'kept'
        }
        outcome = 'filled'
      }
    } else {
      ref = Math.floor(cached / 2)
      outcome = 'filled'
    }
    if (outcome === 'filled') {
      st.fillPacket.run(
        from,
        to,
        id,
        p.portnum,
        channel,
        gw,
        sp.receivedAt,
        p.rxTime,
        hops,
        json,
        ref,
      )
    }
    keys.set(sp.key, ref * 2 + 1)
    // A packet that was kept undecoded (its key was added since) is no longer undecoded.
    if (outcome === 'filled') st.dropUndecoded.run(ref)
    writeTyped(ref, p, sp.receivedAt, channel, gw)
    return outcome
  }

  /** Sender, destination and request id of a stored packet (for traceroute copies). */
  function head(ref: number): { from: number | null; to: number | null; requestId: number | null } {
    const row = st.packetHead.get(ref) as
      | { from_num: number | null; to_num: number | null; json: string | null }
      | undefined
    const requestId = row?.json ? unpackPacket(row.json).requestId : undefined
    return { from: row?.from_num ?? null, to: row?.to_num ?? null, requestId: requestId ?? null }
  }

  function writeReception(r: Reception): void {
    if (typeof r?.packetKey !== 'string') {
      throw new SqliteStoreError('INVALID_BATCH', 'a reception without a packetKey')
    }
    const key = r.packetKey
    let from: number | null
    let code: number
    if (key === lastKey) {
      from = lastFrom
      code = lastCode
    } else {
      from = fromOfKey(key)
      code = codeOf(key, from, null, null, r.receivedAt)
      lastKey = key
      lastCode = code
      lastFrom = from
    }
    const ref = Math.floor(code / 2)
    const g = r.gatewayId === undefined ? undefined : gatewayOf(r.gatewayId)
    const gw = g === undefined ? null : g.ref
    // A copy's identity within its packet: the gateway, else the topic, else nothing.
    const topic = internTopic(g, r.topic)
    const ident = gw !== null ? gw : topic === null ? 0 : -topic
    const cls = CLASS_CODE[r.receptionClass] ?? 0
    const res = st.insertReception.run(
      ref,
      ident,
      from,
      topic,
      intern(r.source),
      internChannel(r.channelId),
      r.rxTime,
      r.receivedAt,
      r.rxSnr,
      r.rxRssi,
      r.hopLimit,
      r.hopStart,
      nul(r.relayNode),
      nul(r.hopsAway),
      cls,
      r.app === undefined ? null : JSON.stringify(r.app),
    )
    if (!res.changes) return
    const at = r.receivedAt
    if (from !== null) {
      local.setReception(node(from, at), {
        gw,
        snr: r.rxSnr,
        rssi: r.rxRssi,
        cls,
        hops: nul(r.hopsAway),
        at,
      })
    }
    if (g !== undefined) {
      const direct = r.receptionClass === 'direct' ? 1 : 0
      local.gateway(g.ref, at, at, 1, direct)
      const gwNum = g.num
      if (gwNum !== null) node(gwNum, at).isGateway = 1
      if (direct && from !== null && from !== gwNum) {
        local.link(from, g.ref, at, r.rxSnr, r.rxRssi)
      }
    }
    if (r.app?.type === 'traceroute') {
      const h = head(ref)
      st.insertTraceroute.run(
        ref,
        ident,
        h.from ?? from ?? 0,
        h.to ?? 0,
        at,
        h.requestId,
        routeJson(r.app),
      )
    }
  }

  function writeUndecoded(u: UndecodedPacket): void {
    if (typeof u?.key !== 'string')
      throw new SqliteStoreError('INVALID_BATCH', 'an undecoded packet without a key')
    const p = u.failure.packet
    const from = p.from === undefined ? fromOfKey(u.key) : p.from >>> 0
    const code = codeOf(u.key, from, nul(p.to), p.id ?? idOfKey(u.key), u.receivedAt)
    if (code & 1) return // decoded meanwhile: nothing to keep
    const ref = Math.floor(code / 2)
    const gw = gatewayRef(p.gatewayId)
    const { ciphertext, ...header } = p
    st.insertUndecoded.run(
      ref,
      gw ?? 0,
      from,
      nul(p.to),
      nul(p.id),
      nul(p.channel),
      internChannel(p.channelId),
      intern(p.topic),
      u.receivedAt,
      u.failure.error.code,
      ciphertext === undefined ? null : (base64ToBytes(ciphertext) ?? null),
      JSON.stringify({ error: u.failure.error, packet: header }),
    )
  }

  function writeAggregates(a: Aggregates): void {
    for (const n of a.nodes.values()) {
      st.upsertNode.run(
        n.num,
        n.firstSeen,
        n.lastHeard,
        n.packets,
        n.isGateway,
        n.user?.longName ?? null,
        n.user?.shortName ?? null,
        n.user?.json ?? null,
        n.user?.at ?? null,
        n.position?.lat ?? null,
        n.position?.lon ?? null,
        n.position?.alt ?? null,
        n.position?.bits ?? null,
        n.position?.radius ?? null,
        n.position?.at ?? null,
        n.position?.src ?? null,
        n.device?.json ?? null,
        n.device?.at ?? null,
        n.reception?.gw ?? null,
        n.reception?.snr ?? null,
        n.reception?.rssi ?? null,
        n.reception?.cls ?? null,
        n.reception?.hops ?? null,
        n.reception?.at ?? null,
        n.map?.fw ?? null,
        n.map?.region ?? null,
        n.map?.preset ?? null,
        n.map?.json ?? null,
        n.map?.at ?? null,
      )
    }
    for (const t of a.telemetry.values()) st.upsertNodeTelemetry.run(t.num, t.variant, t.at, t.json)
    for (const l of a.links.values()) {
      st.upsertLink.run(l.node, l.gw, l.first, l.last, l.count, l.snr, l.rssi)
    }
    for (const [id, g] of a.gateways) {
      st.updateGateway.run(g.first, g.first, g.last, g.last, g.receptions, g.direct, id)
    }
    for (const n of a.neighbors.values()) {
      st.upsertNeighborLink.run(n.node, n.neighbor, n.first, n.last, n.count, n.snr)
    }
  }

  /** Writes the pending state plus this batch's (without changing either: the transaction may still fail). */
  function writeState(): void {
    if (pending.empty) writeAggregates(local)
    else if (local.empty) writeAggregates(pending)
    else {
      const merged = new Aggregates()
      merged.mergeFrom(pending)
      merged.mergeFrom(local)
      writeAggregates(merged)
    }
  }

  return {
    writeBatch(batch) {
      for (const p of batch.packets) writePacket(p)
      for (const r of batch.receptions) writeReception(r)
      for (const u of batch.undecoded) writeUndecoded(u)
    },
    writePacket,
    writeState,
    committed(stateWritten) {
      if (stateWritten) pending.clear()
      else if (pending.empty) {
        // Nothing to merge into: the batch's state becomes the pending state as it is.
        const empty = pending
        pending = local
        local = empty
      } else pending.mergeFrom(local)
      local.clear()
    },
    rolledBack() {
      local.clear()
      strings.clear()
      gateways.clear()
      keys.clear()
      forgetLast()
    },
    forgetIds() {
      keys.clear()
      lastKey = undefined
    },
    get hasPendingState() {
      return !pending.empty
    },
    backfill() {
      const packets = db.prepare(
        `SELECT id, received_at, channel_ref, gw, json FROM packets
         WHERE json IS NOT NULL AND id > ? ORDER BY id LIMIT 5000`,
      )
      let last = 0
      for (;;) {
        const rows = packets.all(last) as {
          id: number
          received_at: number
          channel_ref: number | null
          gw: number | null
          json: string
        }[]
        if (rows.length === 0) break
        for (const row of rows) {
          const p = unpackPacket(row.json)
          writeTyped(row.id, p, row.received_at, row.channel_ref, row.gw, false)
          last = row.id
        }
        writeAggregates(local)
        local.clear()
      }
      db.exec(`INSERT INTO links (node, gw, first_seen, last_seen, count, last_snr, last_rssi)
        SELECT r.from_num, r.gw, min(r.received_at), max(r.received_at), count(*), r.rx_snr, r.rx_rssi
        FROM receptions r JOIN gateways g ON g.id = r.gw
        WHERE r.class = ${CLASS_CODE.direct} AND r.from_num IS NOT NULL AND r.gw > 0
          AND (g.num IS NULL OR g.num <> r.from_num)
        GROUP BY r.from_num, r.gw
        ON CONFLICT (node, gw) DO NOTHING`)
      const copies = db.prepare(
        `SELECT r.id, r.packet_ref, r.gw, r.from_num, r.received_at, r.app FROM receptions r
         WHERE r.app IS NOT NULL AND r.id > ? ORDER BY r.id LIMIT 5000`,
      )
      last = 0
      for (;;) {
        const rows = copies.all(last) as {
          id: number
          packet_ref: number
          gw: number
          from_num: number | null
          received_at: number
          app: string
        }[]
        if (rows.length === 0) break
        for (const row of rows) {
          last = row.id
          const app = JSON.parse(row.app) as AppPayload
          if (app.type !== 'traceroute') continue
          const h = head(row.packet_ref)
          st.insertTraceroute.run(
            row.packet_ref,
            row.gw,
            h.from ?? row.from_num ?? 0,
            h.to ?? 0,
            row.received_at,
            h.requestId,
            routeJson(app),
          )
        }
      }
    },
    packetRef(key) {
      const cached = keys.get(key)
      if (cached !== undefined) return Math.floor(cached / 2)
      return (st.packetByKey.get(key) as { id: number } | undefined)?.id
    },
  }
}

/** A gateway's cache entry: its row, its node number, and the last topic interned for it. */
interface GatewayEntry {
  ref: number
  num: number | null
  topic: string | undefined
  topicRef: number
}

function routeJson(app: Extract<AppPayload, { type: 'traceroute' }>): string {
  return JSON.stringify({
    route: app.route,
    snrTowardsDb: app.snrTowardsDb,
    routeBack: app.routeBack,
    snrBackDb: app.snrBackDb,
  })
}
