import {
  type Ack,
  type DecodedPacket,
  type PacketKey,
  type PartialPacket,
  PortNum,
  type PriorityLevel,
  type RawMessage,
  type Reception,
  type Source,
  type SourceStatus,
  type Store,
  type StoredPacket,
  type UndecodedPacket,
  type WriteBatch,
} from '@meshtap/protocol'
import { EventEmitter } from 'eventemitter3'
import {
  createNodeCache,
  type MutableNodeCache,
  type NodeCache,
  type NodeCacheOptions,
} from '../cache/node-cache.js'
import {
  copyReception,
  createCodec,
  derive,
  type MeshtasticCodec,
  type PacketView,
  View,
} from '../codec/decode.js'
import type { ChannelKeyInput } from '../codec/keyring.js'
import { createDedupCache, type DedupEntry, type DedupOptions } from '../dedup/dedup-cache.js'
import { IngestError } from '../errors.js'
import type { DropEvent, IngestEvents, Subscribe } from '../events.js'
import { createMetrics, type MetricsSnapshot, toPrometheus } from '../metrics/metrics.js'
import { BoundedPriorityQueue, PRIORITY_LEVELS, priorityOf } from '../queue/priority-queue.js'
import { createRateLimiter, type RateLimitOptions } from '../rate-limit/token-bucket.js'

/** Batch writer options. */
export interface BatchOptions {
  /** Write when this many records are queued. @default 1000 */
  maxRecords?: number
  /** …or when the oldest queued record has waited this long. @default 100 */
  maxDelayMs?: number
  /** First retry delay after a failed write (doubles up to `retryMaxDelayMs`). @default 100 */
  retryInitialDelayMs?: number
  /** @default 5000 */
  retryMaxDelayMs?: number
  /**
   * Attempts for a batch whose error is not transient before it is dropped (counted). Transient
   * errors (database busy or full, connection lost) are retried until `stop()`.
   * @default 10
   */
  maxAttempts?: number
  /**
   * Batches handed to the store before the first of them is committed. Defaults to the store's
   * {@link Store.writeConcurrency} (1 for a store that does not declare it), and is capped by it:
   * a store that commits on another thread builds the next batch's rows while this one commits.
   * Set 1 to write strictly one batch at a time.
   */
  inFlight?: number
}

/** Options of {@link createIngest}. */
export interface IngestOptions {
  /** Where messages come from (MQTT brokers, captures, simulators). More can be fed with `push`. */
  sources?: readonly Source[]
  /** Where packets go. */
  store: Store
  /** Channel keys (the default LongFast key is always included). Ignored when `codec` is given. */
  keys?: readonly ChannelKeyInput[]
  /** A codec to use instead of one built from `keys`. */
  codec?: MeshtasticCodec
  /** Dedup memory. Map reports (id 0) are keyed by sender and `mapReportBucketMs` time bucket. */
  dedup?: DedupOptions & {
    /** @default 600000 (10 min) */
    mapReportBucketMs?: number
  }
  /** Per-sender token bucket on logical packets, or `false` for none. */
  rateLimit?: RateLimitOptions | false
  /** Records the queue holds before it sheds the lowest priority. @default 10000 */
  queueCapacity?: number
  /**
   * Backpressure on sources that can keep their messages (`Source.pause`, e.g. an MQTT source with
   * QoS 1 and deferred acks): they are paused when the queue holds `highWater` records and resumed
   * at `lowWater`, so a backlog waits at the broker instead of being shed (a shed record is
   * acknowledged, so it would be lost). Sources that cannot pause are shed by priority as before.
   * `false` never pauses. @default { highWater: 0.8 × queueCapacity, lowWater: 0.5 × queueCapacity }
   */
  backpressure?: { highWater?: number; lowWater?: number } | false
  batch?: BatchOptions
  /** Hot cache of the latest state per node. */
  cache?: NodeCacheOptions
  /** Keep packets that could not be decrypted (no key, PKI) with their ciphertext. @default true */
  keepUndecoded?: boolean
  /** Close the store in `stop()`. @default true */
  closeStore?: boolean
  /** Clock (Unix ms), for tests. @default Date.now */
  now?: () => number
}

/**
 * Whether the store is taking writes, for health checks ({@link Ingest.health}): a failing store
 * (disk full, database locked, server gone) shows here while the pipeline keeps retrying.
 *
 * @example
 * const h = ingest.health()
 * if (h.writes === 'failing') console.warn(`store failing since ${h.failingSince}: ${h.lastWriteError?.message}`)
 */
export interface IngestHealth {
  /** `failing` from a failed write until the next successful one. */
  writes: 'ok' | 'failing'
  /** When the current run of failures began (Unix ms), while `failing`. */
  failingSince?: number
  /** Failed write attempts since the last successful one. */
  consecutiveWriteFailures: number
  /** The latest failed write: its message, the store's error code, when (Unix ms). */
  lastWriteError?: { message: string; code?: string; transient: boolean; at: number }
  /** When the last batch was committed (Unix ms). */
  lastWriteOkAt?: number
  /** Records waiting to be written. */
  queueDepth: number
}

/** A running ingest pipeline: source → decode → dedup → rate limit → queue → batch write. */
export interface Ingest {
  /** Initialises the store and starts every source. */
  start(): Promise<void>
  /**
   * Refuses new messages, drains the queue and commits every accepted message (acknowledging it
   * while still connected), stops the sources, closes the store; resolves when nothing is pending.
   */
  stop(): Promise<void>
  /** Feeds one message directly (as a source would). */
  push(message: RawMessage, ack?: Ack): void
  /** Writes everything queued now; resolves when it is committed. */
  flush(): Promise<void>
  /** Subscribes to an event; returns the unsubscribe function. */
  on: Subscribe<IngestEvents>
  /** A plain snapshot of every metric. */
  metrics(): MetricsSnapshot
  /** The metrics in Prometheus text format. */
  prometheus(): string
  /** Whether writes are getting through (cheap: no I/O). */
  health(): IngestHealth
  /**
   * Adds a source at run time (a broker a user configures, a capture to replay): it gets the same
   * status reporting and backpressure as the sources given to `createIngest`, and is started at
   * once if the ingest is running (else with the others in `start()`). Rejects with
   * `INVALID_OPTIONS` when a source of that name is already there, `STOPPED` after `stop()`.
   */
  addSource(source: Source): Promise<void>
  /**
   * Stops a source and removes it; resolves `false` when there is none of that name. Messages it
   * delivered that are not committed yet are still written; at QoS 1 their acknowledgements are
   * lost with the connection, so the broker delivers them again to the next session (deduplicated).
   */
  removeSource(name: string): Promise<boolean>
  /** The sources, in the order they were added. */
  readonly sources: readonly Source[]
  /** Latest state per node. */
  readonly cache: NodeCache
  /** The codec in use (its key ring). */
  readonly codec: MeshtasticCodec
}

interface QueueItem {
  packet?: StoredPacket
  undecoded?: UndecodedPacket
  reception: Reception
  ack: Ack | undefined
  receivedAt: number
  priority: number
  /** The logical packet's dedup entry: when its first record is shed, its copies go with it. */
  entry: DedupEntry | undefined
}

const TRANSIENT_CODES = new Set([
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_FULL',
  'SQLITE_IOERR',
  'SQLITE_CANTOPEN',
  'ENOSPC',
  'EAGAIN',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '57P01',
  '57P03',
  '53300',
  '40001',
  '40P01',
  '08006',
  '08001',
])

/** Whether a store error is worth retrying for as long as it takes. */
export function isTransientStoreError(error: unknown): boolean {
  const e = error as { transient?: unknown; code?: unknown } | null
  if (!e || typeof e !== 'object') return false
  if (e.transient === true) return true
  const code = typeof e.code === 'string' ? e.code : ''
  return (
    TRANSIENT_CODES.has(code) || code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_IOERR')
  )
}

/** The key of a logical packet: `from:id`, or `from:0:bucket` for id 0 (map reports). */
export function packetKeyOf(
  from: number,
  id: number,
  receivedAt: number,
  bucketMs = 600_000,
): PacketKey {
  return id === 0
    ? `${from >>> 0}:0:${Math.floor(receivedAt / bucketMs)}`
    : `${from >>> 0}:${id >>> 0}`
}

function receptionOf(
  h: PartialPacket,
  key: PacketKey,
  receivedAt: number,
  source?: string,
): Reception {
  const gatewayId = h.gatewayId
  const topic = h.topic
  const channelId = h.channelId
  let r: Reception
  if (gatewayId !== undefined && topic !== undefined && channelId !== undefined) {
    // The usual reception: the fields it always has in one literal (same order as below).
    r =
      source !== undefined
        ? {
            packetKey: key,
            rxTime: h.rxTime ?? 0,
            receivedAt,
            rxSnr: h.rxSnr ?? 0,
            rxRssi: h.rxRssi ?? 0,
            hopLimit: h.hopLimit ?? 0,
            hopStart: h.hopStart ?? 0,
            receptionClass: h.receptionClass ?? 'unknown',
            gatewayId,
            topic,
            source,
            channelId,
          }
        : {
            packetKey: key,
            rxTime: h.rxTime ?? 0,
            receivedAt,
            rxSnr: h.rxSnr ?? 0,
            rxRssi: h.rxRssi ?? 0,
            hopLimit: h.hopLimit ?? 0,
            hopStart: h.hopStart ?? 0,
            receptionClass: h.receptionClass ?? 'unknown',
            gatewayId,
            topic,
            channelId,
          }
  } else {
    r = {
      packetKey: key,
      rxTime: h.rxTime ?? 0,
      receivedAt,
      rxSnr: h.rxSnr ?? 0,
      rxRssi: h.rxRssi ?? 0,
      hopLimit: h.hopLimit ?? 0,
      hopStart: h.hopStart ?? 0,
      receptionClass: h.receptionClass ?? 'unknown',
    }
    if (gatewayId !== undefined) r.gatewayId = gatewayId
    if (topic !== undefined) r.topic = topic
    if (source !== undefined) r.source = source
    if (channelId !== undefined) r.channelId = channelId
  }
  if (h.relayNode !== undefined) r.relayNode = h.relayNode
  if (h.hopsAway !== undefined) r.hopsAway = h.hopsAway
  return r
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Creates the ingest pipeline. Every stage is bounded: the dedup memory (size and TTL), the rate
 * limiter, the queue (shedding the lowest priority first, counted) and the batches.
 *
 * Copies of a packet from several gateways become receptions of one logical packet, and are not
 * decrypted again — except traceroutes, whose copies differ (each gateway rewrites and
 * re-encrypts them). With a source in deferred-ack mode (QoS 1 + persistent session), a message is
 * acknowledged only once its batch is committed.
 *
 * @example
 * const ingest = createIngest({ sources: [createMqttSource({ brokers: [{ url, topics: ['msh/US/#'] }] })], store: createMemoryStore() })
 * ingest.on('packet', ({ packet }) => console.log(packet.packet.fromId, packet.packet.portnumName))
 * await ingest.start()
 * process.on('SIGTERM', () => void ingest.stop())
 */
export function createIngest(options: IngestOptions): Ingest {
  if (!options || typeof options.store?.writeBatch !== 'function') {
    throw new IngestError(
      'INVALID_OPTIONS',
      'createIngest: `store` is required (e.g. createMemoryStore())',
    )
  }
  const store = options.store
  const sources = [...(options.sources ?? [])]
  const codec = options.codec ?? createCodec({ keys: options.keys ?? [] })
  const now = options.now ?? Date.now
  const dedup = createDedupCache(options.dedup)
  const bucketMs = options.dedup?.mapReportBucketMs ?? 600_000
  const limiter = options.rateLimit === false ? undefined : createRateLimiter(options.rateLimit)
  const queue = new BoundedPriorityQueue<QueueItem>(options.queueCapacity ?? 10_000)
  const canPause = (s: Source) =>
    options.backpressure !== false &&
    typeof s.pause === 'function' &&
    typeof s.resume === 'function'
  const highWater =
    (options.backpressure || undefined)?.highWater ?? Math.floor(queue.capacity * 0.8)
  const lowWater = (options.backpressure || undefined)?.lowWater ?? Math.floor(queue.capacity * 0.5)
  if (!(lowWater >= 0 && lowWater < highWater && highWater <= queue.capacity)) {
    throw new IngestError(
      'INVALID_OPTIONS',
      `createIngest: backpressure needs 0 ≤ lowWater < highWater ≤ queueCapacity (got ${lowWater}, ${highWater}, ${queue.capacity})`,
    )
  }
  /** Whether the pausable sources are paused because the queue is nearly full. */
  let sourcesPaused = false
  const maxRecords = options.batch?.maxRecords ?? 1000
  const maxDelayMs = options.batch?.maxDelayMs ?? 100
  const retryInitial = options.batch?.retryInitialDelayMs ?? 100
  const retryMax = options.batch?.retryMaxDelayMs ?? 5000
  const maxAttempts = options.batch?.maxAttempts ?? 10
  const storeConcurrency = Math.max(1, Math.floor(Number(store.writeConcurrency) || 1))
  /** Batches in the store's hands at once (only a store that commits in call order takes more). */
  const inFlight = Math.max(
    1,
    Math.min(storeConcurrency, Math.floor(options.batch?.inFlight ?? storeConcurrency)),
  )
  const keepUndecoded = options.keepUndecoded ?? true
  const cache: MutableNodeCache = createNodeCache(options.cache)
  const m = createMetrics()
  const emitter = new EventEmitter()
  const statuses = new Map<string, SourceStatus>()
  /** Per source: stops listening to its status. */
  const unsubscribers = new Map<Source, () => void>()

  let started = false
  /** Set once the sources are stopped: later messages are refused. */
  let closed = false
  let stopPromise: Promise<void> | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let immediate: ReturnType<typeof setImmediate> | undefined
  let writing: Promise<void> | undefined
  let writingSync = false
  const writeSync = store.writeBatchSync?.bind(store)
  let lastWriteOkAt: number | undefined
  let lastWriteError: IngestHealth['lastWriteError']
  let failingSince: number | undefined
  let consecutiveWriteFailures = 0

  function emit<E extends keyof IngestEvents>(event: E, payload: IngestEvents[E]): void {
    if (emitter.listenerCount(event) === 0) return
    try {
      emitter.emit(event, payload)
    } catch (cause) {
      if (event !== 'error') {
        emit(
          'error',
          new IngestError('SOURCE_FAILED', `a "${event}" listener threw: ${String(cause)}`, {
            cause,
          }),
        )
      }
    }
  }

  /** Counts and reports something not kept, and acknowledges it (it is final). */
  function drop(e: DropEvent, ack?: Ack): void {
    if (e.reason !== 'decode-failed') {
      m.dropped += e.count
      m.droppedByReason[e.reason] += e.count
      if (e.priority) m.droppedByPriority[e.priority] += e.count
    }
    emit('drop', e)
    ack?.()
  }

  function nodeUpdate(update: ReturnType<MutableNodeCache['applyPacket']>): void {
    if (emitter.listenerCount('nodeUpdate') > 0) emit('nodeUpdate', update)
  }

  /** Sheds a queued or refused record; a packet's first record takes its later copies with it. */
  function shed(item: QueueItem, priority: number): void {
    if ((item.packet || item.undecoded) && item.entry) {
      item.entry.fate = 'dropped'
      item.entry.dropReason = 'queue-full'
    }
    drop(
      {
        reason: 'queue-full',
        count: 1,
        key: item.reception.packetKey,
        priority: PRIORITY_LEVELS[priority] as PriorityLevel,
      },
      item.ack,
    )
  }

  function enqueue(item: QueueItem): boolean {
    const res = queue.push(item, item.priority)
    if (!res.accepted) {
      shed(item, item.priority)
      return false
    }
    if (res.evicted) shed(res.evicted.item, res.evicted.priority)
    if (!sourcesPaused && queue.size >= highWater && sources.some(canPause)) {
      sourcesPaused = true
      m.pauses++
      for (const s of sources) pauseOne(s)
    }
    scheduleFlush()
    return true
  }

  /** Resumes paused sources once the queue is down to its low-water mark. */
  function maybeResume(): void {
    if (!sourcesPaused || queue.size > lowWater) return
    resumeAll()
  }

  /** The sources paused for backpressure (each paused once, resumed once). */
  const pausedSet = new Set<Source>()
  function pauseOne(s: Source): void {
    if (!canPause(s) || pausedSet.has(s)) return
    pausedSet.add(s)
    s.pause?.()
  }
  function resumeAll(): void {
    sourcesPaused = false
    for (const s of pausedSet) s.resume?.()
    pausedSet.clear()
  }

  function acceptPacket(
    p: DecodedPacket,
    key: PacketKey,
    receivedAt: number,
    t: number,
    source: string | undefined,
    ack: Ack | undefined,
  ): void {
    if (limiter && !limiter.take(p.from, t)) {
      m.rateLimited++
      dedup.set({
        key,
        byId: p.id !== 0,
        from: p.id !== 0 ? p.from | 0 : 0,
        id: p.id | 0,
        portnum: p.portnum,
        fate: 'dropped',
        dropReason: 'rate-limited',
        hasBitfield: p.bitfield !== undefined,
        firstSeen: t,
        copies: 1,
        priority: 3,
      })
      drop(
        {
          reason: 'rate-limited',
          count: 1,
          key,
          from: p.from,
          priority: PRIORITY_LEVELS[priorityOf(p.portnum)],
        },
        ack,
      )
      return
    }
    const priority = priorityOf(p.portnum)
    const entry: DedupEntry = {
      key,
      byId: p.id !== 0,
      from: p.id !== 0 ? p.from | 0 : 0,
      id: p.id | 0,
      portnum: p.portnum,
      fate: 'accepted',
      hasBitfield: p.bitfield !== undefined,
      firstSeen: t,
      copies: 1,
      priority,
      ...(p.gatewayId !== undefined ? { gateways: [p.gatewayId] } : {}),
    }
    dedup.set(entry)
    const stored: StoredPacket = { key, packet: p, receivedAt }
    const reception = receptionOf(p, key, receivedAt, source)
    m.receptions++
    if (!enqueue({ packet: stored, reception, ack, receivedAt, priority, entry })) return
    m.packets++
    emit('packet', { packet: stored, reception })
    nodeUpdate(cache.applyPacket(p, receivedAt))
    nodeUpdate(cache.applyReception(p.from, reception))
    if (p.gatewayId !== undefined) cache.markGateway(p.gatewayId, receivedAt)
  }

  /** The key of the packet {@link lookup} looked up last. */
  let lookedUpKey: PacketKey = ''

  /**
   * The dedup entry of packet `from`/`id` (received at `at`, for map reports), with its key left in
   * {@link lookedUpKey}: the key of `packetKeyOf(from, id, at, bucketMs)`. A copy of a packet
   * already seen takes the key string of its first copy, so none is built for it.
   */
  function lookup(from: number, id: number, at: number, t: number): DedupEntry | undefined {
    if (id !== 0) {
      const e = dedup.getById(from, id, t)
      lookedUpKey = e === undefined ? packetKeyOf(from, id, at, bucketMs) : e.key
      return e
    }
    lookedUpKey = packetKeyOf(from, id, at, bucketMs)
    return dedup.get(lookedUpKey, t)
  }

  function push(message: RawMessage, ack?: Ack): void {
    m.received++
    if (closed) {
      // Not acknowledged: a broker keeps it for the next session.
      drop({ reason: 'stopped', count: 1 })
      return
    }
    const t = now()
    const receivedAt = message.receivedAt ?? t
    let view: ReturnType<MeshtasticCodec['inspect']>
    try {
      view = codec.inspect(message)
    } catch (cause) {
      // The codec never throws on input; this is a bug, reported but not fatal.
      m.failed++
      emit(
        'error',
        new IngestError('SOURCE_FAILED', `codec threw on a message: ${String(cause)}`, { cause }),
      )
      ack?.()
      return
    }
    if (view instanceof View) {
      // The common case: an envelope read, its payload not opened. A copy of a packet already
      // seen is recorded straight from the raw header, without building a header object.
      const p = view.p
      if (p.rxTime) m.ingestLag.observe(Math.max(0, receivedAt - p.rxTime * 1000))
      const entry = lookup(p.from, p.id, p.rxTime ? p.rxTime * 1000 : receivedAt, t)
      const key = lookedUpKey
      if (entry) {
        duplicate(
          key,
          entry,
          undefined,
          view,
          p.from,
          view.gatewayId || undefined,
          receivedAt,
          message.source,
          ack,
        )
        return
      }
      openFirst(view, key, receivedAt, t, message.source, ack)
      return
    }
    const h = view.header
    if (h?.rxTime) m.ingestLag.observe(Math.max(0, receivedAt - h.rxTime * 1000))
    if (view.result && !view.result.ok) {
      const f = view.result.error
      m.failed++
      m.failedByCode[f.error.code]++
      drop(
        {
          reason: 'decode-failed',
          count: 1,
          code: f.error.code,
          message: f.error.message,
          ...(f.packet.from !== undefined ? { from: f.packet.from } : {}),
        },
        ack,
      )
      return
    }
    if (view.result?.ok) {
      const p = view.result.value
      m.decoded++
      const seen = lookup(p.from, p.id, p.rxTime ? p.rxTime * 1000 : receivedAt, t)
      const key = lookedUpKey
      if (seen) {
        duplicate(key, seen, p, undefined, p.from, p.gatewayId, receivedAt, message.source, ack)
        return
      }
      acceptPacket(p, key, receivedAt, t, message.source, ack)
      return
    }
    if (!h) {
      ack?.()
      return
    }
    const entry = lookup(h.from ?? 0, h.id ?? 0, h.rxTime ? h.rxTime * 1000 : receivedAt, t)
    const key = lookedUpKey
    if (entry) {
      duplicate(key, entry, h, view, h.from ?? 0, h.gatewayId, receivedAt, message.source, ack)
      return
    }
    openFirst(view, key, receivedAt, t, message.source, ack)
  }

  /** Opens the first copy of a packet: decrypts and decodes it, keeps it undecoded, or drops it. */
  function openFirst(
    view: PacketView,
    key: PacketKey,
    receivedAt: number,
    t: number,
    source: string | undefined,
    ack: Ack | undefined,
  ): void {
    const h = view.header as PartialPacket
    const r = codec.open(view)
    if (r.ok) {
      m.decoded++
      acceptPacket(r.value, key, receivedAt, t, source, ack)
      return
    }
    const f = r.error
    m.failed++
    m.failedByCode[f.error.code]++
    const code = f.error.code
    if (keepUndecoded && (code === 'NO_MATCHING_KEY' || code === 'PKI_ENCRYPTED')) {
      const entry: DedupEntry = {
        key,
        byId: (h.id ?? 0) !== 0,
        from: (h.id ?? 0) !== 0 ? (h.from ?? 0) | 0 : 0,
        id: (h.id ?? 0) | 0,
        portnum: -1,
        fate: 'undecoded',
        hasBitfield: false,
        firstSeen: t,
        copies: 1,
        priority: 3,
        ...(h.gatewayId !== undefined ? { gateways: [h.gatewayId] } : {}),
      }
      dedup.set(entry)
      const undecoded: UndecodedPacket = { key, failure: f, receivedAt }
      const reception = receptionOf(f.packet, key, receivedAt, source)
      m.receptions++
      if (enqueue({ undecoded, reception, ack, receivedAt, priority: 3, entry })) {
        m.packets++
        emit('undecoded', { undecoded })
        nodeUpdate(cache.applyReception(h.from ?? 0, reception))
      }
      return
    }
    drop(
      {
        reason: 'decode-failed',
        count: 1,
        code,
        message: f.error.message,
        key,
        ...(h.from !== undefined ? { from: h.from } : {}),
      },
      ack,
    )
  }

  /**
   * Records a copy of a packet already seen. `h` is its header when there is one (a decoded
   * result, a custom codec); else the reception is read straight from the view's raw header.
   */
  function duplicate(
    key: PacketKey,
    entry: DedupEntry,
    h: PartialPacket | undefined,
    view: PacketView | undefined,
    from: number,
    gatewayId: string | undefined,
    receivedAt: number,
    source: string | undefined,
    ack: Ack | undefined,
  ): void {
    m.duplicates++
    entry.copies++
    if (entry.fate === 'dropped') {
      // A copy of a packet that was not kept goes with it, counted under the same reason.
      drop(
        {
          reason: entry.dropReason ?? 'queue-full',
          count: 1,
          key,
          from,
          priority: PRIORITY_LEVELS[entry.priority] as PriorityLevel,
        },
        ack,
      )
      return
    }
    if (gatewayId !== undefined && entry.gateways) {
      if (entry.gateways.includes(gatewayId)) {
        // The same gateway uplinked this packet again: nothing new to record.
        m.repeats++
        ack?.()
        return
      }
      entry.gateways.push(gatewayId)
    }
    let reception: Reception | undefined
    if (h) {
      derive(h, entry.hasBitfield)
      reception = receptionOf(h, key, receivedAt, source)
    } else if (view) {
      reception = copyReception(view, key, receivedAt, source, entry.hasBitfield)
    }
    if (!reception) {
      ack?.()
      return
    }
    if (view && entry.portnum === PortNum.TRACEROUTE_APP) {
      // Gateways rewrite and re-encrypt traceroutes: this copy's route is its own.
      const r = codec.open(view)
      if (r.ok) {
        m.decoded++
        reception.app = r.value.app
      }
    }
    m.receptions++
    if (enqueue({ reception, ack, receivedAt, priority: entry.priority, entry })) {
      emit('reception', { reception })
      nodeUpdate(cache.applyReception(from, reception))
      if (gatewayId !== undefined) cache.markGateway(gatewayId, receivedAt)
    }
  }

  // ---- sources ----

  /** Follows a source's connection state (metrics, `sourceStatus` events). */
  function watch(source: Source): void {
    if (!source.onStatus || unsubscribers.has(source)) return
    unsubscribers.set(
      source,
      source.onStatus((st) => {
        statuses.set(source.name, st)
        emit('sourceStatus', st)
      }),
    )
  }

  /** Starts a source into the pipeline; paused at once if the others are. */
  async function launch(source: Source): Promise<void> {
    await source.start((msg, ack) => push(msg, ack))
    if (sourcesPaused) pauseOne(source)
  }

  // ---- batch writer ----

  function scheduleFlush(): void {
    if (writing) return
    if (queue.size >= maxRecords) {
      // A store that commits synchronously (SQLite, memory) is written to right here: a broker
      // can hand over thousands of messages in one uninterrupted run of callbacks (mqtt.js parses a
      // whole socket read in a process.nextTick chain), during which no timer or promise runs.
      if (writeSync && !writingSync) flushSync()
      else if (!immediate) immediate = setImmediate(runFlush)
    } else if (!timer) {
      timer = setTimeout(runFlush, maxDelayMs)
    }
  }

  function runFlush(): void {
    if (timer) clearTimeout(timer)
    timer = undefined
    if (immediate) clearImmediate(immediate)
    immediate = undefined
    if (writing) return
    writing = writeLoop(false).finally(() => {
      writing = undefined
      if (queue.size > 0 && !stopPromise) scheduleFlush()
    })
  }

  /** Synchronous writes of full batches; a failure hands the batch to the async retry loop. */
  function flushSync(): void {
    writingSync = true
    try {
      while (queue.size >= maxRecords && !writing) {
        const prepared = prepare(queue.take(maxRecords))
        if (!prepared) continue
        const started = performance.now()
        try {
          ;(writeSync as (b: WriteBatch) => void)(prepared.batch)
        } catch (cause) {
          writing = retryItems(prepared, cause).finally(() => {
            writing = undefined
            if (queue.size > 0 && !stopPromise) scheduleFlush()
          })
          return
        }
        committed(prepared, performance.now() - started, 1)
      }
    } finally {
      writingSync = false
    }
  }

  /** Writes batches; with `all`, until the queue is empty, else while full batches are waiting. */
  async function writeLoop(all: boolean): Promise<void> {
    if (inFlight > 1) return writeOverlapped(all)
    do {
      const items = queue.take(maxRecords)
      if (items.length === 0) return
      const prepared = prepare(items)
      if (prepared) await retryItems(prepared, undefined)
    } while (queue.size >= maxRecords || (all && queue.size > 0))
  }

  /**
   * {@link writeLoop} for a store that takes several batches at once: up to `inFlight` batches are
   * handed over before the first is committed, so the next one is built while the store commits.
   * Each batch is settled after the one before it (counters, acks and `flush` events follow the
   * commit order), and a batch that failed is retried or split only once every earlier batch is
   * settled; the batches handed over after it may have been committed first (the store keeps a
   * reception whose packet it does not have yet, and fills the packet in when it comes).
   */
  async function writeOverlapped(all: boolean): Promise<void> {
    // The batches in the store's hands, oldest first; every batch before them is settled.
    const handedOver: Promise<void>[] = []
    let first = true
    for (;;) {
      const more = first || queue.size >= maxRecords || (all && queue.size > 0)
      if (more && queue.size > 0 && handedOver.length < inFlight) {
        first = false
        const prepared = prepare(queue.take(maxRecords))
        if (!prepared) continue
        const before = handedOver[handedOver.length - 1] ?? Promise.resolve()
        handedOver.push(settleAfter(before, prepared, handOver(prepared.batch), performance.now()))
        continue
      }
      const oldest = handedOver.shift()
      if (!oldest) return
      await oldest
    }
  }

  /** Calls `writeBatch`; resolves to `undefined` once committed, or to the failure. */
  function handOver(batch: WriteBatch): Promise<{ error: unknown } | undefined> {
    try {
      return store.writeBatch(batch).then(
        () => undefined,
        (error: unknown) => ({ error }),
      )
    } catch (error) {
      return Promise.resolve({ error })
    }
  }

  /** Settles a handed-over batch once `before` (the batch handed over before it) is settled. */
  async function settleAfter(
    before: Promise<void>,
    p: Prepared,
    write: Promise<{ error: unknown } | undefined>,
    started: number,
  ): Promise<void> {
    const failure = await write
    const durationMs = performance.now() - started
    await before
    if (failure === undefined) committed(p, durationMs, 1)
    else await retryItems(p, failure.error)
  }

  interface Prepared {
    items: QueueItem[]
    batch: WriteBatch
  }

  /**
   * Builds the batch. Copies whose packet was shed from the queue are shed too (counted), so no
   * reception is stored without its packet.
   */
  function prepare(all: QueueItem[]): Prepared | undefined {
    const items: QueueItem[] = []
    const packets: StoredPacket[] = []
    const receptions: Reception[] = []
    const undecoded: UndecodedPacket[] = []
    for (const it of all) {
      if (!it.packet && !it.undecoded && it.entry?.fate === 'dropped') {
        shed(it, it.priority)
        continue
      }
      items.push(it)
      if (it.packet) packets.push(it.packet)
      if (it.undecoded) undecoded.push(it.undecoded)
      receptions.push(it.reception)
    }
    return items.length === 0 ? undefined : { items, batch: { packets, receptions, undecoded } }
  }

  function committed(p: Prepared, durationMs: number, attempt: number): void {
    const t = now()
    lastWriteOkAt = t
    failingSince = undefined
    consecutiveWriteFailures = 0
    m.written += p.items.length
    m.packetsWritten += p.batch.packets.length + p.batch.undecoded.length
    maybeResume()
    m.batches++
    for (const it of p.items) {
      m.commitLatency.observe(t - it.receivedAt)
      it.ack?.()
    }
    emit('flush', {
      packets: p.batch.packets.length,
      receptions: p.batch.receptions.length,
      undecoded: p.batch.undecoded.length,
      durationMs,
      attempt,
    })
  }

  /**
   * Writes a batch, retrying; `failed` is the error of a first (synchronous) attempt, if any.
   * Transient errors (locked, full, connection lost) are retried with backoff for as long as it
   * takes. A batch refused for good is split in halves, recursively, so one bad record costs only
   * itself: a record that fails alone while its siblings were written is dropped at once
   * (`store-failed`, counted); a batch of one that was never split gets `maxAttempts` tries.
   */
  async function retryItems(p: Prepared, failed: unknown, depth = 0): Promise<void> {
    const items = p.items
    for (let attempt = 1; ; attempt++) {
      const started = performance.now()
      try {
        if (attempt === 1 && failed !== undefined) throw failed
        await store.writeBatch(p.batch)
        committed(p, performance.now() - started, attempt)
        return
      } catch (cause) {
        m.writeErrors++
        const transient = isTransientStoreError(cause)
        const failedAt = now()
        failingSince ??= failedAt
        consecutiveWriteFailures++
        const code = (cause as { code?: unknown } | null)?.code
        lastWriteError = {
          message: (cause as Error)?.message ?? String(cause),
          ...(typeof code === 'string' ? { code } : {}),
          transient,
          at: failedAt,
        }
        const split = !transient && items.length > 1
        emit(
          'error',
          new IngestError(
            'STORE_WRITE_FAILED',
            `[${store.name}] writing a batch of ${items.length} records failed (attempt ${attempt}${transient ? ', transient: retrying' : split ? ': splitting it to isolate the record the store refuses' : ''}): ${(cause as Error)?.message ?? String(cause)}`,
            { cause, transient },
          ),
        )
        if (split) {
          const mid = items.length >> 1
          const first = prepareRetry(items.slice(0, mid))
          if (first) await retryItems(first, undefined, depth + 1)
          // Built after the first half is settled: copies of a packet it could not store go too.
          const second = prepareRetry(items.slice(mid))
          if (second) await retryItems(second, undefined, depth + 1)
          return
        }
        const giveUp =
          (!transient && (depth > 0 || attempt >= maxAttempts)) ||
          (stopPromise !== undefined && attempt >= Math.min(maxAttempts, 5))
        if (giveUp) {
          storeFailed(items)
          return
        }
        await sleep(Math.min(retryMax, retryInitial * 2 ** (attempt - 1)))
      }
    }
  }

  /** Counts, reports and acknowledges records the store would not take. */
  function storeFailed(items: QueueItem[]): void {
    m.dropped += items.length
    m.droppedByReason['store-failed'] += items.length
    for (const it of items) {
      m.droppedByPriority[PRIORITY_LEVELS[it.priority] as PriorityLevel]++
      if ((it.packet || it.undecoded) && it.entry) {
        // Later copies of a packet that could not be stored go with it.
        it.entry.fate = 'dropped'
        it.entry.dropReason = 'store-failed'
      }
    }
    emit('drop', { reason: 'store-failed', count: items.length })
    for (const it of items) it.ack?.()
  }

  /** A part of a split batch, without the copies of packets that could not be stored. */
  function prepareRetry(part: QueueItem[]): Prepared | undefined {
    const orphans = part.filter((it) => !it.packet && !it.undecoded && it.entry?.fate === 'dropped')
    if (orphans.length === 0) return prepare(part)
    storeFailed(orphans)
    const gone = new Set(orphans)
    return prepare(part.filter((it) => !gone.has(it)))
  }

  /** Writes everything queued (full and partial batches); resolves when committed. */
  async function drain(): Promise<void> {
    if (timer) clearTimeout(timer)
    if (immediate) clearImmediate(immediate)
    timer = undefined
    immediate = undefined
    while (writing) await writing
    if (queue.size === 0) return
    writing = writeLoop(true).finally(() => {
      writing = undefined
    })
    await writing
  }

  function snapshot(): MetricsSnapshot {
    const sizes = queue.sizes()
    let connected = 0
    for (const s of statuses.values()) if (s.state === 'connected') connected++
    return {
      counters: {
        received: m.received,
        decoded: m.decoded,
        failed: m.failed,
        failedByCode: { ...m.failedByCode },
        packets: m.packets,
        duplicates: m.duplicates,
        repeats: m.repeats,
        pauses: m.pauses,
        receptions: m.receptions,
        rateLimited: m.rateLimited,
        dropped: m.dropped,
        droppedByReason: { ...m.droppedByReason },
        droppedByPriority: { ...m.droppedByPriority },
        written: m.written,
        packetsWritten: m.packetsWritten,
        batches: m.batches,
        writeErrors: m.writeErrors,
      },
      gauges: {
        queueDepth: queue.size,
        queueDepthByPriority: Object.fromEntries(
          PRIORITY_LEVELS.map((l, i) => [l, sizes[i] ?? 0]),
        ) as MetricsSnapshot['gauges']['queueDepthByPriority'],
        cacheNodes: cache.size,
        dedupEntries: dedup.size,
        sourcesConnected: connected,
        sourcesPaused: sourcesPaused ? 1 : 0,
      },
      histograms: {
        commitLatencyMs: m.commitLatency.snapshot(),
        ingestLagMs: m.ingestLag.snapshot(),
      },
    }
  }

  return {
    codec,
    cache,
    push,
    flush: drain,
    on(event, listener) {
      emitter.on(event, listener as (...args: unknown[]) => void)
      return () => {
        emitter.off(event, listener as (...args: unknown[]) => void)
      }
    },
    metrics: snapshot,
    prometheus: () => toPrometheus(snapshot()),
    health: (): IngestHealth => ({
      writes: failingSince === undefined ? 'ok' : 'failing',
      ...(failingSince !== undefined ? { failingSince } : {}),
      consecutiveWriteFailures,
      ...(lastWriteError ? { lastWriteError: { ...lastWriteError } } : {}),
      ...(lastWriteOkAt !== undefined ? { lastWriteOkAt } : {}),
      queueDepth: queue.size,
    }),
    async start() {
      if (started) throw new IngestError('ALREADY_STARTED', 'this ingest was already started')
      if (stopPromise) throw new IngestError('STOPPED', 'this ingest was stopped; create a new one')
      started = true
      await store.init?.()
      for (const source of sources) watch(source)
      try {
        await Promise.all(sources.map(launch))
      } catch (cause) {
        throw new IngestError(
          'SOURCE_FAILED',
          `a source failed to start: ${(cause as Error)?.message ?? String(cause)}`,
          { cause },
        )
      }
    },
    get sources() {
      return [...sources]
    },
    async addSource(source) {
      if (stopPromise) throw new IngestError('STOPPED', 'this ingest was stopped; create a new one')
      if (!source || typeof source.start !== 'function' || typeof source.stop !== 'function') {
        throw new IngestError('INVALID_OPTIONS', 'addSource: not a Source (start and stop needed)')
      }
      if (sources.some((s) => s.name === source.name)) {
        throw new IngestError(
          'INVALID_OPTIONS',
          `addSource: there is already a source named "${source.name}"; give each a unique name`,
        )
      }
      sources.push(source)
      if (!started) return
      watch(source)
      try {
        await launch(source)
      } catch (cause) {
        sources.splice(sources.indexOf(source), 1)
        unsubscribers.get(source)?.()
        unsubscribers.delete(source)
        throw new IngestError(
          'SOURCE_FAILED',
          `source "${source.name}" failed to start: ${(cause as Error)?.message ?? String(cause)}`,
          { cause },
        )
      }
    },
    async removeSource(name) {
      const source = sources.find((s) => s.name === name)
      if (!source) return false
      sources.splice(sources.indexOf(source), 1)
      unsubscribers.get(source)?.()
      unsubscribers.delete(source)
      statuses.delete(name)
      // A paused source is resumed first, so its stop is not held up by the pause.
      if (pausedSet.delete(source)) source.resume?.()
      if (started) await source.stop()
      return true
    },
    stop() {
      stopPromise ??= (async () => {
        // Refuse new messages first (unacknowledged: a broker keeps them for the next session),
        // then commit what was accepted while the sources are still connected, so its
        // acknowledgements reach the broker; only then disconnect.
        closed = true
        await drain()
        resumeAll()
        await Promise.allSettled(sources.map((s) => s.stop()))
        for (const u of unsubscribers.values()) u()
        unsubscribers.clear()
        if (options.closeStore ?? true) await store.close?.()
      })()
      return stopPromise
    },
  }
}
