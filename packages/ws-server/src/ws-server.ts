import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, STATUS_CODES } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import {
  type ClientMessage,
  type DropEvent,
  type FlushEvent,
  type LiveSource,
  type NodeState,
  type PacketEvent,
  parseClientMessage,
  type ReceptionEvent,
  type ServerHelloMessage,
  type SnapshotMessage,
  type SourceStatus,
  type SubscribedMessage,
  type UndecodedEvent,
  WIRE_CLOSE_CODES,
  WIRE_EVENT_KINDS,
  WIRE_PROTOCOL_VERSION,
  WIRE_SUBPROTOCOL,
  type WireCapability,
  type WireErrorMessage,
  type WireEventKind,
  type WireRequestId,
  type WireValidationOptions,
} from '@meshtap/protocol'
import { type WebSocket, WebSocketServer } from 'ws'
import { credentialsOf, type WsCredentials } from './auth.js'
import {
  type Batch,
  BatchRing,
  batchText,
  type EventItem,
  type NodeItem,
  nodeItemBytes,
} from './batch.js'
import { WsServerError } from './errors.js'
import { type CompiledFilter, compileFilter, type EventMeta } from './filter.js'
import { canWriteFrames, type DeflateSettings, OutMessage, sendMessage } from './frames.js'
import { NodeTracker } from './node-tracker.js'
import { nodeStateFromRow, type WsSnapshotStore } from './snapshot-store.js'

/**
 * An HTTP or HTTPS server the WebSocket server attaches to (its `upgrade` event).
 *
 * @example
 * const server: WsUpgradeServer = http.createServer(app)
 */
export interface WsUpgradeServer {
  on(
    event: 'upgrade',
    listener: (request: IncomingMessage, socket: Duplex, head: Uint8Array) => void,
  ): unknown
  off(
    event: 'upgrade',
    listener: (request: IncomingMessage, socket: Duplex, head: Uint8Array) => void,
  ): unknown
}

/**
 * permessage-deflate settings. The server negotiates it with `server_no_context_takeover`, so each
 * batch is compressed once for all the clients that receive it.
 *
 * @example
 * createWsServer({ server, source, perMessageDeflate: { thresholdBytes: 4096, level: 1 } })
 */
export interface WsDeflateOptions {
  /**
   * Only messages of at least this many bytes are compressed.
   * @default 1024
   */
  thresholdBytes?: number
  /**
   * zlib level, 1 (fast) … 9 (small).
   * @default 6
   */
  level?: number
  /**
   * zlib memory level, 1 … 9.
   * @default 8
   */
  memLevel?: number
}

/**
 * Options of {@link createWsServer}. Give `server` (attach) or `port` (listen).
 *
 * @example
 * const options: WsServerOptions = { server: httpServer, path: '/live', source: ingest, flushMs: 100 }
 */
export interface WsServerOptions {
  /**
   * An existing HTTP(S) server: upgrades on `path` are handled, every other request and upgrade is
   * left alone. The server is never listened on or closed by the adapter.
   */
  server?: WsUpgradeServer
  /** Listen on this port instead (0 = any free port; see `address()`). Other requests get 426. */
  port?: number
  /**
   * Interface to listen on with `port`.
   * @default all interfaces
   */
  host?: string
  /**
   * URL path of the WebSocket endpoint.
   * @default '/'
   */
  path?: string
  /** Where events come from: an ingest of `@meshtap/core`, or anything with the same `on` and `cache`. */
  source: LiveSource
  /** A store with `listNodes`, to include nodes the cache no longer holds in snapshots. */
  store?: WsSnapshotStore
  /**
   * Decides whether an upgrade request may connect, before the upgrade completes: return a
   * principal (any value but `undefined`, `null` or `false`) to accept, anything else (or throw,
   * or reject) to refuse with HTTP 401. `credentials` holds the token found in the
   * `Authorization: Bearer` header, the query parameter or a `meshtap.token.<token>` subprotocol.
   * @default every request is accepted
   */
  authenticate?: (request: IncomingMessage, credentials: WsCredentials) => unknown
  /**
   * Query parameter that may carry the token.
   * @default 'token'
   */
  tokenQueryParam?: string
  /**
   * The event kinds the server carries (a filter naming another is refused). `drop` and `flush`
   * are operational and frequent; add them when a dashboard needs them.
   * @default ['packet', 'reception', 'undecoded', 'node', 'status']
   */
  kinds?: readonly WireEventKind[]
  /**
   * Length of a time slice: events are sent in one batch per client every `flushMs`.
   * @default 100
   */
  flushMs?: number
  /**
   * WebSocket ping interval.
   * @default 30000
   */
  heartbeatMs?: number
  /**
   * A client that has not answered a ping (nor sent anything) for this long is terminated.
   * @default 60000
   */
  heartbeatTimeoutMs?: number
  /**
   * Per-client cap on bytes waiting to be sent. A client over it gets no new batches; it catches
   * up from the resume ring once its buffer is half empty, or gets a `lagged` notice and a fresh
   * snapshot when the ring no longer has what it missed.
   * @default 4194304 (4 MiB)
   */
  maxBufferedBytes?: number
  /**
   * What to do with a client over `maxBufferedBytes`: catch up or resynchronise it (`'snapshot'`),
   * or close it with 1013 at once (`'close'`).
   * @default 'snapshot'
   */
  onLag?: 'snapshot' | 'close'
  /**
   * A client whose buffer stays over half of `maxBufferedBytes` for this long is closed with 1013.
   * @default 30000
   */
  maxStallMs?: number
  /**
   * Negotiate permessage-deflate and compress messages over the threshold (each batch once per
   * filter). Off by default: it costs CPU and only pays on slow links.
   * @default false
   */
  perMessageDeflate?: boolean | WsDeflateOptions
  /**
   * Longest client message read; longer ones get a `TOO_LARGE` error frame.
   * @default 16384
   */
  maxMessageBytes?: number
  /**
   * Longest client frame accepted at all; longer ones close the connection with 1009.
   * @default 4 × maxMessageBytes
   */
  maxFrameBytes?: number
  /**
   * Sustained client messages per second per connection; more get a `RATE_LIMITED` error frame
   * (at most one a second) and are ignored.
   * @default 10
   */
  messagesPerSecond?: number
  /**
   * Burst allowance above the rate. A client that sends this many more messages while limited is
   * closed with 1008.
   * @default 20
   */
  messageBurst?: number
  /**
   * Most connections at once (upgrades past it get HTTP 503).
   * @default 10000
   */
  maxClients?: number
  /**
   * Most values in one filter list.
   * @default 1000
   */
  maxFilterValues?: number
  /**
   * Recent batches kept for `resume` and for clients catching up.
   * @default 300 (30 s at 100 ms)
   */
  resumeBatches?: number
  /**
   * …and at most this many bytes of them.
   * @default 33554432 (32 MiB)
   */
  resumeBytes?: number
  /**
   * Most nodes in a snapshot (most recently heard first).
   * @default 20000
   */
  maxSnapshotNodes?: number
  /**
   * Nodes per snapshot message.
   * @default 250
   */
  snapshotChunkNodes?: number
  /**
   * Store nodes older than this are left out of snapshots.
   * @default 86400000 (24 h)
   */
  storeSnapshotMaxAgeMs?: number
  /**
   * A subscribed client that got no batch for this long (nothing matched) gets an empty batch
   * with the latest `seq`, so that it can resume from there.
   * @default 10000
   */
  checkpointMs?: number
  /**
   * Nodes whose last sent state is remembered (to send differences). Over it, every node's next
   * update is sent whole.
   * @default 100000
   */
  maxTrackedNodes?: number
  /** Failures that do not stop the server (see {@link WsServerErrorCode}). */
  onError?: (error: WsServerError) => void
}

/**
 * Counters and gauges of a {@link WsServer}.
 *
 * @example
 * setInterval(() => console.log(server.metrics()), 10_000)
 */
export interface WsServerMetrics {
  /** Open connections. */
  clients: number
  /** Connections with a subscription. */
  subscribed: number
  /** Subscribed connections behind the live stream (catching up or receiving a snapshot). */
  behind: number
  /** Distinct filters in use (each batch is serialised once per filter). */
  filters: number
  /** Latest batch sequence number. */
  seq: number
  /** Oldest sequence number a `resume` can start from. */
  oldestSeq: number
  /** Batches and bytes held for resume. */
  resumeBatches: number
  resumeBytes: number
  /** Events received from the source. */
  eventsIn: number
  /** Messages (frames) sent, and their bytes on the wire (after compression). */
  messagesSent: number
  bytesSent: number
  /** Events sent, summed over clients. */
  eventsSent: number
  /** Messages sent compressed. */
  messagesCompressed: number
  /** Snapshots completed, resumes honoured and refused. */
  snapshots: number
  resumes: number
  resumesRefused: number
  /** Times a client fell behind the live stream (its buffer over the cap). */
  lagged: number
  /** Times a client fell out of the resume window and got a `lagged` notice and a snapshot. */
  resyncs: number
  /** Batches those clients never received. */
  droppedBatches: number
  /** Clients closed with 1013 (too slow). */
  closedSlow: number
  /** Clients terminated for not answering pings. */
  heartbeatTimeouts: number
  /** Upgrades refused: 401 (authentication) and 503 (connection cap, shutting down). */
  rejectedUnauthorized: number
  rejectedFull: number
  /** Error frames sent to clients, messages ignored for the rate limit, clients closed for flooding. */
  clientErrors: number
  rateLimited: number
  closedFlooding: number
}

/**
 * One open connection, for an admin view.
 *
 * @example
 * for (const c of server.connections()) console.log(c.id, c.remoteAddress, c.mode, c.bufferedAmount)
 */
export interface WsConnectionInfo {
  id: number
  remoteAddress?: string
  /** What `authenticate` returned. */
  principal: unknown
  mode: 'idle' | 'live' | 'catchup' | 'snapshot'
  /** Last sequence number delivered. */
  seq: number
  bufferedAmount: number
  deflate: boolean
  /** Unix ms. */
  connectedAt: number
}

/**
 * A running WebSocket server.
 *
 * @example
 * const live = createWsServer({ server, path: '/live', source: ingest })
 * process.on('SIGTERM', () => void live.close())
 */
export interface WsServer {
  /** Resolves once listening (with `port`; at once when attached). Rejects when `listen` fails. */
  readonly ready: Promise<void>
  /** This server instance's epoch (see the `hello` message). */
  readonly epoch: string
  /** Where it listens (with `port`), or `null`. */
  address(): AddressInfo | null
  metrics(): WsServerMetrics
  connections(): WsConnectionInfo[]
  /**
   * Stops taking connections, closes every client with 1001 (terminating those that do not finish
   * the close handshake in time), stops listening when it listened itself, and resolves. The
   * attached server and the source are left alone.
   */
  close(): Promise<void>
}

interface Group {
  filter: CompiledFilter
  clients: number
  /** Messages of recent batches for this filter (`null`: nothing matched). */
  messages: Map<number, OutMessage | null>
}

interface SnapshotState {
  seq: number
  part: number
  queue: NodeState[]
  index: number
  seen: Set<number>
  storeDone: boolean
}

interface Client {
  id: number
  ws: WebSocket
  principal: unknown
  remoteAddress: string | undefined
  connectedAt: number
  deflate: boolean
  direct: boolean
  group: Group | undefined
  mode: 'idle' | 'live' | 'catchup' | 'snapshot'
  cursor: number
  snapshot: SnapshotState | undefined
  lastSentAt: number
  lastSentSeq: number
  stalledSince: number | undefined
  resyncsInRow: number
  lastSeen: number
  tokens: number
  tokensAt: number
  excess: number
  lastRateErrorAt: number
  closing: boolean
}

const DEFAULT_KINDS: readonly WireEventKind[] = [
  'packet',
  'reception',
  'undecoded',
  'node',
  'status',
]
const GROUP_CACHE = 32
const MAX_RESYNCS_IN_ROW = 3
const CLOSE_GRACE_MS = 5000
const SERVER_NAME = '@meshtap/ws-server'

function positiveInt(name: string, v: number | undefined, fallback: number, min = 1): number {
  if (v === undefined) return fallback
  if (!Number.isFinite(v) || v < min) {
    throw new WsServerError('INVALID_OPTIONS', `${name} must be a number ≥ ${min} (got ${v})`)
  }
  return Math.floor(v)
}

function rejectUpgrade(socket: Duplex, status: number, headers: Record<string, string> = {}): void {
  const body = `${STATUS_CODES[status] ?? 'Error'}\n`
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${body.length}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ]
  if (!socket.writable) {
    socket.destroy()
    return
  }
  socket.once('finish', () => socket.destroy())
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`)
}

function senderOfKey(key: string): number | undefined {
  const i = key.indexOf(':')
  const n = Number(i < 0 ? key : key.slice(0, i))
  return Number.isInteger(n) ? n : undefined
}

const decoder = new TextDecoder('utf-8', { fatal: false })

/**
 * Creates the live push server: it receives the source's events, batches them every `flushMs`,
 * filters them per subscription (serialising each batch once per distinct filter), sends node
 * updates as merge patches, snapshots on subscribe, keeps recent batches for `resume`, and bounds
 * every client (send buffer, message size and rate, connection count).
 *
 * @example
 * import { createServer } from 'node:http'
 * import { createIngest, createMemoryStore } from '@meshtap/core'
 * import { createWsServer } from '@meshtap/ws-server'
 *
 * const ingest = createIngest({ store: createMemoryStore() })
 * const server = createServer()
 * const live = createWsServer({ server, path: '/live', source: ingest })
 * server.listen(8080)
 * await ingest.start()
 */
export function createWsServer(options: WsServerOptions): WsServer {
  const source = options?.source
  if (!source || typeof source.on !== 'function' || typeof source.cache?.list !== 'function') {
    throw new WsServerError(
      'INVALID_OPTIONS',
      '`source` is required: an ingest, or anything with `on(event, listener)` and `cache`',
    )
  }
  if (options.server && options.port !== undefined) {
    throw new WsServerError('INVALID_OPTIONS', 'give `server` or `port`, not both')
  }
  if (!options.server && options.port === undefined) {
    throw new WsServerError(
      'INVALID_OPTIONS',
      'give `server` (to attach to) or `port` (to listen on)',
    )
  }
  const path = options.path ?? '/'
  if (!path.startsWith('/')) {
    throw new WsServerError('INVALID_OPTIONS', `path must start with "/" (got "${path}")`)
  }
  const kinds = [...new Set(options.kinds ?? DEFAULT_KINDS)]
  for (const k of kinds) {
    if (!WIRE_EVENT_KINDS.includes(k)) {
      throw new WsServerError('INVALID_OPTIONS', `unknown event kind "${k}" in kinds`)
    }
  }
  const kindSet = new Set(kinds)
  const flushMs = positiveInt('flushMs', options.flushMs, 100)
  const heartbeatMs = positiveInt('heartbeatMs', options.heartbeatMs, 30_000)
  const heartbeatTimeoutMs = positiveInt(
    'heartbeatTimeoutMs',
    options.heartbeatTimeoutMs,
    2 * heartbeatMs,
  )
  const maxBuffered = positiveInt('maxBufferedBytes', options.maxBufferedBytes, 4 * 2 ** 20, 1024)
  const lowWater = Math.floor(maxBuffered / 2)
  const onLag = options.onLag ?? 'snapshot'
  const maxStallMs = positiveInt('maxStallMs', options.maxStallMs, 30_000)
  const maxMessageBytes = positiveInt('maxMessageBytes', options.maxMessageBytes, 16_384, 64)
  const maxFrameBytes = positiveInt(
    'maxFrameBytes',
    options.maxFrameBytes,
    4 * maxMessageBytes,
    maxMessageBytes,
  )
  const rate = positiveInt('messagesPerSecond', options.messagesPerSecond, 10)
  const burst = positiveInt('messageBurst', options.messageBurst, 20)
  const maxClients = positiveInt('maxClients', options.maxClients, 10_000)
  const maxFilterValues = positiveInt('maxFilterValues', options.maxFilterValues, 1000)
  const resumeBatches = positiveInt('resumeBatches', options.resumeBatches, 300)
  const resumeBytes = positiveInt('resumeBytes', options.resumeBytes, 32 * 2 ** 20, 1024)
  const maxSnapshotNodes = positiveInt('maxSnapshotNodes', options.maxSnapshotNodes, 20_000, 0)
  const chunkNodes = positiveInt('snapshotChunkNodes', options.snapshotChunkNodes, 250)
  const storeMaxAgeMs = positiveInt(
    'storeSnapshotMaxAgeMs',
    options.storeSnapshotMaxAgeMs,
    86_400_000,
  )
  const checkpointMs = positiveInt('checkpointMs', options.checkpointMs, 10_000)
  const tokenParam = options.tokenQueryParam ?? 'token'
  const pmd = options.perMessageDeflate ?? false
  const deflate: DeflateSettings | undefined = pmd
    ? {
        thresholdBytes: positiveInt(
          'perMessageDeflate.thresholdBytes',
          pmd === true ? undefined : pmd.thresholdBytes,
          1024,
          0,
        ),
        level: positiveInt('perMessageDeflate.level', pmd === true ? undefined : pmd.level, 6, 0),
        memLevel: positiveInt(
          'perMessageDeflate.memLevel',
          pmd === true ? undefined : pmd.memLevel,
          8,
        ),
        windowBits: 15,
      }
    : undefined
  if (deflate && (deflate.level > 9 || deflate.memLevel > 9)) {
    throw new WsServerError('INVALID_OPTIONS', 'perMessageDeflate: level is 0…9 and memLevel 1…9')
  }
  const storeList =
    typeof options.store?.listNodes === 'function'
      ? options.store.listNodes.bind(options.store)
      : undefined
  const validation: WireValidationOptions = { maxFilterValues, kinds }

  const epoch = randomUUID()
  const ring = new BatchRing(resumeBatches, resumeBytes)
  const tracker = new NodeTracker(positiveInt('maxTrackedNodes', options.maxTrackedNodes, 100_000))
  const clients = new Set<Client>()
  const groups = new Map<string, Group>()
  const extensionsByRequest = new WeakMap<IncomingMessage, string>()
  let pending: EventItem[] = []
  let pendingBytes = 0
  let lastSeq = 0
  let nextEventId = 1
  let nextClientId = 1
  let pendingUpgrades = 0
  let closed = false
  let closePromise: Promise<void> | undefined
  let checkpoint: { seq: number; message: OutMessage } | undefined

  const m: WsServerMetrics = {
    clients: 0,
    subscribed: 0,
    behind: 0,
    filters: 0,
    seq: 0,
    oldestSeq: 1,
    resumeBatches: 0,
    resumeBytes: 0,
    eventsIn: 0,
    messagesSent: 0,
    bytesSent: 0,
    eventsSent: 0,
    messagesCompressed: 0,
    snapshots: 0,
    resumes: 0,
    resumesRefused: 0,
    lagged: 0,
    resyncs: 0,
    droppedBatches: 0,
    closedSlow: 0,
    heartbeatTimeouts: 0,
    rejectedUnauthorized: 0,
    rejectedFull: 0,
    clientErrors: 0,
    rateLimited: 0,
    closedFlooding: 0,
  }

  function report(error: WsServerError): void {
    try {
      options.onError?.(error)
    } catch {
      // a throwing error handler must not take the server down
    }
  }

  // ---- capture -------------------------------------------------------------------------------

  function senderPosition(from: number | undefined): { lat?: number; lon?: number } {
    if (from === undefined) return {}
    const p = source.cache.get(from)?.position
    return p ? { lat: p.latitude, lon: p.longitude } : {}
  }

  function capture(meta: EventMeta, body: () => string): void {
    if (closed) return
    m.eventsIn++
    const id = nextEventId++
    let json: string
    try {
      json = `{"id":${id},"kind":"${meta.kind}",${body()}}`
    } catch (cause) {
      report(
        new WsServerError('SOURCE_FAILED', `a ${meta.kind} event could not be serialised`, {
          cause,
        }),
      )
      return
    }
    pending.push({ node: false, meta, json })
    pendingBytes += json.length
  }

  function markGateway(gatewayId: string | undefined): void {
    if (gatewayId === undefined || !kindSet.has('node')) return
    const num = gatewayId.startsWith('!') ? Number.parseInt(gatewayId.slice(1), 16) : Number.NaN
    if (Number.isInteger(num)) tracker.mark(num)
  }

  const unsubscribers: (() => void)[] = []
  if (kindSet.has('packet') || kindSet.has('node')) {
    unsubscribers.push(
      source.on('packet', (e: PacketEvent) => {
        const p = e.packet.packet
        markGateway(p.gatewayId)
        if (!kindSet.has('packet')) return
        const app = p.app as { latitude?: number; longitude?: number }
        const here =
          app.latitude !== undefined && app.longitude !== undefined
            ? { lat: app.latitude, lon: app.longitude }
            : senderPosition(p.from)
        const meta: EventMeta = { kind: 'packet', from: p.from, to: p.to, ...here }
        if (p.channelId !== undefined) meta.channel = p.channelId
        if (p.gatewayId !== undefined) meta.gateway = p.gatewayId.toLowerCase()
        if (p.topic !== undefined) meta.topic = p.topic
        const src = e.reception.source
        capture(
          meta,
          () =>
            `"packet":${JSON.stringify(e.packet)}${src === undefined ? '' : `,"source":${JSON.stringify(src)}`}`,
        )
      }),
    )
  }
  if (kindSet.has('reception') || kindSet.has('node')) {
    unsubscribers.push(
      source.on('reception', (e: ReceptionEvent) => {
        const r = e.reception
        markGateway(r.gatewayId)
        if (!kindSet.has('reception')) return
        const from = senderOfKey(r.packetKey)
        const meta: EventMeta = { kind: 'reception', ...senderPosition(from) }
        if (from !== undefined) meta.from = from
        if (r.channelId !== undefined) meta.channel = r.channelId
        if (r.gatewayId !== undefined) meta.gateway = r.gatewayId.toLowerCase()
        if (r.topic !== undefined) meta.topic = r.topic
        capture(meta, () => `"reception":${JSON.stringify(r)}`)
      }),
    )
  }
  if (kindSet.has('undecoded')) {
    unsubscribers.push(
      source.on('undecoded', (e: UndecodedEvent) => {
        const p = e.undecoded.failure.packet
        const meta: EventMeta = { kind: 'undecoded', ...senderPosition(p.from) }
        if (p.from !== undefined) meta.from = p.from
        if (p.to !== undefined) meta.to = p.to
        if (p.channelId !== undefined) meta.channel = p.channelId
        if (p.gatewayId !== undefined) meta.gateway = p.gatewayId.toLowerCase()
        if (p.topic !== undefined) meta.topic = p.topic
        capture(meta, () => `"undecoded":${JSON.stringify(e.undecoded)}`)
      }),
    )
  }
  if (kindSet.has('node')) {
    unsubscribers.push(source.on('nodeUpdate', (e) => tracker.mark(e.node.num)))
  }
  if (kindSet.has('drop')) {
    unsubscribers.push(
      source.on('drop', (e: DropEvent) => {
        const meta: EventMeta = { kind: 'drop' }
        if (e.from !== undefined) meta.from = e.from
        capture(meta, () => `"drop":${JSON.stringify(e)}`)
      }),
    )
  }
  if (kindSet.has('flush')) {
    unsubscribers.push(
      source.on('flush', (e: FlushEvent) =>
        capture({ kind: 'flush' }, () => `"flush":${JSON.stringify(e)}`),
      ),
    )
  }
  if (kindSet.has('status')) {
    unsubscribers.push(
      source.on('sourceStatus', (e: SourceStatus) =>
        capture({ kind: 'status' }, () => `"status":${JSON.stringify(e)}`),
      ),
    )
  }

  /** Closes the current time slice into a batch (with the node differences), if anything happened. */
  function cutBatch(): Batch | undefined {
    if (pending.length === 0 && !tracker.hasDirty) return undefined
    const items: (EventItem | NodeItem)[] = pending
    let bytes = pendingBytes
    pending = []
    pendingBytes = 0
    for (const change of tracker.collect((num) => source.cache.get(num))) {
      const item: NodeItem = { node: true, id: nextEventId++, change }
      bytes += nodeItemBytes(item) + 256
      items.push(item)
    }
    if (items.length === 0) return undefined
    const batch: Batch = { seq: ++lastSeq, items, bytes }
    ring.push(batch)
    return batch
  }

  // ---- sending -------------------------------------------------------------------------------

  function send(c: Client, message: OutMessage): void {
    const n = sendMessage(c.ws, message, c.deflate ? deflate : undefined, c.direct)
    if (n === 0) return
    m.messagesSent++
    m.bytesSent += n
    m.eventsSent += message.events
    if (c.deflate && deflate && n < message.payload.length) m.messagesCompressed++
  }

  function sendJson(
    c: Client,
    value: ServerHelloMessage | SubscribedMessage | SnapshotMessage | object,
  ): void {
    send(c, new OutMessage(JSON.stringify(value)))
  }

  function sendError(
    c: Client,
    code: WireErrorMessage['code'],
    message: string,
    extra: { id?: WireRequestId; path?: string } = {},
  ): void {
    m.clientErrors++
    const e: WireErrorMessage = { type: 'error', code, message, ...extra }
    sendJson(c, e)
  }

  function closeClient(c: Client, code: number, reason: string): void {
    if (c.closing) return
    c.closing = true
    leaveGroup(c)
    c.mode = 'idle'
    c.snapshot = undefined
    try {
      c.ws.close(code, reason)
    } catch {
      c.ws.terminate()
    }
    // A client that does not read never completes the close handshake.
    setTimeout(() => {
      if (c.ws.readyState !== 3) c.ws.terminate()
    }, CLOSE_GRACE_MS).unref()
  }

  function messageFor(group: Group, batch: Batch): OutMessage | null {
    let message = group.messages.get(batch.seq)
    if (message === undefined) {
      const t = batchText(group.filter, batch)
      message = t ? new OutMessage(t.text, t.events) : null
      group.messages.set(batch.seq, message)
      if (group.messages.size > GROUP_CACHE) {
        group.messages.delete(group.messages.keys().next().value as number)
      }
    }
    return message
  }

  function joinGroup(c: Client, filter: CompiledFilter): void {
    leaveGroup(c)
    let g = groups.get(filter.key)
    if (!g) {
      g = { filter, clients: 0, messages: new Map() }
      groups.set(filter.key, g)
    }
    g.clients++
    c.group = g
  }

  function leaveGroup(c: Client): void {
    const g = c.group
    if (!g) return
    c.group = undefined
    if (--g.clients === 0) groups.delete(g.filter.key)
  }

  // ---- snapshots, catching up ------------------------------------------------------------------

  function startSnapshot(c: Client): void {
    const filter = (c.group as Group).filter
    const snap: SnapshotState = {
      seq: lastSeq,
      part: 0,
      queue: [],
      index: 0,
      seen: new Set(),
      storeDone: storeList === undefined,
    }
    for (const n of source.cache.list()) {
      if (snap.queue.length >= maxSnapshotNodes) break
      if (filter.matchesNode(n)) {
        snap.queue.push(n)
        snap.seen.add(n.num)
      }
    }
    if (snap.queue.length >= maxSnapshotNodes) snap.storeDone = true
    c.snapshot = snap
    c.mode = 'snapshot'
    if (!snap.storeDone) void loadStoreNodes(c, snap, filter)
  }

  async function loadStoreNodes(c: Client, snap: SnapshotState, filter: CompiledFilter) {
    let cursor: string | undefined
    try {
      do {
        const query: Parameters<NonNullable<WsSnapshotStore['listNodes']>>[0] = {
          limit: 500,
          since: Date.now() - storeMaxAgeMs,
        }
        if (cursor !== undefined) query.cursor = cursor
        if (filter.wire.bbox) query.bbox = filter.wire.bbox
        const page = await (storeList as NonNullable<WsSnapshotStore['listNodes']>)(query)
        if (c.snapshot !== snap || c.closing) return
        for (const row of page.items) {
          if (snap.queue.length >= maxSnapshotNodes) break
          if (snap.seen.has(row.num >>> 0)) continue
          const n = nodeStateFromRow(row)
          if (!filter.matchesNode(n)) continue
          snap.queue.push(n)
          snap.seen.add(n.num)
        }
        cursor = page.nextCursor
      } while (cursor !== undefined && snap.queue.length < maxSnapshotNodes)
    } catch (cause) {
      report(
        new WsServerError(
          'STORE_FAILED',
          'listNodes failed; the snapshot has the cached nodes only',
          {
            cause,
          },
        ),
      )
    } finally {
      if (c.snapshot === snap) {
        snap.storeDone = true
        try {
          pump(c, Date.now())
        } catch (cause) {
          report(new WsServerError('CLIENT_FAILED', 'sending a snapshot failed', { cause }))
          closeClient(c, WIRE_CLOSE_CODES.INTERNAL_ERROR, 'internal error')
        }
      }
    }
  }

  /** Sends the next snapshot part; false when waiting for the store. */
  function sendSnapshotPart(c: Client, snap: SnapshotState): boolean {
    const available = snap.queue.length - snap.index
    if (!snap.storeDone && available < chunkNodes) return false
    const nodes = snap.queue.slice(snap.index, snap.index + chunkNodes)
    snap.index += nodes.length
    const done = snap.storeDone && snap.index >= snap.queue.length
    const part: SnapshotMessage = {
      type: 'snapshot',
      seq: snap.seq,
      part: snap.part++,
      nodes,
      done,
    }
    sendJson(c, part)
    if (done) {
      c.snapshot = undefined
      c.mode = 'catchup'
      c.cursor = snap.seq
      m.snapshots++
    }
    return true
  }

  /** The client missed batches the ring no longer holds. */
  function resync(c: Client): void {
    if (onLag === 'close' || ++c.resyncsInRow > MAX_RESYNCS_IN_ROW) {
      m.closedSlow++
      closeClient(c, WIRE_CLOSE_CODES.TRY_AGAIN_LATER, 'too slow: fell behind the resume window')
      return
    }
    m.resyncs++
    m.droppedBatches += lastSeq - c.cursor
    sendJson(c, { type: 'lagged', fromSeq: c.cursor + 1, seq: lastSeq })
    startSnapshot(c)
  }

  /** Sends what a client that is not live needs next, as far as its buffer allows. */
  function pump(c: Client, now: number): void {
    let budget = 10_000
    while (!c.closing && (c.mode === 'catchup' || c.mode === 'snapshot') && budget-- > 0) {
      if (c.ws.bufferedAmount > lowWater) {
        c.stalledSince ??= now
        if (now - c.stalledSince > maxStallMs) {
          m.closedSlow++
          closeClient(c, WIRE_CLOSE_CODES.TRY_AGAIN_LATER, 'too slow: not reading')
        }
        return
      }
      c.stalledSince = undefined
      if (c.mode === 'snapshot') {
        if (!sendSnapshotPart(c, c.snapshot as SnapshotState)) return
        continue
      }
      const next = c.cursor + 1
      if (next > lastSeq) {
        c.mode = 'live'
        c.resyncsInRow = 0
        return
      }
      const batch = ring.get(next)
      if (!batch) {
        resync(c)
        continue
      }
      const message = messageFor(c.group as Group, batch)
      if (message) {
        send(c, message)
        c.lastSentAt = now
        c.lastSentSeq = next
      }
      c.cursor = next
    }
  }

  function checkpointMessage(): OutMessage {
    if (checkpoint?.seq !== lastSeq) {
      checkpoint = {
        seq: lastSeq,
        message: new OutMessage(`{"type":"batch","seq":${lastSeq},"events":[]}`),
      }
    }
    return checkpoint.message
  }

  function tick(): void {
    const now = Date.now()
    let batch: Batch | undefined
    try {
      batch = cutBatch()
    } catch (cause) {
      report(new WsServerError('SOURCE_FAILED', 'building a batch failed', { cause }))
    }
    for (const c of clients) {
      if (c.closing || c.mode === 'idle') continue
      try {
        serve(c, batch, now)
      } catch (cause) {
        report(new WsServerError('CLIENT_FAILED', 'sending to a client failed', { cause }))
        closeClient(c, WIRE_CLOSE_CODES.INTERNAL_ERROR, 'internal error')
      }
    }
  }

  /** One client's share of a tick: the new batch when live, else what it needs to catch up. */
  function serve(c: Client, batch: Batch | undefined, now: number): void {
    if (c.mode === 'live') {
      if (batch) {
        if (c.ws.bufferedAmount > maxBuffered) {
          m.lagged++
          if (onLag === 'close') {
            m.closedSlow++
            closeClient(c, WIRE_CLOSE_CODES.TRY_AGAIN_LATER, 'too slow: send buffer full')
            return
          }
          c.mode = 'catchup'
          c.stalledSince = now
        } else {
          const message = messageFor(c.group as Group, batch)
          if (message) {
            send(c, message)
            c.lastSentAt = now
            c.lastSentSeq = batch.seq
          }
          c.cursor = batch.seq
        }
      }
      if (c.mode === 'live' && c.lastSentSeq < c.cursor && now - c.lastSentAt >= checkpointMs) {
        send(c, checkpointMessage())
        c.lastSentAt = now
        c.lastSentSeq = c.cursor
      }
    }
    if (c.mode === 'catchup' || c.mode === 'snapshot') pump(c, now)
  }

  // ---- client messages -----------------------------------------------------------------------

  function takeToken(c: Client, now: number): boolean {
    c.tokens = Math.min(burst, c.tokens + ((now - c.tokensAt) * rate) / 1000)
    c.tokensAt = now
    if (c.tokens >= 1) {
      c.tokens -= 1
      c.excess = 0
      return true
    }
    m.rateLimited++
    if (++c.excess > burst) {
      m.closedFlooding++
      closeClient(c, WIRE_CLOSE_CODES.POLICY_VIOLATION, 'message flood')
    } else if (now - c.lastRateErrorAt >= 1000) {
      c.lastRateErrorAt = now
      sendError(c, 'RATE_LIMITED', `over ${rate} messages per second; message ignored`)
    }
    return false
  }

  function subscribe(c: Client, msg: Extract<ClientMessage, { type: 'subscribe' }>): void {
    const filter = compileFilter(msg.filter ?? {})
    joinGroup(c, filter)
    c.snapshot = undefined
    c.stalledSince = undefined
    c.resyncsInRow = 0
    const seq = lastSeq
    const oldestSeq = ring.oldestSeq(lastSeq + 1)
    let refused: 'too-old' | 'epoch' | 'ahead' | undefined
    if (msg.resume) {
      const { fromSeq } = msg.resume
      if (msg.resume.epoch !== epoch) refused = 'epoch'
      else if (fromSeq > seq + 1) refused = 'ahead'
      else if (fromSeq < oldestSeq) refused = 'too-old'
    }
    const resumed = msg.resume !== undefined && refused === undefined
    const snapshot = !resumed && msg.snapshot !== false
    const answer: SubscribedMessage = {
      type: 'subscribed',
      epoch,
      seq,
      filter: filter.wire,
      resumed,
      snapshot,
    }
    if (msg.id !== undefined) answer.id = msg.id
    sendJson(c, answer)
    if (msg.resume && refused) {
      m.resumesRefused++
      sendJson(c, {
        type: 'snapshotNeeded',
        fromSeq: msg.resume.fromSeq,
        oldestSeq,
        seq,
        reason: refused,
      })
    }
    c.lastSentAt = Date.now()
    if (resumed) {
      m.resumes++
      c.cursor = (msg.resume?.fromSeq ?? seq + 1) - 1
      c.lastSentSeq = c.cursor
      c.mode = 'catchup'
    } else if (snapshot) {
      c.cursor = seq
      c.lastSentSeq = seq
      startSnapshot(c)
    } else {
      c.cursor = seq
      c.lastSentSeq = seq
      c.mode = 'live'
    }
    pump(c, Date.now())
  }

  function onMessage(c: Client, data: unknown, isBinary: boolean): void {
    const now = Date.now()
    c.lastSeen = now
    if (c.closing || !takeToken(c, now)) return
    const bytes = data as Uint8Array
    if (isBinary) {
      sendError(c, 'BAD_MESSAGE', 'binary frames are not accepted; send JSON text')
      return
    }
    if (bytes.length > maxMessageBytes) {
      sendError(c, 'TOO_LARGE', `message of ${bytes.length} bytes; the limit is ${maxMessageBytes}`)
      return
    }
    const r = parseClientMessage(decoder.decode(bytes), validation)
    if (!r.ok) {
      const { code, message, id, path: where } = r.error
      const extra: { id?: WireRequestId; path?: string } = {}
      if (id !== undefined) extra.id = id
      if (where !== undefined) extra.path = where
      sendError(c, code, message, extra)
      if (code === 'UNSUPPORTED_PROTOCOL') {
        closeClient(c, WIRE_CLOSE_CODES.PROTOCOL_ERROR, 'unsupported protocol version')
      }
      return
    }
    const msg = r.value
    switch (msg.type) {
      case 'hello':
        return
      case 'ping':
        sendJson(c, {
          type: 'pong',
          ...(msg.id !== undefined ? { id: msg.id } : {}),
          seq: lastSeq,
          time: now,
        })
        return
      case 'unsubscribe':
        leaveGroup(c)
        c.mode = 'idle'
        c.snapshot = undefined
        sendJson(c, { type: 'unsubscribed', ...(msg.id !== undefined ? { id: msg.id } : {}) })
        return
      case 'subscribe':
        subscribe(c, msg)
        return
    }
  }

  // ---- connections ---------------------------------------------------------------------------

  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: maxFrameBytes,
    perMessageDeflate: deflate
      ? {
          serverNoContextTakeover: true,
          clientNoContextTakeover: true,
          threshold: Number.MAX_SAFE_INTEGER,
        }
      : false,
    handleProtocols: (protocols) => (protocols.has(WIRE_SUBPROTOCOL) ? WIRE_SUBPROTOCOL : false),
  })
  wss.on('headers', (headers, request) => {
    const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'))
    if (line) extensionsByRequest.set(request, line)
  })
  wss.on('error', (cause) =>
    report(new WsServerError('CLIENT_FAILED', 'WebSocket server error', { cause })),
  )

  function helloFor(c: Client): ServerHelloMessage {
    const capabilities: WireCapability[] = ['resume', 'snapshot', 'node-patch']
    if (storeList) capabilities.push('store-snapshot')
    if (c.deflate) capabilities.push('deflate')
    return {
      type: 'hello',
      protocol: WIRE_PROTOCOL_VERSION,
      server: SERVER_NAME,
      epoch,
      seq: lastSeq,
      oldestSeq: ring.oldestSeq(lastSeq + 1),
      flushMs,
      kinds: [...kinds],
      capabilities,
      limits: {
        maxMessageBytes,
        maxFrameBytes,
        messagesPerSecond: rate,
        messageBurst: burst,
        maxFilterValues,
        maxSnapshotNodes,
        resumeBatches,
        heartbeatMs,
      },
    }
  }

  function onConnection(ws: WebSocket, request: IncomingMessage, principal: unknown): void {
    const now = Date.now()
    const ext = extensionsByRequest.get(request) ?? ''
    const windowBits = /server_max_window_bits=(\d+)/.exec(ext)
    const direct = canWriteFrames(ws)
    const c: Client = {
      id: nextClientId++,
      ws,
      principal,
      remoteAddress: request.socket.remoteAddress,
      connectedAt: now,
      deflate:
        deflate !== undefined &&
        direct &&
        ext.includes('permessage-deflate') &&
        (!windowBits || Number(windowBits[1]) >= deflate.windowBits),
      direct,
      group: undefined,
      mode: 'idle',
      cursor: lastSeq,
      snapshot: undefined,
      lastSentAt: now,
      lastSentSeq: lastSeq,
      stalledSince: undefined,
      resyncsInRow: 0,
      lastSeen: now,
      tokens: burst,
      tokensAt: now,
      excess: 0,
      lastRateErrorAt: 0,
      closing: false,
    }
    clients.add(c)
    ws.on('message', (data, isBinary) => {
      try {
        onMessage(c, data, isBinary)
      } catch (cause) {
        report(new WsServerError('CLIENT_FAILED', 'handling a client message failed', { cause }))
        try {
          sendError(c, 'INTERNAL', 'the server failed to handle this message')
        } catch {
          // the connection is going away
        }
      }
    })
    ws.on('pong', () => {
      c.lastSeen = Date.now()
    })
    ws.on('error', () => {
      // ws closes the connection itself (bad frames: 1002/1007/1009); the close event cleans up.
    })
    ws.on('close', () => {
      c.closing = true
      leaveGroup(c)
      clients.delete(c)
    })
    sendJson(c, helloFor(c))
  }

  function matchesPath(url: string | undefined): boolean {
    const u = url ?? '/'
    const q = u.indexOf('?')
    return (q < 0 ? u : u.slice(0, q)) === path
  }

  async function onUpgrade(request: IncomingMessage, socket: Duplex, head: Uint8Array) {
    if (!matchesPath(request.url)) {
      if (ownServer) rejectUpgrade(socket, 404)
      return
    }
    socket.on('error', () => socket.destroy())
    if (closed) {
      m.rejectedFull++
      rejectUpgrade(socket, 503)
      return
    }
    if (clients.size + pendingUpgrades >= maxClients) {
      m.rejectedFull++
      rejectUpgrade(socket, 503, { 'Retry-After': '5' })
      return
    }
    let principal: unknown = true
    if (options.authenticate) {
      pendingUpgrades++
      try {
        principal = await options.authenticate(request, credentialsOf(request, tokenParam))
      } catch (cause) {
        principal = undefined
        report(new WsServerError('AUTH_FAILED', 'authenticate threw; refused with 401', { cause }))
      } finally {
        pendingUpgrades--
      }
      if (principal === undefined || principal === null || principal === false) {
        m.rejectedUnauthorized++
        rejectUpgrade(socket, 401, { 'WWW-Authenticate': 'Bearer' })
        return
      }
    }
    if (closed) {
      m.rejectedFull++
      rejectUpgrade(socket, 503)
      return
    }
    if (socket.destroyed) return
    wss.handleUpgrade(request, socket, head as Parameters<typeof wss.handleUpgrade>[2], (ws) =>
      onConnection(ws, request, principal),
    )
  }

  const upgradeListener = (request: IncomingMessage, socket: Duplex, head: Uint8Array) => {
    onUpgrade(request, socket, head).catch((cause: unknown) => {
      report(new WsServerError('CLIENT_FAILED', 'an upgrade failed', { cause }))
      socket.destroy()
    })
  }

  let ownServer: Server | undefined
  let ready: Promise<void>
  if (options.server) {
    options.server.on('upgrade', upgradeListener)
    ready = Promise.resolve()
  } else {
    const s = createServer((_req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket' })
      res.end('This endpoint speaks WebSocket only.\n')
    })
    ownServer = s
    s.on('upgrade', upgradeListener)
    ready = new Promise<void>((resolve, reject) => {
      s.once('error', (cause) => {
        const e = new WsServerError('LISTEN_FAILED', `cannot listen on port ${options.port}`, {
          cause,
        })
        report(e)
        reject(e)
      })
      s.listen(options.port, options.host, () => resolve())
    })
    ready.catch(() => {
      // reported through onError; awaiting `ready` rethrows it
    })
  }

  const flushTimer = setInterval(tick, flushMs)
  flushTimer.unref()
  const heartbeatTimer = setInterval(() => {
    const now = Date.now()
    for (const c of clients) {
      if (now - c.lastSeen > heartbeatTimeoutMs) {
        m.heartbeatTimeouts++
        c.closing = true
        c.ws.terminate()
        continue
      }
      try {
        c.ws.ping()
      } catch {
        // closing
      }
    }
  }, heartbeatMs)
  heartbeatTimer.unref()

  return {
    ready,
    epoch,
    address() {
      const a = ownServer?.address()
      return a && typeof a === 'object' ? a : null
    },
    metrics() {
      let subscribed = 0
      let behind = 0
      for (const c of clients) {
        if (c.mode !== 'idle') subscribed++
        if (c.mode === 'catchup' || c.mode === 'snapshot') behind++
      }
      return {
        ...m,
        clients: clients.size,
        subscribed,
        behind,
        filters: groups.size,
        seq: lastSeq,
        oldestSeq: ring.oldestSeq(lastSeq + 1),
        resumeBatches: ring.size,
        resumeBytes: ring.bytes,
      }
    },
    connections() {
      return [...clients].map((c) => {
        const info: WsConnectionInfo = {
          id: c.id,
          principal: c.principal,
          mode: c.mode,
          seq: c.cursor,
          bufferedAmount: c.ws.bufferedAmount,
          deflate: c.deflate,
          connectedAt: c.connectedAt,
        }
        if (c.remoteAddress !== undefined) info.remoteAddress = c.remoteAddress
        return info
      })
    },
    close() {
      closePromise ??= (async () => {
        closed = true
        clearInterval(flushTimer)
        clearInterval(heartbeatTimer)
        for (const u of unsubscribers.splice(0)) u()
        options.server?.off('upgrade', upgradeListener)
        const waits: Promise<void>[] = []
        for (const c of clients) {
          waits.push(
            new Promise<void>((resolve) => {
              if (c.ws.readyState === 3) return resolve()
              c.ws.once('close', () => resolve())
              const timer = setTimeout(() => c.ws.terminate(), 2000)
              timer.unref()
              c.ws.once('close', () => clearTimeout(timer))
            }),
          )
          c.closing = true
          c.ws.close(WIRE_CLOSE_CODES.GOING_AWAY, 'server shutting down')
        }
        await Promise.all(waits)
        await new Promise<void>((resolve) => wss.close(() => resolve()))
        const s = ownServer
        if (s?.listening) {
          await new Promise<void>((resolve) => s.close(() => resolve()))
        }
      })()
      return closePromise
    },
  }
}
