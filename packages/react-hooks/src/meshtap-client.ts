import {
  type BatchMessage,
  type NodeState,
  type ServerHelloMessage,
  type ServerMessage,
  type SubscribeMessage,
  validateClientMessage,
  WIRE_CLOSE_CODES,
  WIRE_PROTOCOL_VERSION,
  WIRE_SUBPROTOCOL,
  WIRE_TOKEN_PROTOCOL_PREFIX,
  type WireEvent,
  type WireFilter,
} from '@meshtap/protocol'
import { MeshtapClientError } from './errors.js'
import type { UpdateScheduler } from './frame-scheduler.js'
import type { ConnectionStatus, MeshSnapshot } from './mesh-snapshot.js'
import { type MeshBufferLimits, MeshStore, resolveLimits } from './mesh-store.js'

/**
 * The part of a WebSocket the client uses: the browser's `WebSocket`, the `ws` package's, or
 * anything with the same shape.
 *
 * @example
 * import { WebSocket } from 'ws'
 * const socket: MeshtapWebSocket = new WebSocket('ws://localhost:8080/live', ['meshtap.v1'])
 */
export interface MeshtapWebSocket {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  // The handlers take `any` so that the browser's, `ws`'s and other implementations (each with
  // their own event types) all fit; the client reads only `data`, `code` and `reason`.
  // biome-ignore lint/suspicious/noExplicitAny: see above
  onopen: ((event: any) => void) | null
  // biome-ignore lint/suspicious/noExplicitAny: see above
  onmessage: ((event: any) => void) | null
  // biome-ignore lint/suspicious/noExplicitAny: see above
  onclose: ((event: any) => void) | null
  // biome-ignore lint/suspicious/noExplicitAny: see above
  onerror: ((event: any) => void) | null
}

/**
 * A WebSocket class (constructor) the client can use.
 *
 * @example
 * import { WebSocket } from 'ws'
 * const Impl: MeshtapWebSocketConstructor = WebSocket
 * const client = createMeshtapClient({ url: 'ws://localhost:8080/live', WebSocket: Impl })
 */
export type MeshtapWebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => MeshtapWebSocket

/**
 * How the client reconnects: after the n-th failed attempt in a row it waits
 * `min(maxDelayMs, initialDelayMs × 2^(n−1))`, shortened by a random share of up to `jitter`
 * (so that many clients do not reconnect in step after a server restart).
 *
 * @example
 * createMeshtapClient({ url, reconnect: { initialDelayMs: 250, maxDelayMs: 10_000, jitter: 0.3 } })
 */
export interface ReconnectOptions {
  /**
   * Delay before the first retry, ms.
   * @default 500
   */
  initialDelayMs?: number
  /**
   * Longest delay between attempts, ms.
   * @default 30000
   */
  maxDelayMs?: number
  /**
   * Share of the delay that is random, 0 (none) … 1 (anywhere between 0 and the delay).
   * @default 0.5
   */
  jitter?: number
  /**
   * Failed attempts in a row after which the client gives up (state `closed`).
   * @default Infinity
   */
  maxRetries?: number
}

/**
 * Options of {@link createMeshtapClient}.
 *
 * @example
 * const options: MeshtapClientOptions = {
 *   url: 'wss://mesh.example.org/live',
 *   token: () => fetch('/api/mesh-token').then((r) => r.text()),
 *   filter: { channels: ['LongFast'] },
 *   reconnect: { maxDelayMs: 15_000 },
 * }
 */
export interface MeshtapClientOptions {
  /** The WebSocket URL of a `@meshtap/ws-server` endpoint (`ws://…` or `wss://…`). */
  url: string
  /**
   * An access token, or a function that returns one (called before every attempt, so it can be
   * refreshed). Sent as a `meshtap.token.<token>` subprotocol when it consists of characters a
   * subprotocol allows (base64url, hex, JWTs), else as the `tokenQueryParam` query parameter.
   */
  token?: string | (() => string | undefined | Promise<string | undefined>)
  /**
   * Query parameter for tokens that cannot travel as a subprotocol.
   * @default 'token'
   */
  tokenQueryParam?: string
  /** What to subscribe to (see `WireFilter`); everything of the default kinds when absent. */
  filter?: WireFilter
  /**
   * The WebSocket implementation.
   * @default globalThis.WebSocket
   */
  WebSocket?: MeshtapWebSocketConstructor
  /**
   * Reconnection backoff, or `false` to never reconnect.
   * @default { initialDelayMs: 500, maxDelayMs: 30000, jitter: 0.5 }
   */
  reconnect?: ReconnectOptions | false
  /** Bounds of the buffers the client keeps (see {@link MeshBufferLimits}). */
  limits?: MeshBufferLimits
  /**
   * When to publish accumulated changes to subscribers.
   * @default the next animation frame (a 16 ms timer where there are none)
   */
  scheduleUpdate?: UpdateScheduler
  /**
   * Interval of application-level pings while nothing arrives; a connection silent for twice as
   * long is dropped and reconnected. `0` turns it off.
   * @default 20000
   */
  pingIntervalMs?: number
  /**
   * Names the client in the server's logs.
   * @default '@meshtap/react-hooks'
   */
  clientName?: string
}

/**
 * What {@link MeshtapClient.on} can listen to. `event` and `message` are delivered as they arrive
 * (not batched to frames).
 *
 * @example
 * client.on('event', (e) => { if (e.kind === 'packet') console.log(e.packet.key) })
 */
export interface MeshtapClientEvents {
  /** Every new wire event (after it was applied to the snapshot state). */
  event: WireEvent
  /** Every message from the server. */
  message: ServerMessage
  /** The connection status changed. */
  status: ConnectionStatus
  /** Something went wrong (also kept as `status.error`). */
  error: MeshtapClientError
}

/**
 * A live connection to a `@meshtap/ws-server` and the state it maintains. Framework-agnostic:
 * `subscribe` and `getSnapshot` fit React's `useSyncExternalStore`, and any other UI library.
 *
 * @example
 * const client = createMeshtapClient({ url: 'ws://localhost:8080/live' })
 * client.subscribe(() => render(client.getSnapshot()))
 * client.connect()
 */
export interface MeshtapClient {
  readonly url: string
  /** Starts connecting (and keeps reconnecting) until `close()`. Harmless when already started. */
  connect(): void
  /** Disconnects and stops reconnecting; the state is kept, and `connect()` resumes from it. */
  close(): void
  /** Reconnects now instead of waiting for the backoff (or connects after `close()`). Harmless while open. */
  retry(): void
  /**
   * Subscribes with another filter: forgets everything received for the previous one and loads a
   * fresh snapshot. Throws `INVALID_OPTIONS` for a filter the protocol refuses.
   */
  setFilter(filter: WireFilter | undefined): void
  getFilter(): WireFilter | undefined
  getStatus(): ConnectionStatus
  /** Calls `listener` after each update of the snapshot (at most once per animation frame). */
  subscribe(listener: () => void): () => void
  /** The current state; the same object until the next update. */
  getSnapshot(): MeshSnapshot
  /** The empty state a server render shows (no data, state `closed`). */
  getServerSnapshot(): MeshSnapshot
  /** Publishes pending changes now instead of at the next frame. */
  flush(): void
  /** Listens to a client event; returns the function that stops listening. */
  on<E extends keyof MeshtapClientEvents>(
    event: E,
    listener: (payload: MeshtapClientEvents[E]) => void,
  ): () => void
  /** How many `subscribe` and `on` listeners are registered (for diagnostics and tests). */
  listenerCount(): number
}

const DEFAULT_RECONNECT: Required<ReconnectOptions> = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  jitter: 0.5,
  maxRetries: Number.POSITIVE_INFINITY,
}

/** Batches held while a snapshot is incomplete (the server sends none then). */
const MAX_QUEUED_BATCHES = 1000

/** Characters allowed in a subprotocol name (RFC 6455 token). */
const SUBPROTOCOL_SAFE = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/

function invalid(message: string): MeshtapClientError {
  return new MeshtapClientError('INVALID_OPTIONS', message)
}

function checkFilter(filter: WireFilter | undefined): string {
  if (filter === undefined) return ''
  const r = validateClientMessage({ type: 'subscribe', filter })
  if (!r.ok) throw invalid(`invalid filter: ${r.error.message}`)
  return JSON.stringify(filter)
}

function resolveReconnect(r: ReconnectOptions | false | undefined): Required<ReconnectOptions> {
  if (r === false) return { ...DEFAULT_RECONNECT, maxRetries: 0 }
  const out = { ...DEFAULT_RECONNECT }
  for (const [k, v] of Object.entries(r ?? {})) {
    if (!(k in DEFAULT_RECONNECT)) throw invalid(`unknown reconnect option "${k}"`)
    if (v === undefined) continue
    if (typeof v !== 'number' || Number.isNaN(v) || v < 0) {
      throw invalid(`reconnect.${k} must be a number ≥ 0 (got ${String(v)})`)
    }
    out[k as keyof ReconnectOptions] = v
  }
  if (out.jitter > 1) throw invalid(`reconnect.jitter must be between 0 and 1 (got ${out.jitter})`)
  if (out.maxDelayMs < out.initialDelayMs) {
    throw invalid('reconnect.maxDelayMs must not be less than reconnect.initialDelayMs')
  }
  return out
}

function withQuery(url: string, name: string, value: string): string {
  const hash = url.indexOf('#')
  const base = hash < 0 ? url : url.slice(0, hash)
  const sep = base.includes('?') ? '&' : '?'
  return `${base}${sep}${encodeURIComponent(name)}=${encodeURIComponent(value)}`
}

function rethrowLater(error: unknown): void {
  setTimeout(() => {
    throw error
  }, 0)
}

/**
 * Creates a client of `@meshtap/ws-server`. It does nothing until `connect()`; then it speaks
 * the live protocol (hello, subscribe with a filter, snapshot, batches), applies node merge
 * patches, keeps bounded buffers of positions, telemetry, messages and traceroutes per node and
 * per channel, derives links, gateways and counters, reconnects with capped exponential backoff
 * and jitter, and resumes from the last sequence number (or reloads a snapshot when the server
 * cannot resume). Updates are published at most once per animation frame.
 *
 * No Node APIs: it runs in browsers, workers, React Native, Deno, Bun and Node (give Node 20 the
 * `ws` package's WebSocket).
 *
 * @example
 * import { createMeshtapClient } from '@meshtap/react-hooks/client'
 *
 * const client = createMeshtapClient({ url: 'ws://localhost:8080/live', filter: { channels: ['LongFast'] } })
 * client.subscribe(() => {
 *   const { nodes, connection } = client.getSnapshot()
 *   console.log(connection.state, nodes.size, 'nodes')
 * })
 * client.connect()
 */
export function createMeshtapClient(options: MeshtapClientOptions): MeshtapClient {
  if (!options || typeof options.url !== 'string' || options.url.length === 0) {
    throw invalid(
      '`url` is required: the WebSocket URL of a @meshtap/ws-server (ws://… or wss://…)',
    )
  }
  const url = options.url
  const resolved = resolveLimits(options.limits)
  if (typeof resolved === 'string') throw invalid(resolved)
  const limits: Required<MeshBufferLimits> = resolved
  const backoff = resolveReconnect(options.reconnect)
  const pingIntervalMs = options.pingIntervalMs ?? 20_000
  if (!Number.isFinite(pingIntervalMs) || pingIntervalMs < 0) {
    throw invalid(`pingIntervalMs must be a number ≥ 0 (got ${pingIntervalMs})`)
  }
  if (options.token !== undefined && typeof options.token !== 'string') {
    if (typeof options.token !== 'function') throw invalid('`token` must be a string or a function')
  }
  const tokenParam = options.tokenQueryParam ?? 'token'
  const clientName = (options.clientName ?? '@meshtap/react-hooks').slice(0, 128)

  let filter = options.filter
  let filterKey = checkFilter(filter)

  let status: ConnectionStatus = Object.freeze({ state: 'closed', synced: false, retries: 0 })
  const store = new MeshStore(status, limits, options.scheduleUpdate)
  const listeners: { [E in keyof MeshtapClientEvents]: Set<(p: MeshtapClientEvents[E]) => void> } =
    { event: new Set(), message: new Set(), status: new Set(), error: new Set() }

  /** `connect()` was called and `close()` was not. */
  let wanted = false
  let socket: MeshtapWebSocket | undefined
  /** Counts attempts, so that callbacks of an abandoned one are ignored. */
  let attempt = 0
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let pingTimer: ReturnType<typeof setInterval> | undefined
  let lastHeardAt = 0
  let everOpened = false
  let hello: ServerHelloMessage | undefined
  let nextRequestId = 1
  let pendingSubscribe: number | undefined

  // Stream position: the epoch and the last batch applied; `synced` while the state is complete
  // up to `seq` (only then may a reconnect resume).
  let epoch: string | undefined
  let seq = 0
  let lastEventId = 0
  let synced = false
  let snapshotNodes: NodeState[] | undefined
  let snapshotSeq = 0
  let queued: BatchMessage[] = []

  function emit<E extends keyof MeshtapClientEvents>(name: E, payload: MeshtapClientEvents[E]) {
    for (const l of [...listeners[name]]) {
      try {
        l(payload)
      } catch (e) {
        rethrowLater(e)
      }
    }
  }

  function setStatus(
    patch: Partial<ConnectionStatus>,
    remove: readonly (keyof ConnectionStatus)[] = [],
  ) {
    const next: ConnectionStatus = { ...status, ...patch }
    for (const k of remove) delete next[k]
    status = Object.freeze(next)
    store.setConnection(status)
    emit('status', status)
  }

  function report(error: MeshtapClientError) {
    setStatus({ error })
    emit('error', error)
  }

  function send(message: object) {
    try {
      socket?.send(JSON.stringify(message))
    } catch {
      // closing: the close handler takes over
    }
  }

  function clearRetry() {
    if (retryTimer !== undefined) clearTimeout(retryTimer)
    retryTimer = undefined
  }

  function stopPing() {
    if (pingTimer !== undefined) clearInterval(pingTimer)
    pingTimer = undefined
  }

  function startPing() {
    stopPing()
    if (pingIntervalMs === 0) return
    pingTimer = setInterval(() => {
      const silent = Date.now() - lastHeardAt
      if (silent >= 2 * pingIntervalMs) {
        const ws = socket
        if (!ws) return
        detach(ws)
        lost(
          true,
          new MeshtapClientError('TIMEOUT', `no answer from ${url} for ${silent} ms; reconnecting`),
        )
      } else if (silent >= pingIntervalMs) {
        send({ type: 'ping', id: `ping-${nextRequestId++}` })
      }
    }, pingIntervalMs)
  }

  /** Forgets a socket: its callbacks are ignored from now on, and it is closed. */
  function detach(ws: MeshtapWebSocket, code: number = WIRE_CLOSE_CODES.NORMAL) {
    if (socket === ws) socket = undefined
    try {
      ws.close(code)
    } catch {
      // already closed
    }
  }

  function resetStream() {
    snapshotNodes = undefined
    queued = []
    pendingSubscribe = undefined
    hello = undefined
  }

  /** Stops for good (until `connect()`), with an error. */
  function stop(error?: MeshtapClientError) {
    wanted = false
    attempt++
    clearRetry()
    stopPing()
    if (socket) detach(socket)
    resetStream()
    if (error) emit('error', error)
    setStatus(
      error ? { state: 'closed', synced: false, error } : { state: 'closed', synced: false },
      ['nextRetryAt', 'connectedAt'],
    )
  }

  function lost(wasOpen: boolean, error: MeshtapClientError) {
    stopPing()
    resetStream()
    if (!wanted) return
    emit('error', error)
    const retries = status.retries + 1
    if (retries > backoff.maxRetries) {
      wanted = false
      attempt++
      clearRetry()
      setStatus({ state: 'closed', synced: false, error }, ['nextRetryAt', 'connectedAt'])
      return
    }
    const base = Math.min(backoff.maxDelayMs, backoff.initialDelayMs * 2 ** (retries - 1))
    const delay = Math.round(base * (1 - backoff.jitter * Math.random()))
    const nextRetryAt = Date.now() + delay
    clearRetry()
    retryTimer = setTimeout(() => {
      retryTimer = undefined
      void open('reconnecting')
    }, delay)
    setStatus(
      { state: 'reconnecting', synced: false, error, retries, nextRetryAt },
      wasOpen ? ['connectedAt'] : [],
    )
  }

  async function open(state: 'connecting' | 'reconnecting') {
    clearRetry()
    const me = ++attempt
    setStatus({ state, synced: false }, ['nextRetryAt', 'connectedAt'])
    let token: string | undefined
    try {
      token = typeof options.token === 'function' ? await options.token() : options.token
    } catch (cause) {
      if (me !== attempt || !wanted) return
      lost(false, new MeshtapClientError('TOKEN_FAILED', 'the token function failed', { cause }))
      return
    }
    if (me !== attempt || !wanted) return
    const WS =
      options.WebSocket ??
      (globalThis as { WebSocket?: MeshtapWebSocketConstructor }).WebSocket ??
      undefined
    if (!WS) {
      stop(
        new MeshtapClientError(
          'NO_WEBSOCKET',
          'no WebSocket implementation: pass one as the `WebSocket` option (e.g. `ws` on Node 20)',
        ),
      )
      return
    }
    const protocols = [WIRE_SUBPROTOCOL]
    let target = url
    if (token) {
      if (SUBPROTOCOL_SAFE.test(token)) protocols.push(`${WIRE_TOKEN_PROTOCOL_PREFIX}${token}`)
      else target = withQuery(url, tokenParam, token)
    }
    let ws: MeshtapWebSocket
    try {
      ws = new WS(target, protocols)
    } catch (cause) {
      stop(new MeshtapClientError('INVALID_OPTIONS', `cannot connect to ${url}`, { cause }))
      return
    }
    socket = ws
    let opened = false
    ws.onerror = () => {
      // the close event follows and says what happened
    }
    ws.onopen = () => {
      if (socket !== ws) return
      opened = true
      lastHeardAt = Date.now()
      if (everOpened) store.count('reconnects')
      everOpened = true
      setStatus({ state: 'open', connectedAt: lastHeardAt })
      send({ type: 'hello', protocol: WIRE_PROTOCOL_VERSION, client: clientName })
      startPing()
    }
    ws.onmessage = (event: { data?: unknown }) => {
      if (socket !== ws) return
      lastHeardAt = Date.now()
      const data = event?.data
      let message: ServerMessage
      try {
        if (typeof data !== 'string') throw new TypeError('not a text frame')
        message = JSON.parse(data) as ServerMessage
        if (typeof message !== 'object' || message === null || typeof message.type !== 'string') {
          throw new TypeError('not a protocol message')
        }
      } catch (cause) {
        report(
          new MeshtapClientError('BAD_MESSAGE', 'unreadable message from the server', { cause }),
        )
        return
      }
      handle(message)
      emit('message', message)
    }
    ws.onclose = (event: { code?: number; reason?: string }) => {
      if (socket !== ws) return
      socket = undefined
      const code = event?.code ?? 1006
      const reason = event?.reason ? `: ${event.reason}` : ''
      if (code === WIRE_CLOSE_CODES.PROTOCOL_ERROR) {
        stop(
          new MeshtapClientError(
            'UNSUPPORTED_PROTOCOL',
            `the server closed with 1002 (protocol error${reason})`,
            { closeCode: code },
          ),
        )
        return
      }
      lost(
        opened,
        opened
          ? new MeshtapClientError('CONNECTION_LOST', `connection closed (${code}${reason})`, {
              closeCode: code,
            })
          : new MeshtapClientError(
              'CONNECT_FAILED',
              `could not connect to ${url} (${code}${reason})`,
              {
                closeCode: code,
              },
            ),
      )
    }
  }

  function subscribe() {
    const id = nextRequestId++
    pendingSubscribe = id
    const message: SubscribeMessage = { type: 'subscribe', id }
    if (filter !== undefined) message.filter = filter
    if (synced && epoch !== undefined && hello?.capabilities.includes('resume')) {
      message.resume = { epoch, fromSeq: seq + 1 }
    } else {
      synced = false
    }
    send(message)
  }

  function applyBatch(m: BatchMessage) {
    if (m.seq <= seq) {
      if (m.events.length > 0) store.count('duplicates')
      return
    }
    let events = m.events
    if (events.length > 0 && (events[0] as WireEvent).id <= lastEventId) {
      events = events.filter((e) => e.id > lastEventId)
      store.count('duplicates', m.events.length - events.length)
    }
    store.applyEvents(events)
    seq = m.seq
    const last = events[events.length - 1]
    if (last) lastEventId = last.id
    store.setSeq(seq, epoch)
    for (const e of events) emit('event', e)
  }

  function handle(m: ServerMessage) {
    switch (m.type) {
      case 'hello': {
        if (m.protocol !== WIRE_PROTOCOL_VERSION) {
          stop(
            new MeshtapClientError(
              'UNSUPPORTED_PROTOCOL',
              `the server speaks protocol ${String(m.protocol)}; this client speaks ${WIRE_PROTOCOL_VERSION}`,
            ),
          )
          return
        }
        hello = m
        subscribe()
        return
      }
      case 'subscribed': {
        if (m.id !== pendingSubscribe) return
        pendingSubscribe = undefined
        if (m.epoch !== epoch) lastEventId = 0
        epoch = m.epoch
        if (m.resumed) {
          store.count('resumes')
        } else if (m.snapshot) {
          // Batches that arrive before the last part wait for it.
          synced = false
          snapshotNodes = []
          snapshotSeq = m.seq
        } else {
          seq = m.seq
          synced = true
        }
        store.setSeq(seq, epoch)
        setStatus({ synced, epoch, retries: 0 }, ['nextRetryAt'])
        return
      }
      case 'snapshotNeeded':
        synced = false
        store.count('resumesRefused')
        return
      case 'lagged':
        synced = false
        snapshotNodes = []
        snapshotSeq = m.seq
        store.count('lagged')
        setStatus({ synced })
        return
      case 'snapshot': {
        if (pendingSubscribe !== undefined) return
        if (m.part === 0 || snapshotNodes === undefined) {
          snapshotNodes = []
          snapshotSeq = m.seq
          synced = false
        }
        // The server sends the most recently heard nodes first; keep what the store keeps.
        for (const n of m.nodes) if (snapshotNodes.length < limits.maxNodes) snapshotNodes.push(n)
        if (!m.done) return
        store.replaceNodes(snapshotNodes)
        snapshotNodes = undefined
        seq = snapshotSeq
        synced = true
        store.count('snapshots')
        store.setSeq(seq, epoch)
        const waiting = queued
        queued = []
        for (const b of waiting) applyBatch(b)
        setStatus({ synced })
        return
      }
      case 'batch':
        if (pendingSubscribe !== undefined) return
        if (snapshotNodes !== undefined) {
          // The server sends no batch before the last snapshot part; bound what a server that
          // does could make the client hold.
          if (queued.length >= MAX_QUEUED_BATCHES) {
            const ws = socket
            if (ws) detach(ws)
            lost(
              true,
              new MeshtapClientError(
                'BAD_MESSAGE',
                'too many batches during a snapshot; reconnecting',
              ),
            )
            return
          }
          queued.push(m)
          return
        }
        applyBatch(m)
        return
      case 'error': {
        const e = new MeshtapClientError('SERVER_ERROR', `${m.code}: ${m.message}`, {
          wireCode: m.code,
        })
        if (m.id !== undefined && m.id === pendingSubscribe) pendingSubscribe = undefined
        report(e)
        return
      }
      default:
        // pong, unsubscribed, and message types newer than this client
        return
    }
  }

  const client: MeshtapClient = {
    url,
    connect() {
      if (wanted) return
      wanted = true
      setStatus({ retries: 0 })
      void open('connecting')
    },
    close() {
      if (!wanted && !socket) return
      stop()
    },
    retry() {
      if (!wanted) {
        client.connect()
        return
      }
      if (socket) return
      void open('reconnecting')
    },
    setFilter(next) {
      const key = checkFilter(next)
      if (key === filterKey) return
      filter = next
      filterKey = key
      synced = false
      snapshotNodes = undefined
      queued = []
      store.clear()
      if (socket && hello) subscribe()
      setStatus({ synced: false })
    },
    getFilter: () => filter,
    getStatus: () => status,
    subscribe: store.subscribe,
    getSnapshot: store.getSnapshot,
    getServerSnapshot: () => store.serverSnapshot,
    flush: store.flush,
    on(name, listener) {
      const set = listeners[name] as Set<typeof listener>
      const wrapped: typeof listener = (p) => listener(p)
      set.add(wrapped)
      return () => {
        set.delete(wrapped)
      }
    },
    listenerCount() {
      let n = store.listenerCount
      for (const set of Object.values(listeners)) n += set.size
      return n
    },
  }
  return client
}
