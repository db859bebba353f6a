import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { createAckWindow } from './ack-window.js'
import { backoffDelay, DEFAULT_RECONNECT } from './backoff.js'
import { createMqttSource, type MqttSourceStatus } from './mqtt-source.js'
import {
  type MqttSourceOptions,
  randomClientId,
  redactUrl,
  resolveMqttSourceOptions,
  shareTopics,
  topicFilterError,
} from './options.js'

describe('backoffDelay', () => {
  const noJitter = { ...DEFAULT_RECONNECT, jitter: 0 }

  it('doubles from initialDelayMs and caps at maxDelayMs', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 10, 100].map((a) => backoffDelay(a, noJitter))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000,
    ])
  })

  it('draws the delay from [base × (1 − jitter), base]', () => {
    expect(backoffDelay(2, DEFAULT_RECONNECT, () => 0)).toBe(4000)
    expect(backoffDelay(2, DEFAULT_RECONNECT, () => 1)).toBe(2000)
    expect(backoffDelay(2, DEFAULT_RECONNECT, () => 0.5)).toBe(3000)
    expect(backoffDelay(50, DEFAULT_RECONNECT, () => 0)).toBe(30000)
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3, DEFAULT_RECONNECT)
      expect(d).toBeGreaterThanOrEqual(4000)
      expect(d).toBeLessThanOrEqual(8000)
    }
  })

  it('treats odd attempt numbers sanely and never overflows', () => {
    expect(backoffDelay(-3, noJitter)).toBe(1000)
    expect(backoffDelay(1.7, noJitter)).toBe(2000)
    expect(backoffDelay(10_000, noJitter)).toBe(30000)
    expect(backoffDelay(3, { initialDelayMs: 50, maxDelayMs: 300, jitter: 0 })).toBe(300)
  })
})

describe('createAckWindow (PUBACK order)', () => {
  it('releases in arrival order, holding later acks until earlier ones come', () => {
    const sent: number[] = []
    const w = createAckWindow((id) => sent.push(id))
    const a = [10, 11, 12, 13, 14].map((id) => w.track(id))
    a[2]!()
    a[1]!()
    expect(sent).toEqual([])
    expect(w.pending).toBe(5)
    a[0]!()
    expect(sent).toEqual([10, 11, 12])
    a[4]!()
    expect(sent).toEqual([10, 11, 12])
    a[3]!()
    expect(sent).toEqual([10, 11, 12, 13, 14])
    expect(w.pending).toBe(0)
  })

  it('ignores a second ack of the same message', () => {
    const sent: number[] = []
    const w = createAckWindow((id) => sent.push(id))
    const first = w.track(1)
    const second = w.track(2)
    first()
    first()
    expect(sent).toEqual([1])
    second()
    expect(sent).toEqual([1, 2])
  })

  it('keeps the same packet id apart when the broker reuses it after release', () => {
    const sent: number[] = []
    const w = createAckWindow((id) => sent.push(id))
    const a = w.track(7)
    a()
    const b = w.track(7)
    a()
    expect(sent).toEqual([7])
    b()
    expect(sent).toEqual([7, 7])
  })

  it('drops everything on reset, and acks handed out before become no-ops', () => {
    const sent: number[] = []
    const w = createAckWindow<string>((id) => sent.push(id))
    w.reset('conn-1')
    const old = [1, 2, 3].map((id) => w.track(id))
    old[1]!()
    w.reset('conn-2')
    expect(w.epoch).toBe('conn-2')
    expect(w.pending).toBe(0)
    for (const ack of old) ack()
    expect(sent).toEqual([])
    const fresh = w.track(1)
    fresh()
    expect(sent).toEqual([1])
  })

  it('stays correct and compact over many messages acked out of order', () => {
    const sent: number[] = []
    const w = createAckWindow((id) => sent.push(id))
    const acks: Array<() => void> = []
    let next = 0
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 100; i++) acks.push(w.track(next++ % 65535))
      // ack in reverse order, all but the last 10
      for (let i = acks.length - 11; i >= 0; i--) acks[i]!()
      acks.splice(0, acks.length - 10)
    }
    for (const ack of acks) ack()
    expect(sent).toHaveLength(5000)
    expect(sent.every((id, i) => id === i % 65535)).toBe(true)
  })
})

describe('topic filters', () => {
  it('accepts wildcards and $share filters and explains bad ones', () => {
    for (const ok of ['msh/#', 'msh/US/2/e/+/+', '#', '+', 'msh/+/2/map/', '$share/g/msh/US/#']) {
      expect(topicFilterError(ok)).toBeUndefined()
    }
    expect(topicFilterError('')).toMatch(/empty/)
    expect(topicFilterError('msh/#/x')).toMatch(/"#" must be the last level/)
    expect(topicFilterError('msh/US#')).toMatch(/"#"/)
    expect(topicFilterError('msh/U+S')).toMatch(/"\+" must occupy a whole level/)
    expect(topicFilterError('$share/g')).toMatch(/needs a group and a filter/)
    expect(topicFilterError('$share//msh/#')).toMatch(/needs a group/)
    expect(topicFilterError('$share/g+/msh/#')).toMatch(/share group/)
  })

  it('rewrites every topic for a share group', () => {
    expect(shareTopics(['msh/US/#', 'msh/EU_868/2/e/+/+'], 'collectors')).toEqual([
      '$share/collectors/msh/US/#',
      '$share/collectors/msh/EU_868/2/e/+/+',
    ])
    expect(shareTopics(['a'], undefined)).toEqual(['a'])
  })
})

describe('option validation', () => {
  const broker = { url: 'mqtt://localhost', topics: ['msh/US/#'] }
  const resolve = (o: Partial<MqttSourceOptions> & Record<string, unknown>) =>
    resolveMqttSourceOptions({ brokers: [broker], ...o } as MqttSourceOptions)
  const withBroker = (b: Record<string, unknown>) =>
    resolveMqttSourceOptions({ brokers: [{ ...broker, ...b }] } as MqttSourceOptions)

  it('fills in the defaults', () => {
    const r = resolve({})
    expect(r.name).toBe('mqtt')
    expect(r.reconnect).toEqual({ initialDelayMs: 1000, maxDelayMs: 30000, jitter: 0.5 })
    expect(r.connectTimeoutMs).toBe(10000)
    expect(r.brokers[0]).toMatchObject({
      endpoint: 'mqtt://localhost',
      qos: 0,
      protocolVersion: 4,
      persistentSession: false,
      ackMode: 'auto',
      sessionExpirySec: 86400,
      topics: ['msh/US/#'],
    })
    expect(r.brokers[0]!.clientId).toMatch(/^meshtap-[0-9a-f]{8}$/)
    expect(randomClientId()).not.toBe(randomClientId())
  })

  it('defaults ackMode to deferred only for qos 1 with a persistent session', () => {
    expect(withBroker({ qos: 1 }).brokers[0]!.ackMode).toBe('auto')
    expect(
      withBroker({ qos: 1, persistentSession: true, clientId: 'c1' }).brokers[0]!.ackMode,
    ).toBe('deferred')
    expect(
      resolve({ ackMode: 'deferred', brokers: [{ ...broker, qos: 1 }] }).brokers[0]!.ackMode,
    ).toBe('deferred')
  })

  it('rewrites topics for shareGroup with MQTT 5', () => {
    const r = withBroker({ shareGroup: 'g1', protocolVersion: 5 })
    expect(r.brokers[0]!.topics).toEqual(['$share/g1/msh/US/#'])
  })

  it('rejects bad options with errors that say what to do', () => {
    expect(() => resolveMqttSourceOptions({ brokers: [] })).toThrow(/at least one broker/)
    expect(() => withBroker({ url: 'http://x' })).toThrow(
      /mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\//,
    )
    expect(() => withBroker({ url: 'not a url' })).toThrow(/not a URL/)
    expect(() => withBroker({ topics: [] })).toThrow(/topics must list at least one/)
    expect(() => withBroker({ topics: ['msh/#/x'] })).toThrow(/brokers\[0\]\.topics: "msh\/#\/x"/)
    expect(() => withBroker({ qos: 2 })).toThrow(/qos must be 0 or 1/)
    expect(() => withBroker({ protocolVersion: 3 })).toThrow(/protocolVersion must be 4/)
    expect(() => withBroker({ shareGroup: 'g' })).toThrow(
      /shareGroup needs MQTT 5: set protocolVersion: 5/,
    )
    expect(() => withBroker({ shareGroup: 'a/b', protocolVersion: 5 })).toThrow(/without "\/"/)
    expect(() =>
      withBroker({ shareGroup: 'g', protocolVersion: 5, topics: ['$share/h/x'] }),
    ).toThrow(/already shared/)
    expect(() => withBroker({ persistentSession: true })).toThrow(
      /persistentSession needs a fixed clientId/,
    )
    expect(() => resolve({ ackMode: 'deferred' })).toThrow(/"deferred" needs qos: 1/)
    expect(() => resolve({ ackMode: 'later' as 'auto' })).toThrow(/ackMode must be/)
    expect(() => resolve({ reconnect: { initialDelayMs: 0 } })).toThrow(
      /initialDelayMs must be a positive/,
    )
    expect(() => resolve({ reconnect: { jitter: 2 } })).toThrow(/jitter must be between 0 and 1/)
    expect(() => resolve({ reconnect: { initialDelayMs: 5000, maxDelayMs: 1000 } })).toThrow(
      /maxDelayMs \(1000\) must not be less/,
    )
    expect(() => resolve({ connectTimeoutMs: -1 })).toThrow(/connectTimeoutMs/)
    expect(() =>
      resolveMqttSourceOptions({
        brokers: [
          { ...broker, clientId: 'same' },
          { ...broker, clientId: 'same' },
        ],
      }),
    ).toThrow(/already used by brokers\[0\].*kick each other off/)
    expect(() => createMqttSource({ brokers: [{ ...broker, qos: 2 as 1 }] })).toThrow(TypeError)
  })

  it('never shows credentials in errors or endpoints', () => {
    expect(redactUrl('mqtt://meshdev:large4cats@mqtt.meshtastic.org')).toBe(
      'mqtt://mqtt.meshtastic.org',
    )
    expect(redactUrl('wss://u:p@host:8884/mqtt?token=secret')).toBe('wss://host:8884/mqtt')
    expect(() => withBroker({ url: 'http://user:hunter2@host' })).toThrow(/"http:\/\/host"/)
    expect(() => withBroker({ url: 'http://user:hunter2@host' })).not.toThrow(/hunter2/)
    expect(withBroker({ url: 'mqtt://u:secret@h:1884' }).brokers[0]!.endpoint).toBe('mqtt://h:1884')
  })
})

describe('createMqttSource without a broker', () => {
  it('reports connecting → reconnecting with backoff and no password, and stops cleanly', async () => {
    // A port that refuses connections.
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as { port: number }
    await new Promise<void>((r) => server.close(() => r()))

    const source = createMqttSource({
      name: 'test',
      brokers: [{ url: `mqtt://user:s3cr3t@127.0.0.1:${port}`, password: 'pw-123', topics: ['t'] }],
      reconnect: { initialDelayMs: 20, maxDelayMs: 80, jitter: 0 },
    })
    expect(source.status().state).toBe('idle')
    const statuses: MqttSourceStatus[] = []
    const off = source.onStatus((s) => statuses.push(s))
    await source.start(() => {})
    await expect(source.start(() => {})).rejects.toThrow(/already started/)
    while (statuses.filter((s) => s.state === 'reconnecting').length < 4) {
      await new Promise((r) => setTimeout(r, 10))
    }
    await source.stop()
    await source.stop()
    off()
    const states = statuses.map((s) => s.state)
    expect(states.slice(0, 4)).toEqual(['connecting', 'reconnecting', 'connecting', 'reconnecting'])
    expect(states.at(-1)).toBe('closed')
    const retries = statuses.filter((s) => s.state === 'reconnecting').map((s) => s.retryInMs)
    expect(retries.slice(0, 4)).toEqual([20, 40, 80, 80])
    const reconnecting = statuses.find((s) => s.state === 'reconnecting')!
    expect(reconnecting).toMatchObject({
      source: 'test',
      endpoint: `mqtt://127.0.0.1:${port}`,
      error: expect.stringMatching(/ECONNREFUSED/),
    })
    expect(JSON.stringify(statuses)).not.toMatch(/s3cr3t|pw-123/)
    expect(JSON.stringify(source.stats())).not.toMatch(/s3cr3t|pw-123/)
    expect(source.status().state).toBe('closed')
    expect(source.stats()).toMatchObject({ received: 0, reconnects: 0 })
  })
})
