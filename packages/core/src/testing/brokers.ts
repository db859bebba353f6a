import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net'

/** A broker started by {@link startAedes}. */
export interface TestBroker {
  /** `mqtt://127.0.0.1:<port>`. */
  readonly url: string
  /** The port it listens on (pass it back to {@link startAedes} to restart on the same port). */
  readonly port: number
  /**
   * Stops listening, closes every client connection and the broker. Idempotent. Persistent
   * sessions live in the broker's memory, so they are gone after `close()`.
   */
  close(): Promise<void>
}

/** Options of {@link startAedes}. */
export interface StartAedesOptions {
  /**
   * The port to listen on, to restart a broker where a previous one was (a "broker restart").
   * @default 0 (an ephemeral port)
   */
  port?: number
}

/**
 * Starts an in-process aedes broker on 127.0.0.1. aedes speaks MQTT 3.1 and 3.1.1 only (it
 * refuses MQTT 5 CONNECTs) and has no shared subscriptions (`$share/…` is an ordinary topic to it).
 *
 * @example
 * const broker = await startAedes()
 * const source = createMqttSource({ brokers: [{ url: broker.url, topics: ['msh/#'] }] })
 * // … later
 * await broker.close()
 */
export async function startAedes(options: StartAedesOptions = {}): Promise<TestBroker> {
  // aedes is a dev dependency: load it only when a test asks for a broker.
  const { Aedes } = await import('aedes')
  const broker = await Aedes.createBroker()
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    broker.handle(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  let closing: Promise<void> | undefined
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    close() {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
        for (const socket of sockets) socket.destroy()
        await new Promise<void>((resolve) => broker.close(() => resolve()))
        await serverClosed
      })()
      return closing
    },
  }
}

const MOSQUITTO_HOST = '127.0.0.1'
const MOSQUITTO_PORT = 1883

function probe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port })
    const done = (open: boolean) => {
      socket.destroy()
      resolve(open)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/**
 * The URL of the Mosquitto the tests share, `mqtt://127.0.0.1:1883`, after checking with a TCP
 * connect that it listens. When it does not: throws if `process.env.CI` is set (CI must run the
 * Mosquitto cases), otherwise prints a visible notice and returns `undefined` so the caller skips.
 * Mosquitto is shared with other tests: use unique topics and client ids.
 *
 * @example
 * const mosquitto = await mosquittoUrl()
 * describe.skipIf(!mosquitto)('against Mosquitto', () => { … })
 */
export async function mosquittoUrl(): Promise<string | undefined> {
  if (await probe(MOSQUITTO_HOST, MOSQUITTO_PORT, 1000)) {
    return `mqtt://${MOSQUITTO_HOST}:${MOSQUITTO_PORT}`
  }
  if (process.env.CI) {
    throw new Error(
      `Mosquitto is required in CI but nothing listens on ${MOSQUITTO_HOST}:${MOSQUITTO_PORT} (install mosquitto and start it with "listener ${MOSQUITTO_PORT} ${MOSQUITTO_HOST}" and "allow_anonymous true")`,
    )
  }
  console.warn(
    `NOTICE: Mosquitto tests skipped: nothing listens on ${MOSQUITTO_HOST}:${MOSQUITTO_PORT} (set CI to make this an error)`,
  )
  return undefined
}

/** A TCP proxy started by {@link startTcpProxy}. */
export interface TcpProxy {
  /** `mqtt://127.0.0.1:<port>`: connect here to reach the target through the proxy. */
  readonly url: string
  /**
   * Destroys every proxied connection at once, both sides, without any MQTT DISCONNECT: to the
   * client it looks like a broker restart or a network failure, to the broker like a client crash.
   * The proxy keeps accepting new connections unless `paused`.
   */
  cut(): void
  /** While paused, new connections are refused (destroyed at once). */
  pause(): void
  resume(): void
  /** Stops the proxy and destroys its connections. */
  close(): Promise<void>
}

/** Options of {@link startTcpProxy}. */
export interface TcpProxyOptions {
  /**
   * Sees every chunk that goes through: `up` from the client to the broker, `down` back. To check
   * on the wire what a client sends (e.g. when its PUBACKs go out).
   */
  tap?: (direction: 'up' | 'down', chunk: Uint8Array) => void
}

/**
 * A TCP proxy on 127.0.0.1 in front of an MQTT broker, to simulate network failures and crashes
 * against a broker the test cannot restart (the shared Mosquitto).
 *
 * @example
 * const proxy = await startTcpProxy('mqtt://127.0.0.1:1883')
 * // connect a source to proxy.url, then:
 * proxy.cut() // the source sees the connection drop and reconnects
 */
export async function startTcpProxy(
  target: string,
  options: TcpProxyOptions = {},
): Promise<TcpProxy> {
  const { hostname, port } = new URL(target)
  const targetPort = Number(port || 1883)
  const sockets = new Set<Socket>()
  let paused = false
  const track = (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  }
  const server = createServer((client) => {
    if (paused) {
      client.destroy()
      return
    }
    const upstream = tcpConnect({ host: hostname, port: targetPort })
    track(client)
    track(upstream)
    const { tap } = options
    if (tap) {
      client.on('data', (chunk: Uint8Array) => tap('up', chunk))
      upstream.on('data', (chunk: Uint8Array) => tap('down', chunk))
    }
    client.pipe(upstream)
    upstream.pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const listenPort = typeof address === 'object' && address ? address.port : 0
  const cut = () => {
    for (const s of sockets) s.destroy()
  }
  return {
    url: `mqtt://127.0.0.1:${listenPort}`,
    cut,
    pause() {
      paused = true
    },
    resume() {
      paused = false
    },
    close() {
      cut()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
