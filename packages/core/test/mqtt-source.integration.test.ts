import type { RawMessage } from '@meshtap/protocol'
import { connectAsync, type MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { createMqttSource, type MqttSource, type MqttSourceStatus } from '../src/mqtt/index.js'
import { mosquittoUrl, startAedes, startTcpProxy, type TcpProxy } from '../src/testing/brokers.js'

const MOSQUITTO = await mosquittoUrl()

const decoder = new TextDecoder()
const text = (m: RawMessage) => decoder.decode(m.payload)
const rnd = () => Math.random().toString(16).slice(2, 10)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor(what: string, cond: () => boolean, timeoutMs = 4000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** Everything a test opens, closed after it (also when it fails). */
const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

interface Run {
  source: MqttSource
  messages: RawMessage[]
  acks: Array<() => void>
  statuses: MqttSourceStatus[]
}

async function run(source: MqttSource): Promise<Run> {
  const r: Run = { source, messages: [], acks: [], statuses: [] }
  source.onStatus((s) => r.statuses.push(s))
  cleanups.push(() => source.stop())
  await source.start((m, ack) => {
    r.messages.push(m)
    r.acks.push(ack)
  })
  await waitFor('connected', () => source.status().state === 'connected')
  return r
}

async function publisher(url: string): Promise<MqttClient> {
  const client = await connectAsync(url, {
    clientId: `meshtap-pub-${rnd()}`,
    protocolVersion: 4,
    reconnectPeriod: 0,
  })
  cleanups.push(() => client.endAsync())
  return client
}

async function publishAll(client: MqttClient, topic: string, payloads: string[], qos: 0 | 1 = 1) {
  for (const p of payloads) await client.publishAsync(topic, p, { qos })
}

/** Deletes a persistent session left on the shared Mosquitto. */
async function clearSession(url: string, clientId: string, protocolVersion: 4 | 5) {
  const c = await connectAsync(url, { clientId, clean: true, protocolVersion, reconnectPeriod: 0 })
  await c.endAsync()
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`)

/** MQTT packets seen on the wire through a proxy: PUBLISH ids going down, PUBACK ids going up. */
function wire() {
  const published: number[] = []
  const pubacks: number[] = []
  const buffers = { up: new Uint8Array(0), down: new Uint8Array(0) }
  const tap = (dir: 'up' | 'down', chunk: Uint8Array) => {
    const prev = buffers[dir]
    let buf = new Uint8Array(prev.length + chunk.length)
    buf.set(prev)
    buf.set(chunk, prev.length)
    for (;;) {
      if (buf.length < 2) break
      let len = 0
      let mul = 1
      let i = 1
      for (; i < 5 && i < buf.length; i++) {
        len += (buf[i]! & 0x7f) * mul
        mul *= 128
        if ((buf[i]! & 0x80) === 0) break
      }
      if (i >= buf.length || (buf[i]! & 0x80) !== 0) break
      const start = i + 1
      if (buf.length < start + len) break
      const type = buf[0]! >> 4
      const qos = (buf[0]! >> 1) & 3
      if (dir === 'down' && type === 3 && qos > 0) {
        const topicLen = (buf[start]! << 8) | buf[start + 1]!
        const at = start + 2 + topicLen
        published.push((buf[at]! << 8) | buf[at + 1]!)
      }
      if (dir === 'up' && type === 4) pubacks.push((buf[start]! << 8) | buf[start + 1]!)
      buf = buf.slice(start + len)
    }
    buffers[dir] = buf
  }
  return { published, pubacks, tap }
}

interface BrokerKind {
  name: string
  /** MQTT 5 available (aedes speaks 3.1.1 only). */
  mqtt5: boolean
  /** A broker for one test. `restart` closes it and starts it again on the same port (aedes only). */
  start(): Promise<{ url: string; restart?: () => Promise<void> }>
}

const kinds: BrokerKind[] = [
  {
    name: 'aedes',
    mqtt5: false,
    async start() {
      let broker = await startAedes()
      cleanups.push(() => broker.close())
      return {
        url: broker.url,
        async restart() {
          await broker.close()
          await sleep(150)
          broker = await startAedes({ port: broker.port })
          cleanups.push(() => broker.close())
        },
      }
    },
  },
  ...(MOSQUITTO
    ? [
        {
          name: 'mosquitto',
          mqtt5: true,
          async start() {
            return { url: MOSQUITTO }
          },
        },
      ]
    : []),
]

describe.each(kinds)('createMqttSource against $name', (kind) => {
  it('receives what is published on matching topics only, as Uint8Array with the endpoint', async () => {
    const { url } = await kind.start()
    const base = `meshtap-test/${rnd()}`
    const { messages, source } = await run(
      createMqttSource({
        brokers: [{ url, topics: [`${base}/in/#`, `${base}/one/+`] }],
      }),
    )
    const pub = await publisher(url)
    await pub.publishAsync(`${base}/in/a/b`, 'in-1')
    await pub.publishAsync(`${base}/out/a`, 'out-1')
    await pub.publishAsync(`${base}/one/x`, 'one-1')
    await pub.publishAsync(`${base}/one/x/y`, 'out-2')
    await pub.publishAsync(`${base}/in`, 'in-2')
    await pub.publishAsync(`${base}/in/c`, 'in-3', { qos: 1 })
    await waitFor('4 messages', () => messages.length >= 4)
    await sleep(100)
    // `a/#` matches `a` itself; `+` matches one level only.
    expect(messages.map(text)).toEqual(['in-1', 'one-1', 'in-2', 'in-3'])
    const m = messages[0]!
    expect(m.topic).toBe(`${base}/in/a/b`)
    expect(m.payload).toBeInstanceOf(Uint8Array)
    expect(Buffer.isBuffer(m.payload)).toBe(false)
    expect(m.source).toBe(url)
    expect(Math.abs(m.receivedAt! - Date.now())).toBeLessThan(5000)
    expect(source.stats()).toMatchObject({ received: 4, reconnects: 0 })
  })

  it('reconnects after the broker goes away and loses nothing at QoS 1 afterwards', async () => {
    const broker = await kind.start()
    let proxy: TcpProxy | undefined
    let url = broker.url
    if (!broker.restart) {
      // The shared Mosquitto cannot be restarted: drop the connection in a proxy instead, and
      // refuse new ones for a while, which is what a restarting broker looks like to a client.
      proxy = await startTcpProxy(broker.url)
      cleanups.push(() => proxy!.close())
      url = proxy.url
    }
    const topic = `meshtap-test/${rnd()}/reconnect`
    const r = await run(
      createMqttSource({
        brokers: [{ url, topics: [topic], qos: 1 }],
        reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
      }),
    )
    const pub0 = await publisher(broker.url)
    await publishAll(pub0, topic, ['before'])
    await waitFor('first message', () => r.messages.length === 1)

    if (broker.restart) {
      const restarting = broker.restart()
      // The state may already have moved on (the reconnect delay is short): look at its history.
      await waitFor('reconnecting', () => r.statuses.some((s) => s.state === 'reconnecting'))
      await restarting
    } else {
      proxy!.pause()
      proxy!.cut()
      await waitFor(
        'two failed attempts',
        () => r.statuses.filter((s) => s.state === 'reconnecting').length >= 2,
      )
      proxy!.resume()
    }
    await waitFor('connected again', () => r.source.status().state === 'connected')

    const pub = await publisher(broker.url)
    const payloads = range(1, 20)
    await publishAll(pub, topic, payloads)
    await waitFor('20 messages', () => r.messages.length >= 21)
    expect(r.messages.slice(1).map(text)).toEqual(payloads)

    const states = r.statuses.map((s) => s.state)
    const firstLoss = states.indexOf('reconnecting')
    expect(states.slice(0, 2)).toEqual(['connecting', 'connected'])
    expect(firstLoss).toBeGreaterThan(1)
    expect(states.slice(firstLoss)).toContain('connecting')
    expect(states.at(-1)).toBe('connected')
    const loss = r.statuses[firstLoss]!
    expect(loss.retryInMs).toBeGreaterThan(0)
    expect(loss.retryInMs).toBeLessThanOrEqual(200)
    expect(loss.error).toBeTruthy()
    expect(r.source.stats()).toMatchObject({ reconnects: 1 })
    expect(r.source.stats().brokers[0]!.disconnects).toBeGreaterThanOrEqual(1)
  })

  it('keeps a persistent session: a restarted collector gets what was published meanwhile', async () => {
    const { url } = await kind.start()
    const protocolVersion = kind.mqtt5 ? 5 : 4
    const clientId = `meshtap-test-${rnd()}`
    const topic = `meshtap-test/${rnd()}/session`
    if (kind.name === 'mosquitto') cleanups.push(() => clearSession(url, clientId, protocolVersion))
    const collector = () =>
      createMqttSource({
        brokers: [
          { url, topics: [topic], qos: 1, clientId, persistentSession: true, protocolVersion },
        ],
        ackMode: 'auto',
      })
    const first = await run(collector())
    const pub = await publisher(url)
    await publishAll(pub, topic, ['m0'])
    await waitFor('m0', () => first.messages.length === 1)
    await first.source.stop()
    expect(first.source.status().state).toBe('closed')

    await publishAll(pub, topic, range(1, 5))
    const second = await run(collector())
    await waitFor('the queued messages', () => second.messages.length >= 5)
    await sleep(100)
    expect(second.messages.map(text)).toEqual(range(1, 5))
  })

  it('defers PUBACKs until ack(), in arrival order, and the next session gets what was not acked', async () => {
    const { url } = await kind.start()
    const protocolVersion = kind.mqtt5 ? 5 : 4
    const clientId = `meshtap-test-${rnd()}`
    const topic = `meshtap-test/${rnd()}/deferred`
    if (kind.name === 'mosquitto') cleanups.push(() => clearSession(url, clientId, protocolVersion))
    const seen = wire()
    const proxy = await startTcpProxy(url, { tap: seen.tap })
    cleanups.push(() => proxy.close())
    const collector = (via: string) =>
      createMqttSource({
        brokers: [
          { url: via, topics: [topic], qos: 1, clientId, persistentSession: true, protocolVersion },
        ],
        reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
      })

    const first = await run(collector(proxy.url))
    const pub = await publisher(url)
    await publishAll(pub, topic, range(1, 10))
    // All ten arrive although none is acknowledged: delivery does not wait for acks.
    await waitFor('10 messages', () => first.messages.length === 10)
    await waitFor('10 PUBLISH on the wire', () => seen.published.length === 10)
    expect(first.messages.map(text)).toEqual(range(1, 10))
    await sleep(100)
    expect(seen.pubacks).toEqual([])
    expect(first.source.stats().brokers[0]!.pendingAcks).toBe(10)

    const ids = seen.published
    first.acks[2]!() // m3: held, m1 and m2 are not acked
    first.acks[1]!() // m2: held
    await sleep(50)
    expect(seen.pubacks).toEqual([])
    first.acks[0]!() // m1: releases m1, m2, m3 in that order
    await waitFor('3 PUBACKs', () => seen.pubacks.length === 3)
    first.acks[4]!() // m5: held behind m4
    first.acks[3]!()
    first.acks[3]!() // twice is harmless
    await waitFor('5 PUBACKs', () => seen.pubacks.length === 5)
    await sleep(100)
    expect(seen.pubacks).toEqual(ids.slice(0, 5))
    expect(first.source.stats().brokers[0]!.pendingAcks).toBe(5)

    // Crash: the connection dies without DISCONNECT and without the five held PUBACKs.
    proxy.cut()
    await waitFor('connection lost', () => first.source.status().state !== 'connected')
    first.acks[5]!() // too late: that connection is gone, nothing may be sent
    await first.source.stop()
    await publishAll(pub, topic, ['m11'])

    const second = await run(collector(url))
    await waitFor('redelivered messages', () => second.messages.length >= 6)
    await sleep(150)
    // m1–m5 were acknowledged: gone. m6–m10 come again (DUP), then m11 that was queued meanwhile.
    expect(second.messages.map(text)).toEqual(range(6, 11))
    expect(seen.pubacks).toEqual(ids.slice(0, 5))

    // A graceful stop does not send held PUBACKs either: m9–m11 stay with the broker.
    for (const ack of second.acks.slice(0, 3)) ack()
    await waitFor('3 released', () => second.source.stats().brokers[0]!.pendingAcks === 3)
    await second.source.stop()
    const third = await run(collector(url))
    await waitFor('m9–m11 again', () => third.messages.length >= 3)
    await sleep(100)
    expect(third.messages.map(text)).toEqual(range(9, 11))
    for (const ack of third.acks) ack()
    await waitFor('all acked', () => third.source.stats().brokers[0]!.pendingAcks === 0)
  })

  if (kind.mqtt5) {
    it('splits a shared subscription between two collectors with no message twice and none lost', async () => {
      const { url } = await kind.start()
      const topic = `meshtap-test/${rnd()}/shared`
      const group = `meshtap-${rnd()}`
      const member = () =>
        createMqttSource({
          brokers: [{ url, topics: [topic], qos: 1, protocolVersion: 5, shareGroup: group }],
        })
      const a = await run(member())
      const b = await run(member())
      const pub = await publisher(url)
      const payloads = range(1, 40)
      await publishAll(pub, topic, payloads)
      await waitFor('40 messages', () => a.messages.length + b.messages.length >= 40)
      await sleep(150)
      const got = [...a.messages, ...b.messages].map(text)
      expect(got).toHaveLength(40)
      expect(new Set(got).size).toBe(40)
      expect(a.messages.length).toBeGreaterThan(0)
      expect(b.messages.length).toBeGreaterThan(0)
    })

    it('lets an MQTT 5 collector hold many unacked messages (receiveMaximum), unlike MQTT 3.1.1', async () => {
      const { url } = await kind.start()
      const counts: Record<number, number> = {}
      for (const protocolVersion of [4, 5] as const) {
        const topic = `meshtap-test/${rnd()}/window`
        const r = await run(
          createMqttSource({
            brokers: [{ url, topics: [topic], qos: 1, protocolVersion }],
            ackMode: 'deferred',
          }),
        )
        const pub = await publisher(url)
        await publishAll(pub, topic, range(1, 50))
        // MQTT 5 must get all 50 without an ack; MQTT 3.1.1 must stop short within a while.
        if (protocolVersion === 5) {
          await waitFor('all 50 unacknowledged', () => r.messages.length === 50)
        } else {
          await sleep(300)
        }
        counts[protocolVersion] = r.messages.length
        for (const ack of r.acks) ack()
        await waitFor('the rest', () => r.messages.length === 50)
        for (const ack of r.acks) ack()
        await r.source.stop()
      }
      // Mosquitto's max_inflight_messages (default 20) limits MQTT 3.1.1 clients only.
      expect(counts[5]).toBe(50)
      expect(counts[4]).toBeLessThan(50)
    })

    it('pause() stops reading a deferred-ack broker (it keeps the messages); resume() delivers them all, in order', async () => {
      const { url } = await kind.start()
      const topic = `meshtap-test/${rnd()}/paused`
      const clientId = `meshtap-paused-${rnd()}`
      cleanups.push(() => clearSession(url, clientId, 5))
      const r = await run(
        createMqttSource({
          brokers: [
            { url, topics: [topic], qos: 1, protocolVersion: 5, clientId, persistentSession: true },
          ],
        }),
      )
      const pub = await publisher(url)
      await publishAll(pub, topic, range(1, 5))
      await waitFor('the first five', () => r.messages.length === 5)
      for (const ack of r.acks.splice(0)) ack()
      r.source.pause()
      await publishAll(pub, topic, range(6, 40))
      await sleep(400)
      // One message may already be on its way when the pause lands; the rest wait at the broker.
      expect(r.messages.length).toBeLessThanOrEqual(6)
      r.source.resume()
      await waitFor('the backlog', () => r.messages.length === 40)
      for (const ack of r.acks.splice(0)) ack()
      expect(r.messages.map(text)).toEqual(range(1, 40))
    })
  } else {
    it('reports a broker without MQTT 5 as offline with the reason (no shared subscriptions here)', async () => {
      const { url } = await kind.start()
      const source = createMqttSource({
        brokers: [{ url, topics: ['t'], protocolVersion: 5, shareGroup: 'g' }],
        reconnect: { initialDelayMs: 50, maxDelayMs: 100 },
      })
      const statuses: MqttSourceStatus[] = []
      source.onStatus((s) => statuses.push(s))
      cleanups.push(() => source.stop())
      await source.start(() => {})
      await waitFor('offline', () => statuses.some((s) => s.state === 'offline'))
      expect(statuses.find((s) => s.state === 'offline')).toMatchObject({
        error: expect.stringMatching(/Unacceptable protocol version/),
        retryInMs: 100,
      })
    })
  }
})
