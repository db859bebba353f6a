import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { createIngest } from '@meshtap/core'
import { createPgStore } from '@meshtap/pg-store'
import { createSqliteStore } from '@meshtap/sqlite-store'
import { createWsServer, type WsServer } from '@meshtap/ws-server'
import { HttpError, registerApi } from './api.js'
import { type ServerConfig, validateChannelKey } from './config.js'
import { createDiagnostics } from './diagnostics.js'
import { createHttpServer, serveDocsAndWeb } from './http.js'
import { createLiveSource, createRateMeter, createSwappableCodec } from './runtime.js'
import {
  type EmbeddedBroker,
  type ManagedSource,
  managedChangeFeed,
  managedMqttSource,
  managedSimulator,
  startEmbeddedBroker,
} from './sources.js'
import { createStatus } from './status.js'

/** A running reference server. */
export interface ReferenceServer {
  /** `http://host:port` */
  readonly url: string
  /** The embedded broker's URL, when it runs. */
  readonly mqttUrl?: string
  /** Drains the ingest, flushes the store and stops everything. Idempotent. */
  close(): Promise<void>
}

/**
 * Assembles the packages into the reference server and starts it.
 *
 * With `config.pg` the store is PostgreSQL and the live WebSocket pushes what the change feed
 * reads back from the database: the events of every instance writing to it, this one included.
 * With `config.ingest === false` (web-only) the ingest gets no sources: it only owns the store.
 */
export async function startReferenceServer(config: ServerConfig): Promise<ReferenceServer> {
  let store: ReturnType<typeof createSqliteStore> | ReturnType<typeof createPgStore>
  if (config.pg) {
    store = createPgStore({ connectionString: config.pg.url, schema: config.pg.schema })
  } else {
    mkdirSync(dirname(config.database), { recursive: true })
    store = createSqliteStore({ path: config.database })
  }
  const keys = createSwappableCodec(config.keys)
  const ingest = createIngest({ store, codec: keys.codec })
  const { live, attach, emitStatus } = createLiveSource(config.pg ? undefined : ingest)
  const diagnostics = createDiagnostics(ingest)
  const rate = createRateMeter(ingest)
  const sources: ManagedSource[] = []
  let ws: WsServer | undefined
  let broker: EmbeddedBroker | undefined

  const app = await createHttpServer(config)
  const status = createStatus({
    app,
    ingest,
    store,
    ws: () => ws,
    sources: () => sources,
    rate: rate.rate,
    memoryLimitMb: config.memoryLimitMb,
    diagnosticsNodes: diagnostics.size,
  })
  const find = (id: string) => sources.find((s) => s.id === id)
  registerApi(app, {
    store,
    token: config.token,
    protectReads: config.protectReads,
    cachedGateways: (num) => live.cache.get(num)?.gateways,
    diagnose: (num) => diagnostics.diagnose(store, num),
    ...status,
    uiConfig: () => ({
      tileUrl: config.tileUrl ?? null,
      tileAttribution: config.tileAttribution ?? null,
      livePath: '/api/live',
      protectReads: config.protectReads,
    }),
    sources: {
      list: () => sources.map((s) => s.info()),
      async start(id) {
        await find(id)?.start()
        return find(id)?.info()
      },
      async stop(id) {
        await find(id)?.stop()
        return find(id)?.info()
      },
    },
    keys: {
      list: keys.keys,
      async add(name, psk) {
        try {
          validateChannelKey({ name, psk }, 'body')
        } catch (e) {
          throw new HttpError(400, 'BAD_KEY', (e as Error).message)
        }
        const codec = keys.add({ name, psk })
        const redecrypt = await store.redecrypt((m) => codec.decode(m))
        return { channel: name, redecrypt }
      },
    },
  })
  await serveDocsAndWeb(app, config.webDir)

  await ingest.start()
  if (config.pg) {
    // First: it seeds the node cache and LISTENs before any source of this instance writes.
    const feed = managedChangeFeed('change-feed', config.pg, attach, emitStatus)
    await feed.start()
    sources.push(feed)
  }
  if (config.mqtt.enabled) {
    broker = await startEmbeddedBroker(config.mqtt)
    const b = {
      url: broker.url,
      topics: ['msh/#'],
      username: config.mqtt.username,
      password: config.mqtt.password,
    }
    sources.push(managedMqttSource('embedded', 'embedded', b, ingest, emitStatus))
  }
  for (const b of config.brokers) {
    sources.push(
      managedMqttSource(b.id, b.id === 'public' ? 'public' : 'broker', b, ingest, emitStatus),
    )
  }
  if (config.simulate && broker) {
    sources.push(
      managedSimulator(
        'simulator',
        {
          ...config.simulate,
          url: broker.url,
          username: config.mqtt.username,
          password: config.mqtt.password,
        },
        emitStatus,
      ),
    )
  }
  await app.listen({ host: config.host, port: config.port })
  ws = createWsServer({
    server: app.server,
    path: '/api/live',
    source: live,
    store,
    ...(config.protectReads
      ? { authenticate: (_r, c) => c.token !== undefined && c.token === config.token }
      : {}),
    onError: (e) => app.log.warn(e.message),
  })
  await Promise.all(sources.filter((s) => s.id !== 'change-feed').map((s) => s.start()))

  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : config.port
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
  let closing: Promise<void> | undefined
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ...(broker ? { mqttUrl: broker.url } : {}),
    close() {
      closing ??= (async () => {
        const sim = sources.find((s) => s.id === 'simulator')
        await sim?.stop()
        await ws?.close()
        await app.close()
        await ingest.stop() // drains the queue, commits, closes the store
        await Promise.allSettled(sources.map((s) => s.stop()))
        await broker?.close()
        rate.close()
        diagnostics.close()
      })()
      return closing
    },
  }
}
