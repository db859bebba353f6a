import type {
  Ack,
  MessageHandler,
  RawMessage,
  Source,
  SourceState,
  SourceStatus,
} from '@meshtap/protocol'
import { connect, type IClientOptions, type MqttClient } from 'mqtt'
import { type AckWindow, createAckWindow } from './ack-window.js'
import { backoffDelay } from './backoff.js'
import {
  type MqttSourceOptions,
  type ResolvedBroker,
  type ResolvedMqttSourceOptions,
  resolveMqttSourceOptions,
} from './options.js'

/** A status of {@link createMqttSource}: {@link SourceStatus} plus the reconnect timing. */
export interface MqttSourceStatus extends SourceStatus {
  /** With `reconnecting` and `offline`: when the next attempt starts, ms from `at`. */
  retryInMs?: number
  /** With `connecting`: 0 for the first attempt, then how many attempts failed in a row before. */
  attempt?: number
}

/** Counters of one broker connection. */
export interface MqttBrokerStats {
  /** The broker URL without credentials. */
  endpoint: string
  /** The broker's `name`, or the endpoint. */
  name: string
  clientId: string
  state: SourceState
  /** Messages delivered from this broker. */
  received: number
  /** Successful connections after the first one. */
  reconnects: number
  /** Connections lost or attempts that failed. */
  disconnects: number
  /** QoS 1 messages delivered and not acknowledged to the broker yet (deferred acks). */
  pendingAcks: number
  /** The last connection error, without credentials. */
  lastError?: string
}

/** Counters of {@link createMqttSource}, over all brokers. */
export interface MqttSourceStats {
  /** Messages delivered. */
  received: number
  /** Successful reconnections, all brokers. */
  reconnects: number
  brokers: MqttBrokerStats[]
}

/** An MQTT {@link Source} with status and counters. */
export interface MqttSource extends Source {
  /**
   * Subscribes to status changes of every broker connection (`endpoint` says which); returns the
   * unsubscribe function.
   */
  onStatus(listener: (status: MqttSourceStatus) => void): () => void
  /**
   * The overall state: `idle` before `start`, `closed` after `stop`, `connected` when every broker
   * is connected and subscribed, otherwise the status of the first broker that is not.
   */
  status(): MqttSourceStatus
  stats(): MqttSourceStats
  /**
   * Stops reading from the brokers whose messages wait there safely (QoS 1 with deferred acks: a
   * persistent session) until {@link MqttSource.resume}: mqtt.js stops parsing, TCP backpressure
   * stops the broker, which keeps the messages queued for this session. Brokers with QoS 0 or
   * immediate acks keep delivering (their messages would be lost, not kept). An ingest calls this
   * when its queue is nearly full. A long pause can end in a keepalive timeout and a reconnect,
   * after which the broker delivers the unacknowledged messages again.
   */
  pause(): void
  /** Resumes reading after {@link MqttSource.pause}. */
  resume(): void
}

/** CONNACK refusals that retrying soon will not fix (MQTT 3.1.1 return codes, MQTT 5 reason codes). */
const REFUSED = new Set([1, 2, 4, 5, 0x84, 0x85, 0x86, 0x87, 0x8a, 0x8c])

/** A connection shorter than this does not reset the backoff (guards against kick-off loops). */
const STABLE_CONNECTION_MS = 10_000

/** How long `stop` waits for a graceful DISCONNECT before it drops the socket. */
const STOP_TIMEOUT_MS = 2_000

interface PacketLike {
  cmd: string
  messageId?: number
  qos?: number
  reasonCode?: number
}

/** The mqtt.js internals this source relies on (mqtt 5.x, checked by the integration tests). */
interface ClientInternals {
  _sendPacket(packet: PacketLike, cb?: (err?: Error) => void, ...rest: unknown[]): void
  stream: unknown
}

interface BrokerRuntime {
  readonly broker: ResolvedBroker
  client?: MqttClient
  state: SourceState
  lastError?: string
  refused: boolean
  failures: number
  connectedAt?: number
  everConnected: boolean
  timer?: ReturnType<typeof setTimeout>
  received: number
  reconnects: number
  disconnects: number
  window: AckWindow<unknown>
  status: MqttSourceStatus
  /** mqtt.js callbacks held while paused: each lets it go on to the next packet. */
  held: (() => void)[]
}

function internals(client: MqttClient): ClientInternals {
  return client as unknown as ClientInternals
}

function rethrowLater(error: unknown): void {
  queueMicrotask(() => {
    throw error
  })
}

function noop(): void {}

/**
 * Creates a {@link Source} that subscribes to one or more MQTT brokers with mqtt.js and delivers
 * every message as a {@link RawMessage} (`topic`, `payload` bytes, `receivedAt`, `source` = the broker
 * URL without credentials).
 *
 * Reconnects by itself, with capped exponential backoff and jitter, and reports each state change
 * through `onStatus`. With `qos: 1` and `ackMode: 'deferred'` (the default for QoS 1 with a
 * persistent session) the broker's PUBACK for a message is sent only when the pipeline calls that
 * message's `ack()`, in arrival order, while delivery goes on: a crash before the store commit
 * loses nothing, the broker redelivers.
 *
 * `onMessage` must not throw: an exception from it is rethrown asynchronously (an uncaught
 * exception), so that mqtt.js's state is not corrupted by it.
 *
 * The public Meshtastic broker is only an example, never a default: it needs its credentials and
 * regional filters (`msh/#` is refused there since August 2024).
 *
 * @example
 * import { createMqttSource } from '@meshtap/core/mqtt'
 *
 * const source = createMqttSource({
 *   brokers: [{
 *     url: 'mqtt://mqtt.meshtastic.org',
 *     username: 'meshdev',
 *     password: 'large4cats',
 *     topics: ['msh/US/#'],
 *   }],
 * })
 * source.onStatus((s) => console.error(s.state, s.endpoint, s.error ?? ''))
 * await source.start((message, ack) => {
 *   console.log(message.topic, message.payload.length)
 *   ack()
 * })
 *
 * @example
 * // A collector that loses nothing across restarts: QoS 1, persistent session, deferred acks.
 * const source = createMqttSource({
 *   brokers: [{
 *     url: 'mqtt://broker.example:1883',
 *     topics: ['msh/EU_868/#'],
 *     qos: 1,
 *     protocolVersion: 5,
 *     clientId: 'meshtap-collector-1',
 *     persistentSession: true,
 *   }],
 * })
 */
export function createMqttSource(options: MqttSourceOptions): MqttSource {
  const resolved: ResolvedMqttSourceOptions = resolveMqttSourceOptions(options)
  const { name } = resolved
  const listeners = new Set<(status: MqttSourceStatus) => void>()
  let started = false
  let stopped = false
  let stopping: Promise<void> | undefined
  let onMessage: MessageHandler | undefined
  /** Set by pause(): brokers with deferred acks stop reading. */
  let paused = false

  const runtimes: BrokerRuntime[] = resolved.brokers.map((broker) => ({
    broker,
    state: 'idle',
    refused: false,
    failures: 0,
    everConnected: false,
    received: 0,
    reconnects: 0,
    disconnects: 0,
    window: createAckWindow<unknown>(noop),
    status: { source: name, state: 'idle', endpoint: broker.endpoint, at: Date.now() },
    held: [],
  }))

  const emit = (rt: BrokerRuntime, state: SourceState, extra: Partial<MqttSourceStatus> = {}) => {
    rt.state = state
    const status: MqttSourceStatus = {
      source: name,
      state,
      endpoint: rt.broker.endpoint,
      at: Date.now(),
      ...extra,
    }
    rt.status = status
    for (const listener of [...listeners]) {
      try {
        listener(status)
      } catch (error) {
        rethrowLater(error)
      }
    }
  }

  /** Hides the password in an error message, in case a library quotes it. */
  const clean = (rt: BrokerRuntime, message: string): string => {
    let out = message
    const secrets = [rt.broker.password, safeUrlPassword(rt.broker.url)]
    for (const secret of secrets) {
      if (secret && secret.length > 0) out = out.split(secret).join('***')
    }
    if (rt.broker.url !== rt.broker.endpoint)
      out = out.split(rt.broker.url).join(rt.broker.endpoint)
    return out
  }

  const scheduleReconnect = (rt: BrokerRuntime) => {
    if (stopped || rt.timer !== undefined) return
    const delay = rt.refused
      ? resolved.reconnect.maxDelayMs
      : backoffDelay(rt.failures, resolved.reconnect)
    rt.failures++
    emit(rt, rt.refused ? 'offline' : 'reconnecting', {
      retryInMs: delay,
      ...(rt.lastError !== undefined ? { error: rt.lastError } : {}),
    })
    rt.timer = setTimeout(() => {
      rt.timer = undefined
      if (stopped || !rt.client) return
      emit(rt, 'connecting', { attempt: rt.failures })
      rt.client.reconnect()
    }, delay)
  }

  const subscribe = (rt: BrokerRuntime, client: MqttClient) => {
    const { topics, qos } = rt.broker
    const map: Record<string, { qos: 0 | 1 }> = {}
    for (const t of topics) map[t] = { qos }
    client.subscribe(map, (err, granted) => {
      if (stopped || client !== rt.client || !client.connected) return
      if (err) {
        rt.lastError = clean(rt, `subscribe failed: ${err.message}`)
        emit(rt, 'connected', { error: rt.lastError })
        return
      }
      const refused = (granted ?? []).filter((g) => g.qos >= 0x80).map((g) => g.topic)
      if (refused.length > 0) {
        rt.lastError = `the broker refused the subscription to ${refused.join(', ')}`
        emit(rt, 'connected', { error: rt.lastError })
      } else {
        emit(rt, 'connected')
      }
    })
  }

  const open = (rt: BrokerRuntime) => {
    const b = rt.broker
    const clientOptions: IClientOptions = {
      manualConnect: true,
      reconnectPeriod: 0,
      resubscribe: false,
      connectTimeout: resolved.connectTimeoutMs,
      keepalive: resolved.keepaliveSec,
      clientId: b.clientId,
      protocolVersion: b.protocolVersion,
      clean: !b.persistentSession,
      ...(b.username !== undefined ? { username: b.username } : {}),
      ...(b.password !== undefined ? { password: b.password } : {}),
      ...(b.tls as IClientOptions),
      ...(b.protocolVersion === 5
        ? {
            properties: {
              receiveMaximum: b.receiveMaximum,
              ...(b.persistentSession ? { sessionExpiryInterval: b.sessionExpirySec } : {}),
            },
          }
        : {}),
    }
    const client = connect(b.url, clientOptions)
    rt.client = client
    const inner = internals(client)
    if (typeof inner._sendPacket !== 'function') {
      throw new Error(
        'createMqttSource: this mqtt.js has no MqttClient._sendPacket; acknowledgement control needs mqtt 5.x',
      )
    }
    const sendPacket = inner._sendPacket.bind(client)
    const deferred = b.ackMode === 'deferred'
    // PUBACKs: mqtt.js sends one right after emitting 'message' (its ack hooks, customHandleAcks and
    // handleMessage, hold up all delivery until they call back). In deferred mode we let it
    // believe the PUBACK went out, so the next message is processed at once, and send our own from
    // the ack window instead. Never let mqtt.js queue a PUBACK while disconnected: it would go out
    // on the next connection, where that packet id may mean another message.
    inner._sendPacket = (packet, cb, ...rest) => {
      if (packet.cmd === 'puback' && (deferred || stopped || !client.connected)) {
        cb?.()
        return
      }
      sendPacket(packet, cb, ...rest)
    }
    rt.window = createAckWindow<unknown>((messageId) => {
      if (stopped || !client.connected || inner.stream !== rt.window.epoch) return
      sendPacket({ cmd: 'puback', messageId, reasonCode: 0 })
    })

    client.on('connect', () => {
      if (stopped) return
      rt.refused = false
      rt.lastError = undefined
      rt.connectedAt = Date.now()
      if (rt.everConnected) rt.reconnects++
      rt.everConnected = true
      subscribe(rt, client)
    })
    if (deferred) {
      // mqtt.js waits for this callback before it parses the next packet: holding it while the
      // consumer is paused stops reading the socket, and the broker keeps what it has not sent.
      client.handleMessage = (_packet, callback) => {
        if (paused && !stopped) rt.held.push(() => callback())
        else callback()
      }
    }
    client.on('message', (topic, payload, packet) => {
      if (stopped || !onMessage) return
      rt.received++
      let ack: Ack = noop
      if (deferred && packet.qos === 1 && packet.messageId !== undefined) {
        if (rt.window.epoch !== inner.stream) rt.window.reset(inner.stream)
        ack = rt.window.track(packet.messageId)
      }
      const message: RawMessage = {
        topic,
        payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength),
        receivedAt: Date.now(),
        source: b.endpoint,
      }
      try {
        onMessage(message, ack)
      } catch (error) {
        rethrowLater(error)
      }
    })
    client.on('error', (error: Error & { code?: number | string }) => {
      rt.lastError = clean(rt, error.message || String(error.code ?? 'connection error'))
      if (typeof error.code === 'number' && REFUSED.has(error.code)) rt.refused = true
    })
    client.on('close', () => {
      rt.window.reset(undefined)
      release(rt)
      if (stopped) return
      rt.disconnects++
      if (rt.connectedAt !== undefined && Date.now() - rt.connectedAt >= STABLE_CONNECTION_MS) {
        rt.failures = 0
      }
      rt.connectedAt = undefined
      rt.lastError ??= 'connection closed'
      scheduleReconnect(rt)
    })

    emit(rt, 'connecting', { attempt: 0 })
    client.connect()
  }

  const release = (rt: BrokerRuntime) => {
    const held = rt.held.splice(0)
    for (const go of held) go()
  }

  const close = (rt: BrokerRuntime): Promise<void> => {
    release(rt)
    if (rt.timer !== undefined) clearTimeout(rt.timer)
    rt.timer = undefined
    rt.window.reset(undefined)
    const client = rt.client
    if (!client) {
      emit(rt, 'closed')
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      let done = false
      const finish = () => {
        if (done) return
        done = true
        clearTimeout(timeout)
        emit(rt, 'closed')
        resolve()
      }
      // Graceful DISCONNECT when connected (held PUBACKs are not sent: the broker keeps those
      // messages for the next session); otherwise just drop the socket.
      const timeout = setTimeout(() => {
        ;(internals(client).stream as { destroy?: () => void } | undefined)?.destroy?.()
        finish()
      }, STOP_TIMEOUT_MS)
      client.end(!client.connected, {}, finish)
    })
  }

  const aggregate = (): MqttSourceStatus => {
    if (stopped) return { source: name, state: 'closed', at: Date.now() }
    if (!started) return { source: name, state: 'idle', at: Date.now() }
    const down = runtimes.find((rt) => rt.state !== 'connected')
    if (down) return down.status
    const last = runtimes.reduce((a, rt) => Math.max(a, rt.status.at), 0)
    return { source: name, state: 'connected', at: last }
  }

  return {
    name,
    start(handler) {
      if (started || stopped) {
        return Promise.reject(
          new Error(`createMqttSource: "${name}" was already ${started ? 'started' : 'stopped'}`),
        )
      }
      started = true
      onMessage = handler
      try {
        for (const rt of runtimes) open(rt)
      } catch (error) {
        return Promise.reject(error)
      }
      return Promise.resolve()
    },
    stop() {
      if (stopping) return stopping
      stopped = true
      stopping = Promise.all(runtimes.map(close)).then(() => undefined)
      return stopping
    },
    onStatus(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    status: aggregate,
    pause() {
      paused = true
    },
    resume() {
      if (!paused) return
      paused = false
      for (const rt of runtimes) release(rt)
    },
    stats() {
      const brokers = runtimes.map(
        (rt): MqttBrokerStats => ({
          endpoint: rt.broker.endpoint,
          name: rt.broker.label,
          clientId: rt.broker.clientId,
          state: rt.state,
          received: rt.received,
          reconnects: rt.reconnects,
          disconnects: rt.disconnects,
          pendingAcks: rt.window.pending,
          ...(rt.lastError !== undefined ? { lastError: rt.lastError } : {}),
        }),
      )
      return {
        received: brokers.reduce((n, b) => n + b.received, 0),
        reconnects: brokers.reduce((n, b) => n + b.reconnects, 0),
        brokers,
      }
    },
  }
}

function safeUrlPassword(url: string): string | undefined {
  try {
    const p = new URL(url).password
    return p ? decodeURIComponent(p) : undefined
  } catch {
    return undefined
  }
}
