import { timingSafeEqual } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import type { ChannelKeyInput, Ingest } from '@meshtap/core'
import { createMeshSimulator } from '@meshtap/core'
import { createMqttSource, type MqttBrokerOptions } from '@meshtap/core/mqtt'
import { createPgChangeFeed, type PgChangeFeed } from '@meshtap/pg-store'
import type { LiveSource, Source, SourceState, SourceStatus } from '@meshtap/protocol'
import { Aedes } from 'aedes'
import { connect, type MqttClient } from 'mqtt'
import { redact } from './config.js'

/** What the control API and health report about one source. */
export interface SourceInfo {
  id: string
  kind: 'embedded' | 'broker' | 'public' | 'simulator' | 'change-feed'
  /** Where it connects (no credentials). */
  endpoint: string
  topics?: string[]
  /** `stopped`: stopped through the control API (not a failure). */
  state: SourceState | 'stopped' | 'running'
  error?: string
  /** Unix ms of the last state change. */
  since: number
  /** Envelopes published (simulator only). */
  published?: number
}

/** A source the server can start and stop at run time. */
export interface ManagedSource {
  readonly id: string
  info(): SourceInfo
  start(): Promise<void>
  stop(): Promise<void>
}

/**
 * Runs an MQTT subscription into the ingest, restartable: a `Source` starts once, so each start
 * builds a new one and adds it to the running ingest (`ingest.addSource`, which also gives it
 * backpressure at QoS 1 with a persistent session); a stop removes it.
 */
export function managedMqttSource(
  id: string,
  kind: SourceInfo['kind'],
  broker: MqttBrokerOptions,
  ingest: Ingest,
  onStatus: (s: SourceStatus) => void,
): ManagedSource {
  let source: Source | undefined
  let unsubscribe: (() => void) | undefined
  let status: SourceInfo = {
    id,
    kind,
    endpoint: redact(broker.url),
    topics: broker.topics,
    state: 'idle',
    since: Date.now(),
  }
  return {
    id,
    info: () => ({ ...status }),
    async start() {
      if (source) return
      const s = createMqttSource({
        name: id,
        brokers: [{ ...broker, name: id }],
        reconnect: { initialDelayMs: 500, maxDelayMs: 30_000 },
      })
      source = s
      unsubscribe = s.onStatus((st) => {
        status = { ...status, state: st.state, since: st.at }
        if (st.error) status.error = st.error
        else delete status.error
        onStatus({ ...st, source: id })
      })
      await ingest.addSource(s)
    },
    async stop() {
      const s = source
      source = undefined
      if (!s) return
      await ingest.removeSource(s.name)
      unsubscribe?.()
      status = { ...status, state: 'stopped', since: Date.now() }
      delete status.error
      onStatus({ source: id, state: 'closed', at: status.since })
    },
  }
}

/** The embedded aedes broker, listening on TCP. */
export interface EmbeddedBroker {
  readonly port: number
  readonly url: string
  clients(): number
  close(): Promise<void>
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Starts aedes on `host:port`, requiring `username`/`password` when given. */
export async function startEmbeddedBroker(options: {
  host: string
  port: number
  username?: string | undefined
  password?: string | undefined
}): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker()
  const { username, password } = options
  if (username !== undefined && password !== undefined) {
    broker.authenticate = (_client, user, pass, done) => {
      const ok = user !== undefined && same(user, username) && same(String(pass ?? ''), password)
      if (ok) done(null, true)
      else done(Object.assign(new Error('bad user name or password'), { returnCode: 4 }), false)
    }
  }
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    broker.handle(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `embedded MQTT broker: cannot listen on ${options.host}:${options.port} (${e.code}); choose another --mqtt-port or --no-mqtt`,
        ),
      ),
    )
    server.listen(options.port, options.host, () => resolve())
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : options.port
  const host = options.host.includes(':') ? `[${options.host}]` : options.host
  let closing: Promise<void> | undefined
  return {
    port,
    url: `mqtt://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    clients: () => broker.connectedClients,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()))
        for (const s of sockets) s.destroy()
        await new Promise<void>((resolve) => broker.close(() => resolve()))
        await closed
      })()
      return closing
    },
  }
}

/** The channel the simulated nodes use besides LongFast, whose key the server does not know by default. */
export const SIMULATED_SECRET_CHANNEL: ChannelKeyInput = {
  name: 'Hidden',
  psk: 'c2ltdWxhdGVkLXNlY3JldA==',
}

/**
 * Publishes a simulated mesh to a broker over MQTT at `rate` envelopes per second (after an
 * initial burst), so the whole path — broker, source, codec, ingest, store, WebSocket — runs.
 */
export function managedSimulator(
  id: string,
  options: {
    url: string
    username?: string | undefined
    password?: string | undefined
    rate: number
    nodes: number
    gateways: number
    seed: number
    burst: number
  },
  onStatus: (s: SourceStatus) => void,
): ManagedSource {
  let client: MqttClient | undefined
  let timer: ReturnType<typeof setInterval> | undefined
  let published = 0
  let starts = 0
  let status: SourceInfo = {
    id,
    kind: 'simulator',
    endpoint: options.url,
    state: 'idle',
    since: Date.now(),
  }
  const set = (state: SourceInfo['state'], error?: string) => {
    status = { ...status, state, since: Date.now() }
    if (error) status.error = error
    else delete status.error
    onStatus({
      source: id,
      state: state === 'running' ? 'connected' : state === 'stopped' ? 'closed' : state,
      at: status.since,
      ...(error ? { error } : {}),
    })
  }
  return {
    id,
    info: () => ({ ...status, published }),
    async start() {
      if (client) return
      const now = Date.now()
      const virtualRate = options.rate / 3
      const sim = createMeshSimulator({
        // A restarted simulator must not repeat packet ids the dedup still remembers.
        seed: options.seed + starts++,
        nodes: options.nodes,
        gateways: options.gateways,
        channels: [{ name: 'LongFast', psk: 'AQ==' }, SIMULATED_SECRET_CHANNEL],
        // The burst is back-dated so that virtual time meets wall time when it is done.
        startTime: now - (options.burst / options.rate) * 1000,
        virtualRate,
        mapReportIntervalSecs: 600,
      })
      set('connecting')
      const c = connect(options.url, {
        ...(options.username !== undefined
          ? { username: options.username, password: options.password }
          : {}),
        clientId: `meshtap-simulator-${process.pid}`,
        reconnectPeriod: 1000,
        protocolVersion: 4,
      })
      client = c
      c.on('error', (e) => set('reconnecting', e.message))
      c.on('offline', () => set('reconnecting'))
      const queue: { topic: string; payload: Uint8Array }[] = []
      const publish = (n: number) => {
        while (n > 0 && c.connected) {
          if (queue.length === 0) queue.push(...sim.next())
          const m = queue.shift()
          if (!m) return
          c.publish(m.topic, Buffer.from(m.payload), { qos: 0 })
          published++
          n--
        }
      }
      await new Promise<void>((resolve) => {
        c.once('connect', () => {
          set('running')
          publish(options.burst)
          resolve()
        })
      })
      c.on('connect', () => set('running'))
      let credit = 0
      timer = setInterval(() => {
        credit += options.rate / 10
        const n = Math.floor(credit)
        credit -= n
        publish(n)
      }, 100)
      timer.unref()
    },
    async stop() {
      if (timer) clearInterval(timer)
      timer = undefined
      const c = client
      client = undefined
      if (!c) return
      await c.endAsync()
      set('stopped')
    },
  }
}

/**
 * The PostgreSQL change feed as a source of live events: what every ingest worker commits to the
 * database, read back and pushed to this server's WebSocket clients. A feed starts once, so each
 * start builds a new one and hands it to `attach` (the live source the WebSocket serves).
 */
export function managedChangeFeed(
  id: string,
  options: { url: string; schema: string },
  attach: (feed: LiveSource) => void,
  onStatus: (s: SourceStatus) => void,
): ManagedSource & { readonly feed: PgChangeFeed | undefined } {
  let feed: PgChangeFeed | undefined
  let unsubscribe: (() => void) | undefined
  let status: SourceInfo = {
    id,
    kind: 'change-feed',
    endpoint: `${redact(options.url)} (schema ${options.schema})`,
    state: 'idle',
    since: Date.now(),
  }
  return {
    id,
    get feed() {
      return feed
    },
    info: () => ({ ...status }),
    async start() {
      if (feed) return
      const f = createPgChangeFeed({
        connectionString: options.url,
        schema: options.schema,
        name: id,
      })
      feed = f
      unsubscribe = f.on('sourceStatus', (st) => {
        status = { ...status, state: st.state, since: st.at }
        if (st.error) status.error = st.error
        else delete status.error
        onStatus({ ...st, source: id })
      })
      try {
        await f.start()
      } catch (e) {
        unsubscribe()
        unsubscribe = undefined
        feed = undefined
        await f.stop().catch(() => undefined)
        status = { ...status, state: 'offline', since: Date.now(), error: (e as Error).message }
        throw e
      }
      attach(f)
    },
    async stop() {
      const f = feed
      feed = undefined
      if (!f) return
      await f.stop()
      unsubscribe?.()
      unsubscribe = undefined
      status = { ...status, state: 'stopped', since: Date.now() }
      delete status.error
      onStatus({ source: id, state: 'closed', at: status.since })
    },
  }
}
