import {
  bytesToBase64,
  type DecodeFailure,
  type LiveEvents,
  type LiveSource,
  type MapReportMessage,
  type NodeState,
  nodeIdFromNum,
  type PartialPacket,
  type Reception,
  type SourceState,
  type SourceStatus,
  type StoredPacket,
  type TelemetryVariant,
  type UndecodedPacket,
  type UserMessage,
} from '@meshtap/protocol'
import { CLASSES, unpackPacket } from '@meshtap/protocol/store-kit'
import { codeOf, isTransientCode, PgStoreError, wrapError } from './errors.js'
import { NodeStates } from './node-state.js'
import { createOwnedPool, ident, type PgPool, type PgPoolClient, TYPES } from './pool.js'
import { nodeSelect, receptionOf, receptionSelect } from './reader.js'
import { fromRanges } from './writer.js'

/**
 * Options of {@link createPgChangeFeed}: the same database (and schema) the writers' stores use.
 *
 * @example
 * createPgChangeFeed({ pool, schema: 'meshtap' })
 */
export interface PgChangeFeedOptions {
  /** A `pg.Pool` (or anything shaped like one). The feed holds one of its connections for `LISTEN` and never ends the pool. */
  pool?: PgPool
  /** A connection string for a pool the feed creates and ends. */
  connectionString?: string
  /** The schema the store writes to. @default 'meshtap' */
  schema?: string
  /** The `LISTEN` channel. @default `${schema}_changes` (the store's default) */
  channel?: string
  /** Nodes the cache keeps (least recently heard forgotten first). @default 20000 */
  maxNodes?: number
  /** First delay before reconnecting a lost `LISTEN` connection; doubles up to `maxReconnectDelayMs`. @default 250 */
  reconnectDelayMs?: number
  /** @default 5000 */
  maxReconnectDelayMs?: number
  /** Name in `sourceStatus` events. @default 'pg-change-feed' */
  name?: string
}

/**
 * A `LiveSource` (from `@meshtap/protocol`) fed by every process writing to the database: it `LISTEN`s for the
 * announcements the stores make inside their write transactions, reads the new rows, and emits
 * `packet`, `reception`, `undecoded` and `nodeUpdate` events with the same shapes as an ingest,
 * in commit order, plus one `flush` per committed batch and `sourceStatus` when its connection
 * drops and comes back. Its node cache is seeded from the store's nodes table at `start()`.
 *
 * @example
 * const feed = createPgChangeFeed({ pool })
 * feed.on('packet', ({ packet }) => console.log(packet.key))
 * await feed.start()
 */
export interface PgChangeFeed extends LiveSource {
  /** Seeds the node cache and starts listening (resolves once `LISTEN` is in place). */
  start(): Promise<void>
  /** Stops listening, waits for the events being read, releases its connection. */
  stop(): Promise<void>
  /** Whether the `LISTEN` connection is up. */
  readonly connected: boolean
  /** The feed's connection state. */
  status(): SourceStatus
}

const NAME_RE = /^[a-z_][a-z0-9_]{0,47}$/
/** How far back (in change ids) a reconnecting feed looks for changes it missed. */
const CATCH_UP_IDS = 10_000
const SEEN_MAX = 50_000

interface Change {
  id: number
  payload?: string
}

interface ChangeBody {
  d?: number[]
  p?: [number, number][]
  r?: [number, number][]
  u?: [number, number][]
  t?: [number, number]
}

type Row = Record<string, unknown>
type Listener = (payload: never) => void

/**
 * Creates a change feed over the PostgreSQL store's announcements: the way a web instance pushes
 * the events of every ingest worker writing to the same database.
 *
 * @example
 * import pg from 'pg'
 * import { createPgChangeFeed } from '@meshtap/pg-store'
 *
 * const feed = createPgChangeFeed({ pool: new pg.Pool({ connectionString: process.env.DATABASE_URL }) })
 * await feed.start()
 * createWsServer({ server, source: feed, store })
 */
export function createPgChangeFeed(options: PgChangeFeedOptions): PgChangeFeed {
  if (!options || (options.pool === undefined) === (options.connectionString === undefined)) {
    throw new PgStoreError(
      'INVALID_OPTIONS',
      'createPgChangeFeed needs exactly one of `pool` (a pg.Pool) or `connectionString`',
    )
  }
  const schema = options.schema ?? 'meshtap'
  const channel = options.channel ?? `${schema}_changes`
  if (!NAME_RE.test(schema) || !NAME_RE.test(channel)) {
    throw new PgStoreError(
      'INVALID_OPTIONS',
      'schema and channel must be lowercase letters, digits and _',
    )
  }
  const owned = options.pool === undefined
  const pool: PgPool =
    options.pool ?? createOwnedPool(options.connectionString as string, 2, 'meshtap-change-feed')
  const name = options.name ?? 'pg-change-feed'
  const minDelay = Math.max(10, options.reconnectDelayMs ?? 250)
  const maxDelay = Math.max(minDelay, options.maxReconnectDelayMs ?? 5000)
  const s = ident(schema)
  const RECEPTIONS = receptionSelect(s)

  const cache = new NodeStates(Math.max(1, options.maxNodes ?? 20_000))
  const listeners = new Map<keyof LiveEvents, Set<Listener>>()
  const seen = new Set<number>()
  const seenOrder: number[] = []
  let lastId = 0
  let client: PgPoolClient | undefined
  let started = false
  let stopping = false
  let delay = minDelay
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined
  let pending: Change[] = []
  let draining: Promise<void> = Promise.resolve()
  let state: SourceStatus = { source: name, state: 'idle', at: Date.now() }

  function emit<E extends keyof LiveEvents>(event: E, payload: LiveEvents[E]): void {
    const set = listeners.get(event)
    if (!set) return
    for (const l of set) {
      try {
        ;(l as (p: LiveEvents[E]) => void)(payload)
      } catch {
        // A listener's failure must not stop the feed (nor the other listeners).
      }
    }
  }

  function has(event: keyof LiveEvents): boolean {
    return (listeners.get(event)?.size ?? 0) > 0
  }

  function setState(next: SourceState, error?: string): void {
    state = { source: name, state: next, at: Date.now(), ...(error ? { error } : {}) }
    emit('sourceStatus', state)
  }

  function markSeen(id: number): void {
    seen.add(id)
    seenOrder.push(id)
    if (seenOrder.length > SEEN_MAX) {
      for (const old of seenOrder.splice(0, seenOrder.length - SEEN_MAX)) seen.delete(old)
    }
    if (id > lastId) lastId = id
  }

  async function rows(text: string, values: unknown[]): Promise<Row[]> {
    const res = await pool.query({ text, values, types: TYPES })
    return res.rows
  }

  function stateOf(r: Row, telemetry: Row[]): NodeState {
    const num = r.num as number
    const n: NodeState = {
      num,
      id: nodeIdFromNum(num),
      telemetry: {},
      lastHeard: r.last_heard as number,
      packets: r.packets as number,
      gateways: {},
      isGateway: r.is_gateway === true,
    }
    if (typeof r.user_json === 'string') n.user = JSON.parse(r.user_json) as UserMessage
    if (r.position_at !== null && r.latitude !== null && r.longitude !== null) {
      n.position = {
        latitude: r.latitude as number,
        longitude: r.longitude as number,
        at: r.position_at as number,
        from: r.position_src === 1 ? 'mapreport' : 'position',
      }
      if (r.altitude !== null) n.position.altitude = r.altitude as number
      if (r.precision_bits !== null) n.position.precisionBits = r.precision_bits as number
      if (r.radius_m !== null) n.position.radiusM = r.radius_m as number
    }
    if (typeof r.map_json === 'string') n.mapReport = JSON.parse(r.map_json) as MapReportMessage
    for (const t of telemetry) {
      n.telemetry[t.variant as TelemetryVariant] = {
        metrics: JSON.parse(t.metrics as string),
        at: t.at as number,
      }
    }
    if (typeof r.last_gateway_id === 'string' && r.reception_at !== null) {
      n.gateways[r.last_gateway_id] = {
        lastHeard: r.reception_at as number,
        rxSnr: r.last_snr as number,
        rxRssi: r.last_rssi as number,
        ...(r.hops_away !== null ? { hopsAway: r.hops_away as number } : {}),
        receptionClass: CLASSES[r.last_class as number] ?? 'unknown',
        count: 1,
      }
    }
    return n
  }

  async function seed(): Promise<void> {
    const nodes = await rows(`${nodeSelect(s)} ORDER BY n.last_heard DESC, n.num DESC LIMIT $1`, [
      options.maxNodes ?? 20_000,
    ])
    const nums = nodes.map((n) => n.num as number)
    const telemetry = nums.length
      ? await rows(
          `SELECT num, variant, at, metrics FROM ${s}.node_telemetry WHERE num = ANY($1::bigint[])`,
          [`{${nums.join(',')}}`],
        )
      : []
    const byNum = new Map<number, Row[]>()
    for (const t of telemetry) {
      const list = byNum.get(t.num as number) ?? []
      list.push(t)
      byNum.set(t.num as number, list)
    }
    cache.clear()
    // Oldest first, so the most recently heard end up most recent in the cache.
    for (const n of nodes.reverse()) cache.set(stateOf(n, byNum.get(n.num as number) ?? []))
  }

  function enqueue(change: Change): void {
    pending.push(change)
    draining = draining.then(drain)
  }

  async function drain(): Promise<void> {
    if (pending.length === 0) return
    const batch = pending
    pending = []
    const missing = batch.filter((c) => c.payload === undefined && !seen.has(c.id))
    if (missing.length > 0) {
      const found = await retry(() =>
        rows(`SELECT id, payload FROM ${s}.changes WHERE id = ANY($1::bigint[])`, [
          `{${missing.map((c) => c.id).join(',')}}`,
        ]),
      )
      const byId = new Map((found ?? []).map((r) => [r.id as number, r.payload as string]))
      for (const c of missing) c.payload = byId.get(c.id)
    }
    for (const c of batch) {
      if (seen.has(c.id) || c.payload === undefined) continue
      markSeen(c.id)
      await retry(() => apply(JSON.parse(c.payload as string) as ChangeBody))
    }
  }

  /**
   * Retries a read while the database is unreachable (up to ~10 s), then gives up on that change
   * (and says so in a `sourceStatus` event); other failures give up at once.
   */
  async function retry<T>(fn: () => Promise<T>): Promise<T | undefined> {
    let wait = 100
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn()
      } catch (cause) {
        if (attempt >= 7 || stopping || !isTransientCode(codeOf(cause))) {
          setState(state.state, wrapError('reading a change failed', cause).message)
          return undefined
        }
        await new Promise((r) => setTimeout(r, wait))
        wait = Math.min(wait * 2, 2000)
      }
    }
  }

  async function apply(change: ChangeBody): Promise<void> {
    const started = performance.now()
    const days = `{${(change.d ?? []).join(',')}}`
    const packetIds = fromRanges(change.p ?? [])
    const receptionIds = fromRanges(change.r ?? [])
    const undecodedIds = fromRanges(change.u ?? [])
    const [packetRows, receptionRows, undecodedRows] = await Promise.all([
      packetIds.length
        ? rows(
            `SELECT p.id, p.key, p.received_at, p.json, g.gateway_id FROM ${s}.packets p
             LEFT JOIN ${s}.gateways g ON g.id = p.gw WHERE p.id = ANY($1::bigint[]) AND p.json IS NOT NULL`,
            [`{${packetIds.join(',')}}`],
          )
        : [],
      receptionIds.length
        ? rows(
            `${RECEPTIONS} WHERE r.day = ANY($1::int[]) AND r.id = ANY($2::bigint[])${
              change.t ? ' AND r.received_at BETWEEN $3 AND $4' : ''
            } ORDER BY r.received_at, r.id`,
            [days, `{${receptionIds.join(',')}}`, ...(change.t ?? [])],
          )
        : [],
      undecodedIds.length
        ? rows(
            `SELECT u.*, p.key, g.gateway_id FROM ${s}.undecoded u JOIN ${s}.packets p ON p.id = u.packet_ref
             LEFT JOIN ${s}.gateways g ON g.id = u.gw AND u.gw > 0
             WHERE u.day = ANY($1::int[]) AND u.id = ANY($2::bigint[]) ORDER BY u.received_at, u.id`,
            [days, `{${undecodedIds.join(',')}}`],
          )
        : [],
    ])
    const packets = new Map<number, StoredPacket>()
    for (const r of packetRows) {
      packets.set(r.id as number, {
        key: r.key as string,
        packet: unpackPacket(r.json as string),
        receivedAt: r.received_at as number,
      })
    }
    const undecoded = new Map<number, UndecodedPacket>()
    for (const r of undecodedRows) {
      const failure = JSON.parse(r.failure as string) as {
        error: DecodeFailure['error']
        packet: PartialPacket
      }
      const packet: PartialPacket = { ...failure.packet }
      if (r.ciphertext)
        packet.ciphertext = bytesToBase64(new Uint8Array(r.ciphertext as Uint8Array))
      undecoded.set(r.packet_ref as number, {
        key: r.key as string,
        failure: { error: failure.error, packet },
        receivedAt: r.received_at as number,
      })
    }
    const copies = receptionRows.map((r) => ({
      ref: r.packet_ref as number,
      reception: receptionOf(r),
    }))
    // The copy a new packet is announced with: its own first copy (same gateway and time), else
    // the earliest of the change. The packet event comes before its other copies.
    const firstCopy = new Map<number, number>()
    copies.forEach((c, i) => {
      const sp = packets.get(c.ref)
      if (!sp) return
      const prev = firstCopy.get(c.ref)
      if (prev === undefined) firstCopy.set(c.ref, i)
      else if (!ownCopy(copies[prev]?.reception, sp) && ownCopy(c.reception, sp)) {
        firstCopy.set(c.ref, i)
      }
    })
    const wantNodes = has('nodeUpdate')
    const node = (update: ReturnType<NodeStates['applyReception']>) => {
      if (wantNodes) emit('nodeUpdate', update)
    }
    const announced = new Set<number>()
    const done = new Set<number>()
    for (let i = 0; i < copies.length; i++) {
      if (done.has(i)) continue
      const { ref, reception } = copies[i] as (typeof copies)[number]
      const sp = packets.get(ref)
      if (sp && !announced.has(ref)) {
        announced.add(ref)
        const chosen = firstCopy.get(ref) ?? i
        const copy = (copies[chosen] as (typeof copies)[number]).reception
        done.add(chosen)
        emit('packet', { packet: sp, reception: copy })
        node(cache.applyPacket(sp.packet, sp.receivedAt))
        node(cache.applyReception(sp.packet.from, copy))
        if (copy.gatewayId !== undefined) cache.markGateway(copy.gatewayId, copy.receivedAt)
        if (chosen === i) continue
      }
      const from = fromOf(reception.packetKey)
      const u = undecoded.get(ref)
      if (u && !announced.has(ref)) {
        announced.add(ref)
        emit('undecoded', { undecoded: u })
      } else {
        emit('reception', { reception })
      }
      node(cache.applyReception(from, reception))
      if (reception.gatewayId !== undefined) {
        cache.markGateway(reception.gatewayId, reception.receivedAt)
      }
    }
    for (const [ref, sp] of packets) {
      if (announced.has(ref)) continue
      // A packet without a new copy in this change (re-decrypted): announced with its own header.
      const reception = receptionOfPacket(sp)
      emit('packet', { packet: sp, reception })
      node(cache.applyPacket(sp.packet, sp.receivedAt))
      node(cache.applyReception(sp.packet.from, reception))
    }
    for (const [ref, u] of undecoded) {
      if (announced.has(ref)) continue
      emit('undecoded', { undecoded: u })
      const from = u.failure.packet.from ?? fromOf(u.key)
      node(cache.applyReception(from, receptionOfPartial(u)))
    }
    emit('flush', {
      packets: packets.size,
      receptions: copies.length,
      undecoded: undecoded.size,
      durationMs: performance.now() - started,
      attempt: 1,
    })
  }

  /** Removes the feed's listeners from its `LISTEN` connection (a no-op `error` one stays). */
  let detach: () => void = () => undefined

  async function listen(): Promise<void> {
    const c = await pool.connect()
    const onNotification = (m: { channel: string; payload?: string }) => {
      if (m.channel !== channel || !m.payload) return
      const space = m.payload.indexOf(' ')
      const id = Number(space < 0 ? m.payload : m.payload.slice(0, space))
      if (!Number.isFinite(id)) return
      enqueue(space < 0 ? { id } : { id, payload: m.payload.slice(space + 1) })
    }
    const onError = (error: Error) => lost(c, error)
    const onEnd = () => lost(c)
    // A connection the feed gave up may still report errors: never let one crash the process.
    c.on('error', () => undefined)
    c.on('notification', onNotification)
    c.on('error', onError)
    c.on('end', onEnd)
    const off = () => {
      c.removeListener('notification', onNotification as (...args: never[]) => void)
      c.removeListener('error', onError as (...args: never[]) => void)
      c.removeListener('end', onEnd as (...args: never[]) => void)
    }
    try {
      await c.query(`LISTEN ${ident(channel)}`)
    } catch (cause) {
      off()
      c.release(cause instanceof Error ? cause : true)
      throw cause
    }
    client = c
    detach = off
  }

  function lost(c: PgPoolClient, error?: Error): void {
    if (client !== c) return
    client = undefined
    detach()
    try {
      c.release(error ?? true)
    } catch {
      // Already released.
    }
    if (stopping) return
    setState('reconnecting', error?.message ?? 'connection ended')
    scheduleReconnect()
  }

  function scheduleReconnect(): void {
    if (reconnectTimer || stopping) return
    const wait = delay * (0.75 + Math.random() * 0.5)
    delay = Math.min(delay * 2, maxDelay)
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined
      reconnect().catch(() => scheduleReconnect())
    }, wait)
  }

  async function reconnect(): Promise<void> {
    if (stopping) return
    await listen()
    delay = minDelay
    // What was committed while the connection was down: from the change log, skipping what was seen.
    const missed = await rows(`SELECT id, payload FROM ${s}.changes WHERE id > $1 ORDER BY id`, [
      Math.max(0, lastId - CATCH_UP_IDS),
    ])
    for (const r of missed) {
      const id = r.id as number
      if (!seen.has(id)) enqueue({ id, payload: r.payload as string })
    }
    setState('connected')
  }

  const feed: PgChangeFeed = {
    on(event, listener) {
      let set = listeners.get(event)
      if (!set) {
        set = new Set()
        listeners.set(event, set)
      }
      set.add(listener as Listener)
      return () => {
        set.delete(listener as Listener)
      }
    },

    cache: {
      get: (node) => cache.get(node),
      list: () => cache.list(),
    },

    get connected() {
      return client !== undefined
    },

    status() {
      return state
    },

    async start() {
      if (started) return
      if (stopping) throw new PgStoreError('STORE_CLOSED', 'the change feed is stopped')
      started = true
      setState('connecting')
      // Listen first, so nothing committed from now on is missed; announcements that arrive
      // before the cache is seeded wait for it.
      let seeded: () => void = () => undefined
      draining = new Promise<void>((resolve) => {
        seeded = resolve
      })
      try {
        await listen()
        const max = await rows(`SELECT coalesce(max(id), 0) AS id FROM ${s}.changes`, [])
        lastId = (max[0]?.id as number) ?? 0
        await seed()
      } catch (cause) {
        started = false
        const c = client
        client = undefined
        if (c) {
          detach()
          c.release(true)
        }
        pending = []
        seeded()
        setState('offline', String(cause))
        throw wrapError('the change feed could not start', cause)
      }
      seeded()
      setState('connected')
    },

    async stop() {
      if (stopping) return
      stopping = true
      if (reconnectTimer) clearTimeout(reconnectTimer)
      reconnectTimer = undefined
      const c = client
      client = undefined
      if (c) {
        detach()
        const ok = await c.query(`UNLISTEN ${ident(channel)}`).then(
          () => true,
          () => false,
        )
        // A connection still listening must not go back to the pool.
        c.release(ok ? undefined : true)
      }
      await draining.catch(() => undefined)
      if (owned) await pool.end().catch(() => undefined)
      setState('closed')
    },
  }
  return feed
}

function ownCopy(r: Reception | undefined, sp: StoredPacket): boolean {
  return r !== undefined && r.gatewayId === sp.packet.gatewayId && r.receivedAt === sp.receivedAt
}

function fromOf(key: string): number {
  const n = Number(key.slice(0, key.indexOf(':')))
  return Number.isInteger(n) ? n >>> 0 : 0
}

/** The first copy's reception, from the packet's own header (as an ingest builds it). */
function receptionOfPacket(sp: StoredPacket): Reception {
  const p = sp.packet
  const r: Reception = {
    packetKey: sp.key,
    rxTime: p.rxTime ?? 0,
    receivedAt: sp.receivedAt,
    rxSnr: p.rxSnr ?? 0,
    rxRssi: p.rxRssi ?? 0,
    hopLimit: p.hopLimit ?? 0,
    hopStart: p.hopStart ?? 0,
    receptionClass: p.receptionClass ?? 'unknown',
  }
  if (p.gatewayId !== undefined) r.gatewayId = p.gatewayId
  if (p.topic !== undefined) r.topic = p.topic
  if (p.channelId !== undefined) r.channelId = p.channelId
  if (p.relayNode !== undefined) r.relayNode = p.relayNode
  if (p.hopsAway !== undefined) r.hopsAway = p.hopsAway
  return r
}

function receptionOfPartial(u: UndecodedPacket): Reception {
  const h = u.failure.packet
  const r: Reception = {
    packetKey: u.key,
    rxTime: h.rxTime ?? 0,
    receivedAt: u.receivedAt,
    rxSnr: h.rxSnr ?? 0,
    rxRssi: h.rxRssi ?? 0,
    hopLimit: h.hopLimit ?? 0,
    hopStart: h.hopStart ?? 0,
    receptionClass: h.receptionClass ?? 'unknown',
  }
  if (h.gatewayId !== undefined) r.gatewayId = h.gatewayId
  if (h.topic !== undefined) r.topic = h.topic
  if (h.channelId !== undefined) r.channelId = h.channelId
  return r
}
