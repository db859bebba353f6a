import {
  DEFAULT_RECONNECT,
  type MqttReconnectOptions,
  type ResolvedReconnectOptions,
} from './backoff.js'

/** TLS settings for `mqtts://` and `wss://` brokers (PEM text or bytes). */
export interface MqttTlsOptions {
  /** CA certificate(s) to trust instead of the system store, e.g. for a private broker. */
  ca?: string | Uint8Array | Array<string | Uint8Array>
  /** Client certificate, for brokers that authenticate clients by certificate. */
  cert?: string | Uint8Array
  /** The client certificate's private key. */
  key?: string | Uint8Array
  /**
   * Verify the broker's certificate. Turn off only for a test broker with a self-signed
   * certificate you cannot pass as `ca`.
   * @default true
   */
  rejectUnauthorized?: boolean
}

/**
 * One broker of {@link MqttSourceOptions.brokers}.
 *
 * @example
 * const broker: MqttBrokerOptions = {
 *   url: 'mqtts://broker.example:8883',
 *   username: 'collector',
 *   password: process.env.MQTT_PASSWORD,
 *   topics: ['msh/EU_868/2/e/+/+', 'msh/EU_868/2/map/'],
 *   qos: 1,
 * }
 */
export interface MqttBrokerOptions {
  /**
   * `mqtt://host[:1883]`, `mqtts://host[:8883]`, `ws://host[:port]/path` or `wss://…`.
   * Credentials may be given here (`mqtt://user:pass@host`) or as `username`/`password`; they
   * never appear in statuses, errors or `RawMessage.source`.
   */
  url: string
  username?: string
  password?: string
  tls?: MqttTlsOptions
  /**
   * Topic filters to subscribe to (`+` and `#` wildcards; `$share/<group>/<filter>` for a shared
   * subscription). At least one.
   * @example ['msh/US/#', 'msh/EU_868/2/e/+/+']
   */
  topics: string[]
  /**
   * Subscription QoS. 1 lets the broker redeliver what a collector did not acknowledge
   * (see `ackMode`). A message arrives at the lower of its publish QoS and this one, and
   * Meshtastic gateways publish at QoS 0, so gateway traffic stays QoS 0 (no redelivery) either
   * way; QoS 1 helps with relays and publishers that send at QoS 1.
   * @default 0
   */
  qos?: 0 | 1
  /**
   * MQTT protocol version: 4 is MQTT 3.1.1, 5 is MQTT 5.
   * 4 is the default because every broker speaks it (aedes and some hosted brokers refuse MQTT 5).
   * Choose 5 for `shareGroup`, for a session expiry, and for deferred acks at high rates: only
   * MQTT 5 lets the client announce its receive window (`receiveMaximum` 65535), while an MQTT
   * 3.1.1 client gets the broker's default in-flight window (Mosquitto: 20 messages).
   * @default 4
   */
  protocolVersion?: 4 | 5
  /**
   * The MQTT client id. Two clients with the same id kick each other off the broker, so the
   * default is random (`meshtap-<8 hex>`). A persistent session needs a fixed one.
   * @default `meshtap-${8 random hex digits}`
   */
  clientId?: string
  /**
   * Keep the session on the broker across disconnects: clean session off (MQTT 3.1.1) or clean
   * start off with `sessionExpiryMs` (MQTT 5). The broker keeps the subscriptions and queues QoS 1
   * messages while the collector is down (Mosquitto: at most `max_queued_messages`, default 1000,
   * then it drops), and a restarted collector with the same `clientId` receives them. Needs
   * `clientId`.
   * @default false
   */
  persistentSession?: boolean
  /**
   * MQTT 5 session expiry for a persistent session: how long the broker keeps it after a disconnect.
   * Rounded down to seconds. (MQTT 3.1.1 sessions live until the broker's own limit: Mosquitto's
   * `persistent_client_expiration`, default never.)
   * @default 86400000 (one day)
   */
  sessionExpiryMs?: number
  /**
   * Join a shared subscription group: every topic is subscribed as `$share/<group>/<topic>`, and
   * the broker spreads the messages over the group's members (each message goes to one member).
   * MQTT 5 only: set `protocolVersion: 5`.
   */
  shareGroup?: string
  /**
   * MQTT 5 receive maximum: how many QoS 1 messages the broker may have sent without an ack (with
   * deferred acks, the ones not yet committed). Flow control does not rely on it (Mosquitto 2.0
   * honours it only for its first window): a collector with deferred acks stops reading when its
   * queue fills (see `pause()`), and the broker keeps the rest.
   * @default 65535
   */
  receiveMaximum?: number
  /** A label for this broker in statuses and stats. @default the URL without credentials */
  name?: string
}

/** Options of {@link createMqttSource}. */
export interface MqttSourceOptions {
  /** The brokers to subscribe to, each with its own connection. At least one. */
  brokers: MqttBrokerOptions[]
  /** The source's name. @default 'mqtt' */
  name?: string
  /** Reconnect timing. @default { initialDelayMs: 1000, maxDelayMs: 30000, jitter: 0.5 } */
  reconnect?: MqttReconnectOptions
  /**
   * How long to wait for the broker's CONNACK before the attempt counts as failed.
   * @default 10000
   */
  connectTimeoutMs?: number
  /**
   * MQTT keep-alive, seconds.
   * @default 60
   */
  keepaliveSec?: number
  /**
   * When QoS 1 messages are acknowledged to the broker.
   * - `'auto'`: on arrival (before the pipeline has stored them: a crash loses what was in memory).
   * - `'deferred'`: when the pipeline calls the message's `ack()`, i.e. after the store commit;
   *   PUBACKs still go out in arrival order. The broker redelivers what was not acknowledged when
   *   the connection dropped, if the session survives (`persistentSession`).
   *
   * Applies to brokers with `qos: 1`; `'deferred'` on a QoS 0 broker is an error.
   * @default 'deferred' for brokers with qos 1 and persistentSession, else 'auto'
   */
  ackMode?: 'auto' | 'deferred'
}

/** A broker's options after validation, with defaults filled in. */
export interface ResolvedBroker {
  /** The URL given (with any credentials), for the connection. */
  url: string
  /** The URL without credentials, for statuses, errors and `RawMessage.source`. */
  endpoint: string
  label: string
  username?: string
  password?: string
  tls?: MqttTlsOptions
  /** The filters to subscribe to, already rewritten for `shareGroup`. */
  topics: string[]
  qos: 0 | 1
  protocolVersion: 4 | 5
  clientId: string
  persistentSession: boolean
  sessionExpirySec: number
  ackMode: 'auto' | 'deferred'
  /** MQTT 5 receive maximum announced to the broker. */
  receiveMaximum: number
}

/** All options after validation. */
export interface ResolvedMqttSourceOptions {
  name: string
  brokers: ResolvedBroker[]
  reconnect: ResolvedReconnectOptions
  connectTimeoutMs: number
  keepaliveSec: number
}

const PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'ws:', 'wss:'])
const MAX_SESSION_EXPIRY_SEC = 0xffff_fffe

function fail(message: string): never {
  throw new TypeError(`createMqttSource: ${message}`)
}

/** A random client id, `meshtap-` and 8 hex digits. */
export function randomClientId(): string {
  const bytes = new Uint8Array(4)
  globalThis.crypto.getRandomValues(bytes)
  return `meshtap-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`
}

/**
 * The URL without user name, password, query or fragment: what statuses, errors and
 * `RawMessage.source` show.
 *
 * @example
 * redactUrl('mqtt://meshdev:large4cats@mqtt.meshtastic.org') // 'mqtt://mqtt.meshtastic.org'
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    const path = u.pathname === '/' ? '' : u.pathname
    return `${u.protocol}//${u.host}${path}`
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//')
  }
}

/**
 * Checks an MQTT subscription filter; returns why it is invalid, or `undefined` when it is valid.
 * Accepts `$share/<group>/<filter>`.
 *
 * @example
 * topicFilterError('msh/US/#') // undefined
 * topicFilterError('msh/#/US') // '"#" must be the last level'
 */
export function topicFilterError(filter: string): string | undefined {
  if (typeof filter !== 'string' || filter.length === 0) return 'a topic filter must not be empty'
  if (filter.includes('\u0000')) return 'a topic filter must not contain NUL'
  if (new TextEncoder().encode(filter).length > 65_535)
    return 'a topic filter is at most 65535 bytes'
  let levels = filter.split('/')
  if (levels[0] === '$share') {
    const group = levels[1]
    if (levels.length < 3 || !group) return '"$share/<group>/<filter>" needs a group and a filter'
    if (/[+#]/.test(group)) return 'a share group name must not contain "+" or "#"'
    levels = levels.slice(2)
    if (levels.join('/').length === 0) return '"$share/<group>/<filter>" needs a filter'
  }
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      return '"#" must be the last level, alone'
    }
    if (level.includes('+') && level !== '+') return '"+" must occupy a whole level'
  }
  return undefined
}

/**
 * The filters a broker subscribes to: each topic as given, or `$share/<group>/<topic>` when a
 * share group is set.
 *
 * @example
 * shareTopics(['msh/US/#'], 'collectors') // ['$share/collectors/msh/US/#']
 */
export function shareTopics(topics: readonly string[], shareGroup: string | undefined): string[] {
  if (shareGroup === undefined) return [...topics]
  return topics.map((t) => `$share/${shareGroup}/${t}`)
}

function positive(value: unknown, what: string, allowZero = false): number {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < 0 ||
    (!allowZero && value === 0)
  ) {
    fail(
      `${what} must be a ${allowZero ? 'non-negative' : 'positive'} number, not ${String(value)}`,
    )
  }
  return value
}

/** Validates {@link MqttSourceOptions}; throws a `TypeError` that says what is wrong. */
export function resolveMqttSourceOptions(options: MqttSourceOptions): ResolvedMqttSourceOptions {
  if (options === null || typeof options !== 'object') fail('options are required')
  const { brokers } = options
  if (!Array.isArray(brokers) || brokers.length === 0) {
    fail(
      '"brokers" must list at least one broker, e.g. [{ url: "mqtt://localhost", topics: ["msh/#"] }]',
    )
  }
  const r = { ...DEFAULT_RECONNECT, ...options.reconnect }
  const reconnect: ResolvedReconnectOptions = {
    initialDelayMs: positive(r.initialDelayMs, 'reconnect.initialDelayMs'),
    maxDelayMs: positive(r.maxDelayMs, 'reconnect.maxDelayMs'),
    jitter: positive(r.jitter, 'reconnect.jitter', true),
  }
  if (reconnect.jitter > 1)
    fail(`reconnect.jitter must be between 0 and 1, not ${reconnect.jitter}`)
  if (reconnect.maxDelayMs < reconnect.initialDelayMs) {
    fail(
      `reconnect.maxDelayMs (${reconnect.maxDelayMs}) must not be less than reconnect.initialDelayMs (${reconnect.initialDelayMs})`,
    )
  }
  const connectTimeoutMs = positive(options.connectTimeoutMs ?? 10_000, 'connectTimeoutMs')
  const keepaliveSec = positive(options.keepaliveSec ?? 60, 'keepaliveSec', true)
  if (
    options.ackMode !== undefined &&
    options.ackMode !== 'auto' &&
    options.ackMode !== 'deferred'
  ) {
    fail(`ackMode must be "auto" or "deferred", not ${JSON.stringify(options.ackMode)}`)
  }
  const seen = new Map<string, string>()
  const resolved = brokers.map((b, i): ResolvedBroker => {
    const at = `brokers[${i}]`
    if (b === null || typeof b !== 'object') fail(`${at} must be an object with url and topics`)
    if (typeof b.url !== 'string') fail(`${at}.url is required`)
    let parsed: URL
    try {
      parsed = new URL(b.url)
    } catch {
      fail(`${at}.url is not a URL: ${JSON.stringify(redactUrl(b.url))}`)
    }
    const endpoint = redactUrl(b.url)
    if (!PROTOCOLS.has(parsed.protocol)) {
      fail(
        `${at}.url must start with mqtt://, mqtts://, ws:// or wss://, not ${JSON.stringify(endpoint)}`,
      )
    }
    if (!parsed.hostname) fail(`${at}.url has no host: ${JSON.stringify(endpoint)}`)
    const qos = b.qos ?? 0
    if (qos !== 0 && qos !== 1) fail(`${at}.qos must be 0 or 1, not ${JSON.stringify(b.qos)}`)
    const protocolVersion = b.protocolVersion ?? 4
    if (protocolVersion !== 4 && protocolVersion !== 5) {
      fail(
        `${at}.protocolVersion must be 4 (MQTT 3.1.1) or 5 (MQTT 5), not ${JSON.stringify(b.protocolVersion)}`,
      )
    }
    if (!Array.isArray(b.topics) || b.topics.length === 0) {
      fail(`${at}.topics must list at least one topic filter, e.g. ["msh/US/#"]`)
    }
    for (const t of b.topics) {
      const err = topicFilterError(t)
      if (err) fail(`${at}.topics: ${JSON.stringify(t)}: ${err}`)
    }
    if (b.shareGroup !== undefined) {
      if (
        typeof b.shareGroup !== 'string' ||
        b.shareGroup.length === 0 ||
        /[/+#]/.test(b.shareGroup)
      ) {
        fail(`${at}.shareGroup must be a non-empty name without "/", "+" or "#"`)
      }
      if (protocolVersion !== 5) {
        fail(
          `${at}.shareGroup needs MQTT 5: set protocolVersion: 5 (or write "$share/<group>/<topic>" filters yourself if your broker accepts them over MQTT 3.1.1)`,
        )
      }
      const shared = b.topics.find((t) => t.startsWith('$share/'))
      if (shared)
        fail(
          `${at}.topics: ${JSON.stringify(shared)} is already shared; drop shareGroup or the "$share/…" prefix`,
        )
    }
    const persistentSession = b.persistentSession ?? false
    if (b.clientId !== undefined && (typeof b.clientId !== 'string' || b.clientId.length === 0)) {
      fail(`${at}.clientId must be a non-empty string`)
    }
    if (persistentSession && b.clientId === undefined) {
      fail(
        `${at}.persistentSession needs a fixed clientId: the broker finds the session by client id (and two collectors must not share one)`,
      )
    }
    const clientId = b.clientId ?? randomClientId()
    const previous = seen.get(`${endpoint} ${clientId}`)
    if (previous)
      fail(
        `${at}.clientId ${JSON.stringify(clientId)} is already used by ${previous} on the same broker; they would kick each other off`,
      )
    seen.set(`${endpoint} ${clientId}`, at)
    const sessionExpirySec = Math.min(
      Math.floor(positive(b.sessionExpiryMs ?? 86_400_000, `${at}.sessionExpiryMs`, true) / 1000),
      MAX_SESSION_EXPIRY_SEC,
    )
    const ackMode = options.ackMode ?? (qos === 1 && persistentSession ? 'deferred' : 'auto')
    if (ackMode === 'deferred' && qos !== 1) {
      fail(
        `ackMode "deferred" needs qos: 1 (${at} subscribes with qos 0, which has no acknowledgements)`,
      )
    }
    const receiveMaximum = b.receiveMaximum ?? 0xffff
    if (!Number.isInteger(receiveMaximum) || receiveMaximum < 1 || receiveMaximum > 0xffff) {
      fail(`${at}.receiveMaximum must be an integer from 1 to 65535 (got ${b.receiveMaximum})`)
    }
    return {
      url: b.url,
      endpoint,
      label: b.name ?? endpoint,
      ...(b.username !== undefined ? { username: b.username } : {}),
      ...(b.password !== undefined ? { password: b.password } : {}),
      ...(b.tls !== undefined ? { tls: b.tls } : {}),
      topics: shareTopics(b.topics, b.shareGroup),
      qos,
      protocolVersion,
      clientId,
      persistentSession,
      sessionExpirySec,
      ackMode,
      receiveMaximum,
    }
  })
  return {
    name: options.name ?? 'mqtt',
    brokers: resolved,
    reconnect,
    connectTimeoutMs,
    keepaliveSec,
  }
}
