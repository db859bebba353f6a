import type { Store } from '@meshtap/protocol'
import { connectAsync, type MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { createMqttSource } from '../src/mqtt/index.js'
import { createIngest, type Ingest } from '../src/pipeline/ingest.js'
import { createMeshSimulator, type SimulatedMessage } from '../src/simulator/index.js'
import { createMemoryStore } from '../src/store/memory-store.js'
import { mosquittoUrl, startAedes, startTcpProxy, type TestBroker } from '../src/testing/brokers.js'

const MOSQUITTO = await mosquittoUrl()
const rnd = () => Math.random().toString(16).slice(2, 10)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 8000,
): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

/** Simulated traffic with its truth: how many envelopes, distinct packets, and which are PKI. */
function traffic(root: string, envelopes: number, seed: number) {
  const sim = createMeshSimulator({ seed, root, nodes: 30, gateways: 5 })
  const messages = sim.take(envelopes)
  const keys = new Set(messages.map((m) => m.packetKey))
  const pki = new Set(messages.filter((m) => m.pki).map((m) => m.packetKey))
  return { sim, messages, packets: keys.size, pki: pki.size }
}

async function publisher(url: string): Promise<MqttClient> {
  const c = await connectAsync(url, { clientId: `meshtap-pub-${rnd()}`, reconnectPeriod: 200 })
  cleanups.push(() => c.endAsync())
  return c
}

async function publish(c: MqttClient, messages: readonly SimulatedMessage[]): Promise<void> {
  await Promise.all(
    messages.map((m) => c.publishAsync(m.topic, Buffer.from(m.payload), { qos: 1 })),
  )
}

function collector(url: string, root: string, clientId: string, store: Store, v5: boolean): Ingest {
  const source = createMqttSource({
    brokers: [
      {
        url,
        topics: [`${root}/#`],
        qos: 1,
        clientId,
        persistentSession: true,
        protocolVersion: v5 ? 5 : 4,
      },
    ],
    reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
  })
  return createIngest({
    sources: [source],
    store,
    rateLimit: false,
    closeStore: false,
    batch: { maxDelayMs: 20 },
  })
}

async function clearSession(url: string, clientId: string, v5: boolean) {
  const c = await connectAsync(url, {
    clientId,
    clean: true,
    protocolVersion: v5 ? 5 : 4,
    reconnectPeriod: 0,
  })
  await c.endAsync()
}

const brokers: {
  name: string
  v5: boolean
  url: () => Promise<{ url: string; broker?: TestBroker } | undefined>
}[] = [
  {
    name: 'aedes (in-process)',
    v5: false,
    url: async () => {
      const broker = await startAedes()
      cleanups.push(() => broker.close())
      return { url: broker.url, broker }
    },
  },
  {
    name: 'Mosquitto (127.0.0.1:1883)',
    v5: true,
    url: async () => (MOSQUITTO ? { url: MOSQUITTO } : undefined),
  },
]

describe.each(brokers)('ingest through $name', ({ v5, url: getUrl }) => {
  it('stores every distinct packet once and every copy as a reception', async (ctx) => {
    const b = await getUrl()
    if (!b) return ctx.skip()
    const root = `meshtap-test/${rnd()}`
    const t = traffic(root, 800, 11)
    const store = createMemoryStore()
    const clientId = `meshtap-it-${rnd()}`
    cleanups.push(() => clearSession(b.url, clientId, v5))
    const ingest = collector(b.url, root, clientId, store, v5)
    await ingest.start()
    cleanups.push(() => ingest.stop())
    await waitFor('subscribed', () => ingest.metrics().gauges.sourcesConnected === 1)
    await publish(await publisher(b.url), t.messages)
    await waitFor('all received', () => ingest.metrics().counters.received >= t.messages.length)
    await ingest.stop()
    const counts = await store.counts()
    expect(counts.packets + counts.undecoded).toBe(t.packets)
    expect(counts.undecoded).toBe(t.pki)
    expect(counts.receptions).toBe(t.messages.length)
    const c = ingest.metrics().counters
    expect(c.duplicates).toBe(t.messages.length - t.packets)
    expect(c.packets).toBe(t.packets)
    expect(c.dropped).toBe(0)
  })

  it('a restarted collector with a persistent session gets what was published while it was down', async (ctx) => {
    const b = await getUrl()
    if (!b) return ctx.skip()
    const root = `meshtap-test/${rnd()}`
    const t = traffic(root, 600, 12)
    const store = createMemoryStore()
    const clientId = `meshtap-it-${rnd()}`
    cleanups.push(() => clearSession(b.url, clientId, v5))
    const pub = await publisher(b.url)
    const first = collector(b.url, root, clientId, store, v5)
    await first.start()
    await waitFor('subscribed', () => first.metrics().gauges.sourcesConnected === 1)
    await publish(pub, t.messages.slice(0, 300))
    await waitFor('first half', () => first.metrics().counters.received >= 300)
    await first.stop()
    await publish(pub, t.messages.slice(300)) // the collector is down
    const second = collector(b.url, root, clientId, store, v5)
    await second.start()
    cleanups.push(() => second.stop())
    await waitFor(
      'everything stored',
      async () => (await store.counts()).receptions >= t.messages.length,
    )
    await second.stop()
    // The first collector acknowledged what it committed before disconnecting: nothing came twice.
    expect(second.metrics().counters.received).toBe(t.messages.length - 300)
    expect((await store.counts()).receptions).toBe(t.messages.length)
    const c = await store.counts()
    expect(c.packets + c.undecoded).toBe(t.packets)
  })

  it('a collector that crashes before committing loses nothing: the next session gets the unacknowledged messages', async (ctx) => {
    const b = await getUrl()
    if (!b) return ctx.skip()
    const root = `meshtap-test/${rnd()}`
    const t = traffic(root, 200, 13)
    const clientId = `meshtap-it-${rnd()}`
    cleanups.push(() => clearSession(b.url, clientId, v5))
    const proxy = await startTcpProxy(b.url)
    cleanups.push(() => proxy.close())
    // A store that never commits: the crashed collector acknowledges nothing.
    const stuck: Store = {
      ...createMemoryStore(),
      writeBatchSync: undefined,
      writeBatch: () => new Promise(() => {}),
    }
    const crashed = collector(proxy.url, root, clientId, stuck, v5)
    await crashed.start()
    cleanups.push(() => Promise.race([crashed.stop(), sleep(200)]))
    await waitFor('subscribed', () => crashed.metrics().gauges.sourcesConnected === 1)
    await publish(await publisher(b.url), t.messages)
    await waitFor(
      'received by the doomed collector',
      () => crashed.metrics().counters.received >= 200,
    )
    proxy.pause() // the process "dies": its connection drops with nothing acknowledged…
    proxy.cut() // …and it never comes back
    const store = createMemoryStore()
    const next = collector(b.url, root, clientId, store, v5)
    await next.start()
    cleanups.push(() => next.stop())
    await waitFor('redelivered', () => next.metrics().counters.received >= t.messages.length)
    await next.stop()
    const c = await store.counts()
    expect(c.receptions).toBe(t.messages.length)
    expect(c.packets + c.undecoded).toBe(t.packets)
  })
})

describe('ingest across a broker restart (aedes, QoS 1)', () => {
  it('reconnects and loses nothing published after the restart', async () => {
    let broker = await startAedes()
    const port = broker.port
    cleanups.push(() => broker.close())
    const root = `meshtap-test/${rnd()}`
    const t = traffic(root, 400, 14)
    const store = createMemoryStore()
    const ingest = collector(broker.url, root, `meshtap-it-${rnd()}`, store, false)
    const states: string[] = []
    ingest.on('sourceStatus', (s) => states.push(s.state))
    await ingest.start()
    cleanups.push(() => ingest.stop())
    await waitFor('subscribed', () => ingest.metrics().gauges.sourcesConnected === 1)
    const pub1 = await publisher(broker.url)
    await publish(pub1, t.messages.slice(0, 200))
    await waitFor('first half', () => ingest.metrics().counters.received >= 200)
    await ingest.flush()
    await broker.close()
    await waitFor('disconnect noticed', () => states.includes('reconnecting'))
    broker = await startAedes({ port })
    await waitFor('reconnected', () => ingest.metrics().gauges.sourcesConnected === 1, 10_000)
    const pub2 = await publisher(broker.url)
    await publish(pub2, t.messages.slice(200))
    await waitFor('second half', () => ingest.metrics().counters.received >= t.messages.length)
    await ingest.stop()
    expect((await store.counts()).receptions).toBe(t.messages.length)
    expect(states).toContain('connected')
  })
})
