import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { createCodec, createReplaySource, encodeEnvelope } from '@meshtap/core'
import { startAedes } from '@meshtap/core/testing'
import { bytesToBase64, PortNum, type RawMessage } from '@meshtap/protocol'
import { connectAsync, type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CliIo } from '../src/cli.js'
import { runTail } from '../src/commands/tail.js'
import { toDecodeLine } from '../src/format.js'

type TestBroker = Awaited<ReturnType<typeof startAedes>>

let broker: TestBroker
let pub: MqttClient
let dir: string

beforeAll(async () => {
  broker = await startAedes()
  pub = await connectAsync(broker.url, { reconnectPeriod: 0 })
  dir = await mkdtemp(join(tmpdir(), 'meshtap-tail-'))
})
afterAll(async () => {
  await pub.endAsync()
  await broker.close()
  await rm(dir, { recursive: true, force: true })
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const rnd = () => Math.random().toString(16).slice(2, 10)

function fakeIo() {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const out = { stdout: '', stderr: '' }
  stdout.on('data', (d) => {
    out.stdout += d
  })
  stderr.on('data', (d) => {
    out.stderr += d
  })
  const io: CliIo = { stdin: new PassThrough(), stdout, stderr }
  return { io, out }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

const secret = { name: 'Private', psk: bytesToBase64(new Uint8Array(16).fill(0x42)) }

/** Three envelopes: a text, a position, and one on a channel tail has no key for. */
function traffic(root: string) {
  const gw = '!a0c0ffee'
  return [
    {
      topic: `${root}/2/e/LongFast/${gw}`,
      payload: encodeEnvelope({
        from: 0x1234abcd,
        id: 1,
        portnum: PortNum.TEXT_MESSAGE_APP,
        payload: 'hello mesh',
        gatewayId: gw,
        rxSnr: 6.25,
        rxRssi: -92,
        hopStart: 3,
        hopLimit: 3,
      }),
    },
    {
      topic: `${root}/2/e/LongFast/${gw}`,
      payload: encodeEnvelope({
        from: 0x1f2e3d4c,
        id: 2,
        portnum: PortNum.POSITION_APP,
        payload: { latitudeI: 377749000, longitudeI: -1224194000, precisionBits: 32 },
        gatewayId: gw,
      }),
    },
    {
      topic: `${root}/2/e/Private/${gw}`,
      payload: encodeEnvelope({
        from: 0x1234abcd,
        id: 3,
        portnum: PortNum.TEXT_MESSAGE_APP,
        payload: 'secret',
        gatewayId: gw,
        channel: secret,
      }),
    },
  ]
}

async function tailWhilePublishing(args: string[], root: string) {
  const { io, out } = fakeIo()
  const code = runTail(['--url', broker.url, '--topic', `${root}/#`, ...args], io)
  await waitFor('connected', () => out.stderr.includes('connected to'))
  await pub.publishAsync(`${root}-other/2/e/LongFast/!a0c0ffee`, 'not for us')
  for (const m of traffic(root)) await pub.publishAsync(m.topic, m.payload as never)
  return { code: await code, out }
}

describe('meshtap tail (runTail in-process, against aedes)', () => {
  it('prints one readable line per message and stops after --count', async () => {
    const root = `msh/T${rnd()}`
    const { code, out } = await tailWhilePublishing(['--count', '3'], root)
    expect(code).toBe(0)
    const lines = out.stdout.trimEnd().split('\n')
    expect(lines).toEqual([
      '✓ !1234abcd → all  TEXT_MESSAGE_APP  text "hello mesh"  via !a0c0ffee snr 6.25 rssi -92 direct',
      expect.stringMatching(/^✓ !1f2e3d4c → all {2}POSITION_APP {2}position 37\.7749, -122\.4194/),
      expect.stringMatching(/^✗ !1234abcd NO_MATCHING_KEY: .* via !a0c0ffee$/),
    ])
    expect(out.stderr).toContain(`connecting to ${broker.url}`)
    expect(out.stderr).toContain(`connected to ${broker.url} (${root}/#)`)
    expect(out.stderr).toContain('stopped (3 messages) after 3 messages')
  })

  it('prints the decode NDJSON with --json, decrypts with --key, and writes a replayable --raw-out', async () => {
    const root = `msh/T${rnd()}`
    const file = join(dir, 'raw.ndjson')
    const { code, out } = await tailWhilePublishing(
      [
        '--json',
        '--count',
        '3',
        '--raw-out',
        file,
        '--key',
        `${secret.name}=${secret.psk}`,
        '--qos',
        '1',
      ],
      root,
    )
    expect(code).toBe(0)
    const sent = traffic(root)
    const codec = createCodec({ keys: [secret], includeRaw: true })
    const lines = out.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines).toEqual(sent.map((m) => toDecodeLine(codec.decode(m))))
    expect(lines[2]).toMatchObject({
      ok: true,
      packet: { keyName: 'Private', payload: { text: 'secret' } },
    })

    // The capture file replays to the same raw messages.
    const replayed: RawMessage[] = []
    const replay = createReplaySource({ file, timestamps: 'recorded' })
    await replay.start((m) => {
      replayed.push(m)
    })
    expect(await replay.done).toMatchObject({ delivered: 3, invalid: 0 })
    expect(replayed.map((m) => m.topic)).toEqual(sent.map((m) => m.topic))
    expect(replayed.map((m) => [...m.payload])).toEqual(sent.map((m) => [...m.payload]))
    for (const m of replayed) expect(Math.abs(m.receivedAt! - Date.now())).toBeLessThan(10_000)
    expect((await readFile(file, 'utf8')).trimEnd().split('\n')).toHaveLength(3)
  })

  it('exits 0 after --idle-exit-ms without messages', async () => {
    const { io, out } = fakeIo()
    const start = Date.now()
    const code = await runTail(
      ['--url', broker.url, '--topic', `msh/T${rnd()}/#`, '--idle-exit-ms', '300'],
      io,
    )
    expect(code).toBe(0)
    expect(Date.now() - start).toBeGreaterThanOrEqual(290)
    expect(out.stdout).toBe('')
    expect(out.stderr).toContain('stopped (no message for 300 ms) after 0 messages')
  })

  it('stops cleanly on a signal and flushes --raw-out', async () => {
    const root = `msh/T${rnd()}`
    const file = join(dir, 'signal.ndjson')
    const { io, out } = fakeIo()
    const controller = new AbortController()
    const code = runTail(['--url', broker.url, '--topic', `${root}/#`, '--raw-out', file], io, {
      signal: controller.signal,
    })
    await waitFor('connected', () => out.stderr.includes('connected to'))
    for (const m of traffic(root)) await pub.publishAsync(m.topic, m.payload as never)
    await waitFor('3 lines', () => out.stdout.split('\n').length > 3)
    controller.abort()
    expect(await code).toBe(0)
    expect((await readFile(file, 'utf8')).trimEnd().split('\n')).toHaveLength(3)
    expect(out.stderr).toContain('stopped (stopped) after 3 messages')
  })

  it('stops on SIGINT', async () => {
    const { io, out } = fakeIo()
    const code = runTail(['--url', broker.url, '--topic', `msh/T${rnd()}/#`], io)
    await waitFor('connected', () => out.stderr.includes('connected to'))
    process.emit('SIGINT')
    expect(await code).toBe(0)
    expect(out.stderr).toContain('stopped (interrupted)')
    expect(process.listenerCount('SIGINT')).toBe(0)
  })

  it('reports reconnecting on stderr when the broker is down', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as { port: number }
    await new Promise<void>((r) => server.close(() => r()))
    const { io, out } = fakeIo()
    const code = await runTail(
      [
        '--url',
        `mqtt://127.0.0.1:${port}`,
        '--topic',
        'msh/#',
        '--idle-exit-ms',
        '200',
        '--password',
        'hunter2',
        '--username',
        'u',
      ],
      io,
    )
    expect(code).toBe(0)
    expect(out.stderr).toMatch(/reconnecting in [01]\.\d s: .*ECONNREFUSED/)
    expect(out.stderr).not.toContain('hunter2')
  })

  it('rejects bad usage with exit code 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--topic', 'msh/#'], /--url is required/],
      [['--url', 'mqtt://x'], /at least one --topic/],
      [['--url', 'mqtt://x', '--topic', 'msh/#', '--qos', '2'], /--qos must be 0 or 1/],
      [
        ['--url', 'mqtt://x', '--topic', 'msh/#', '--count', '0'],
        /--count must be a positive integer/,
      ],
      [
        ['--url', 'mqtt://x', '--topic', 'msh/#/US'],
        /--topics: "msh\/#\/US": "#" must be the last level/,
      ],
      [['--url', 'http://x', '--topic', 'msh/#'], /--url must start with mqtt:\/\//],
      [['--url', 'mqtt://x', '--topic', 'msh/#', '--key', 'nope'], /--key/],
      [['--url', 'mqtt://x', '--topic', 'msh/#', '--bogus'], /bogus/],
    ]
    for (const [args, message] of cases) {
      const { io, out } = fakeIo()
      expect(await runTail(args, io)).toBe(2)
      expect(out.stderr).toMatch(message)
      expect(out.stderr).toContain('Usage: meshtap tail')
    }
    const { io, out } = fakeIo()
    expect(await runTail(['--help'], io)).toBe(0)
    expect(out.stdout).toContain('--idle-exit-ms')
  })

  it('fails with exit code 1 when the --raw-out file cannot be opened', async () => {
    const { io, out } = fakeIo()
    const code = await runTail(
      ['--url', broker.url, '--topic', 'msh/#', '--raw-out', join(dir, 'no/such/dir/x.ndjson')],
      io,
    )
    expect(code).toBe(1)
    expect(out.stderr).toMatch(/cannot open --raw-out file: .*ENOENT/)
  })
})
