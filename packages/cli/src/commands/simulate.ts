import { randomUUID } from 'node:crypto'
import { type FileHandle, open } from 'node:fs/promises'
import type { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import {
  type ChannelKeyInput,
  createChannelKey,
  createMeshSimulator,
  type MeshSimulatorOptions,
  parseChannelKeySpec,
  type SimulatedMessage,
} from '@meshtap/core'
import { portnumName, toCaptureLine } from '@meshtap/protocol'
import { connect, type IClientOptions, type MqttClient } from 'mqtt'
import type { CliIo } from '../cli.js'

/**
 * The help text of `meshtap simulate` (printed by `--help` and with usage errors).
 *
 * @example
 * process.stdout.write(`${SIMULATE_USAGE}\n`)
 */
export const SIMULATE_USAGE = `Usage: meshtap simulate (--url URL | --out FILE) [options]

Publishes a simulated Meshtastic mesh: envelopes exactly as gateways publish them (several copies
of each packet, traceroutes altered per gateway, map reports, PKI direct messages), from a seeded,
deterministic simulation. Prints one JSON line when done:
  {"published":…,"packets":…,"durationMs":…,"rate":…,"byPort":{…}}

Options:
  --url URL               MQTT broker to publish to (mqtt://, mqtts://, ws://, wss://)
  --out FILE              write a capture file (NDJSON lines {topic, payload, receivedAt}), instead
                          of or as well as publishing
  --root ROOT             topic root (default msh/US)
  --nodes N               simulated nodes, gateways included (default 50)
  --gateways G            how many of them are gateways (default 5)
  --count C               envelopes to publish (default 1000; with --duration-ms: no limit)
  --duration-ms D         stop after D ms of wall time (with --count: whichever comes first)
  --rate R                envelopes per second of wall time, 0 = as fast as possible
                          (default 10 with --url, 0 with only --out)
  --seed S                simulation seed: the same seed gives the same traffic (default 1)
  --qos 0|1               MQTT QoS of the publishes (default 0)
  --key NAME=PSK          a channel the nodes use besides LongFast, PSK in base64 (repeatable)
  --start-time T          virtual start time, ISO 8601 or Unix ms (default: now with --url,
                          2026-01-01T00:00:00Z with only --out, so captures are reproducible)
  --username U            broker user name
  --password P            broker password
  --connect-timeout-ms T  give up when the broker does not accept the connection, or a lost
                          connection does not come back, within T ms (default 10000)
  -h, --help              show this help`

/**
 * The JSON line `meshtap simulate` prints when it succeeds.
 *
 * @example
 * // {"published":1000,"packets":333,"durationMs":99874,"rate":10,"byPort":{"POSITION_APP":281,…}}
 * const summary: SimulateSummary = JSON.parse(stdoutLine)
 */
export interface SimulateSummary {
  /** Envelopes published (and/or written). */
  published: number
  /** Distinct logical packets among them. */
  packets: number
  /** Wall time from the first publish until the last was written or acknowledged. */
  durationMs: number
  /** Envelopes per second achieved. */
  rate: number
  /** Envelopes by port name; PKI direct messages count as `PKI`. */
  byPort: Record<string, number>
}

class SimulateUsageError extends Error {
  override readonly name = 'SimulateUsageError'
}

interface Settings {
  url?: string
  out?: string
  count: number
  durationMs?: number
  rate: number
  qos: 0 | 1
  connectTimeoutMs: number
  username?: string
  password?: string
  simulator: MeshSimulatorOptions
}

const DEFAULT_CHANNEL: ChannelKeyInput = { name: 'LongFast', psk: 'AQ==' }

function integer(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (text.trim() === '' || !Number.isInteger(n) || n < min) {
    throw new SimulateUsageError(`--${name} must be an integer ≥ ${min}, not "${text}"`)
  }
  return n
}

function parseStartTime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const n = /^-?\d+$/.test(text) ? Number(text) : Date.parse(text)
  if (!Number.isFinite(n)) {
    throw new SimulateUsageError(
      `--start-time must be an ISO 8601 date or Unix milliseconds, not "${text}"`,
    )
  }
  return n
}

function parseChannels(specs: readonly string[] | undefined): ChannelKeyInput[] {
  const channels: ChannelKeyInput[] = [DEFAULT_CHANNEL]
  for (const spec of specs ?? []) {
    let key: ChannelKeyInput
    try {
      key = parseChannelKeySpec(spec)
      createChannelKey(key)
    } catch (e) {
      throw new SimulateUsageError(`--key: ${(e as Error).message}`)
    }
    if (/[/#+]/.test(key.name) || key.name === 'PKI') {
      throw new SimulateUsageError(
        `--key: "${key.name}" cannot be used as a channel name in a topic`,
      )
    }
    // A key for LongFast replaces the default one; other names are added.
    if (key.name === DEFAULT_CHANNEL.name) channels[0] = key
    else channels.push(key)
  }
  return channels
}

function parseSettings(args: string[]): Settings | 'help' {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: 'string' },
      out: { type: 'string' },
      root: { type: 'string' },
      nodes: { type: 'string' },
      gateways: { type: 'string' },
      count: { type: 'string' },
      'duration-ms': { type: 'string' },
      rate: { type: 'string' },
      seed: { type: 'string' },
      qos: { type: 'string' },
      key: { type: 'string', multiple: true },
      'start-time': { type: 'string' },
      username: { type: 'string' },
      password: { type: 'string' },
      'connect-timeout-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help) return 'help'
  const { url, out } = values
  if (url === undefined && out === undefined) {
    throw new SimulateUsageError(
      'give --url (a broker to publish to) and/or --out (a capture file)',
    )
  }
  if (url !== undefined) {
    let protocol: string
    try {
      protocol = new URL(url).protocol
    } catch {
      throw new SimulateUsageError(`--url "${url}" is not a URL (e.g. mqtt://127.0.0.1:1883)`)
    }
    if (!['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'tls:', 'ws:', 'wss:'].includes(protocol)) {
      throw new SimulateUsageError(`--url must be an mqtt://, mqtts://, ws:// or wss:// URL`)
    }
  }
  if (values.qos !== undefined && values.qos !== '0' && values.qos !== '1') {
    throw new SimulateUsageError(`--qos must be 0 or 1, not "${values.qos}"`)
  }
  let rate = url !== undefined ? 10 : 0
  if (values.rate !== undefined) {
    rate = Number(values.rate)
    if (values.rate.trim() === '' || !Number.isFinite(rate) || rate < 0) {
      throw new SimulateUsageError(`--rate must be a number ≥ 0, not "${values.rate}"`)
    }
  }
  const durationMs = integer('duration-ms', values['duration-ms'], 1)
  const count =
    integer('count', values.count, 0) ??
    (durationMs !== undefined ? Number.POSITIVE_INFINITY : 1000)
  const nodes = integer('nodes', values.nodes, 1)
  const gateways = integer('gateways', values.gateways, 1)
  const seed = values.seed === undefined ? undefined : Number(values.seed)
  if (seed !== undefined && (values.seed?.trim() === '' || !Number.isFinite(seed))) {
    throw new SimulateUsageError(`--seed must be a number, not "${values.seed}"`)
  }
  const root = values.root?.replace(/\/+$/, '')
  if (root !== undefined && (root === '' || /[#+]/.test(root) || root.startsWith('/'))) {
    throw new SimulateUsageError(`--root must be a topic prefix like msh/US, not "${values.root}"`)
  }
  const startTime =
    parseStartTime(values['start-time']) ?? (url !== undefined ? Date.now() : undefined)
  const gatewayCount = gateways ?? Math.min(5, nodes ?? 50)
  const meanCopies = Math.min(3, gatewayCount)
  const simulator: MeshSimulatorOptions = {
    channels: parseChannels(values.key),
    ...(seed !== undefined ? { seed } : {}),
    ...(nodes !== undefined ? { nodes } : {}),
    ...(gateways !== undefined || nodes !== undefined ? { gateways: gatewayCount } : {}),
    ...(root !== undefined ? { root } : {}),
    ...(startTime !== undefined ? { startTime } : {}),
    // Paced runs: virtual time follows wall time (envelopes/s ÷ copies per packet = packets/s).
    ...(rate > 0 ? { virtualRate: rate / meanCopies } : {}),
  }
  return {
    ...(url !== undefined ? { url } : {}),
    ...(out !== undefined ? { out } : {}),
    count,
    ...(durationMs !== undefined ? { durationMs } : {}),
    rate,
    qos: values.qos === '1' ? 1 : 0,
    connectTimeoutMs: integer('connect-timeout-ms', values['connect-timeout-ms'], 1) ?? 10_000,
    ...(values.username !== undefined ? { username: values.username } : {}),
    ...(values.password !== undefined ? { password: values.password } : {}),
    simulator,
  }
}

/** A connected client plus the state of its connection while publishing. */
interface Broker {
  readonly client: MqttClient
  /** Set when the connection failed for good (lost longer than the timeout). */
  readonly failure: () => Error | undefined
  /** Resolves when `failure()` becomes set. */
  readonly failed: Promise<void>
  /** Stops watching the connection (call before ending the client). */
  dispose(): void
}

function connectBroker(s: Settings & { url: string }): Promise<Broker> {
  const options: IClientOptions = {
    clientId: `meshtap-simulate-${randomUUID().slice(0, 8)}`,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: s.connectTimeoutMs,
    ...(s.username !== undefined ? { username: s.username } : {}),
    ...(s.password !== undefined ? { password: s.password } : {}),
  }
  const client = connect(s.url, options)
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined
    let failure: Error | undefined
    let onFailure: () => void = () => {}
    const failed = new Promise<void>((r) => {
      onFailure = r
    })
    let connected = false
    let disposed = false
    let lostTimer: NodeJS.Timeout | undefined
    const giveUp = setTimeout(() => {
      client.end(true)
      reject(
        new Error(
          `could not connect to ${s.url} within ${s.connectTimeoutMs} ms${
            lastError ? ` (${lastError.message})` : ''
          }`,
        ),
      )
    }, s.connectTimeoutMs)
    client.on('error', (e) => {
      lastError = e
      if (!connected) {
        clearTimeout(giveUp)
        client.end(true)
        reject(new Error(`could not connect to ${s.url}: ${e.message}`, { cause: e }))
      }
    })
    client.on('connect', () => {
      if (lostTimer) clearTimeout(lostTimer)
      lostTimer = undefined
      if (connected) return
      connected = true
      clearTimeout(giveUp)
      resolve({
        client,
        failure: () => failure,
        failed,
        dispose() {
          disposed = true
          if (lostTimer) clearTimeout(lostTimer)
          lostTimer = undefined
        },
      })
    })
    client.on('close', () => {
      if (!connected || disposed || lostTimer || client.disconnecting) return
      lostTimer = setTimeout(() => {
        failure = new Error(
          `lost the connection to ${s.url} and could not reconnect within ${s.connectTimeoutMs} ms${
            lastError ? ` (${lastError.message})` : ''
          }`,
        )
        onFailure()
      }, s.connectTimeoutMs)
    })
  })
}

function endClient(client: MqttClient, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.end(true)
      resolve()
    }, timeoutMs)
    client.end(false, {}, () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** Writes lines with backpressure: batches them and waits for `drain` when the stream is full. */
function lineWriter(stream: Writable): {
  write(line: string): Promise<void> | undefined
  flush(): Promise<void>
} {
  let buffer = ''
  const flush = async (): Promise<void> => {
    if (buffer === '') return
    const chunk = buffer
    buffer = ''
    if (!stream.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onError = (e: Error) => reject(e)
        stream.once('error', onError)
        stream.once('drain', () => {
          stream.off('error', onError)
          resolve()
        })
      })
    }
  }
  return {
    write(line) {
      buffer += `${line}\n`
      return buffer.length >= 65_536 ? flush() : undefined
    },
    flush,
  }
}

async function openOut(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'w')
  } catch (e) {
    throw new Error(`cannot write --out ${path}: ${(e as Error).message}`, { cause: e })
  }
}

async function simulate(s: Settings): Promise<SimulateSummary> {
  const sim = createMeshSimulator(s.simulator)
  const file = s.out !== undefined ? await openOut(s.out) : undefined
  const fileStream = file?.createWriteStream()
  let fileError: Error | undefined
  fileStream?.on('error', (e) => {
    fileError = e
  })
  const lines = fileStream ? lineWriter(fileStream) : undefined
  let broker: Broker | undefined
  try {
    broker = s.url !== undefined ? await connectBroker({ ...s, url: s.url }) : undefined
  } catch (e) {
    fileStream?.destroy()
    await file?.close().catch(() => {})
    throw e
  }
  const client = broker?.client
  const maxInflight = s.qos === 1 ? 1000 : 500
  let inflight = 0
  let publishError: Error | undefined
  let wake: (() => void) | undefined
  const released = () => {
    const w = wake
    wake = undefined
    w?.()
  }
  const waitForSlot = (limit: number): Promise<void> =>
    new Promise<void>((resolve) => {
      wake = resolve
      if (inflight < limit) released()
    })
  void broker?.failed.then(released)
  const failure = (): Error | undefined => publishError ?? broker?.failure() ?? fileError

  let queue: SimulatedMessage[] = []
  let queued = 0
  let published = 0
  let packets = 0
  const byPort: Record<string, number> = {}
  const t0 = performance.now()
  const deadline = s.durationMs !== undefined ? t0 + s.durationMs : Number.POSITIVE_INFINITY

  for (let i = 0; i < s.count; i++) {
    if (s.rate > 0) {
      const due = t0 + (i * 1000) / s.rate
      if (due >= deadline) break
      const wait = due - performance.now()
      if (wait >= 1) {
        await lines?.flush()
        await sleep(wait)
      }
    } else if ((i & 1023) === 1023) {
      // As fast as possible, but let sockets and timers run.
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    if (performance.now() >= deadline || failure()) break
    if (queued >= queue.length) {
      queue = sim.next()
      queued = 0
    }
    const m = queue[queued++] as SimulatedMessage
    const pending = lines?.write(toCaptureLine(m))
    if (pending) await pending
    if (client) {
      if (inflight >= maxInflight) await waitForSlot(maxInflight)
      if (failure()) break
      inflight++
      // mqtt.js types the payload as Buffer; it writes any Uint8Array.
      client.publish(
        m.topic,
        m.payload as Parameters<MqttClient['publish']>[1],
        { qos: s.qos },
        (e) => {
          inflight--
          if (e && !publishError) publishError = e
          if (inflight < maxInflight) released()
        },
      )
    }
    published++
    if (m.copy === 0) packets++
    const port = m.pki ? 'PKI' : (portnumName(m.portnum) ?? String(m.portnum))
    byPort[port] = (byPort[port] ?? 0) + 1
  }

  // Wait for every publish to be written (QoS 0) or acknowledged (QoS 1), then for the file.
  while (client && inflight > 0 && !failure()) await waitForSlot(1)
  await lines?.flush()
  if (fileStream) {
    await new Promise<void>((resolve) => fileStream.end(resolve))
  }
  const durationMs = Math.round(performance.now() - t0)
  const error = failure()
  broker?.dispose()
  if (client) await endClient(client, error ? 0 : s.connectTimeoutMs)
  if (error) {
    throw new Error(`${error.message} (after ${published} envelopes)`, { cause: error })
  }
  return {
    published,
    packets,
    durationMs,
    rate: Math.round((published / Math.max(durationMs, 1)) * 10_000) / 10,
    byPort,
  }
}

/**
 * Runs `meshtap simulate` with its arguments (after the command name): publishes a simulated mesh
 * to an MQTT broker and/or writes it to a capture file, then prints one JSON summary line
 * ({@link SimulateSummary}) on stdout. Resolves to the exit code: 0 on success, 2 on bad usage
 * (message and help on stderr), 1 when the broker cannot be reached or the file cannot be written.
 *
 * Publishing as fast as possible keeps at most 500 (QoS 0) or 1,000 (QoS 1) publishes outstanding
 * and waits for the socket; a paced run schedules envelope `i` at `start + i / rate`, so the rate
 * holds over time whatever the timer jitter.
 *
 * @example
 * // meshtap simulate --url mqtt://127.0.0.1:1883 --rate 0 --count 100000 --qos 1
 * const code = await runSimulate(['--out', 'capture.ndjson', '--count', '5000'], {
 *   stdin: process.stdin,
 *   stdout: process.stdout,
 *   stderr: process.stderr,
 * })
 */
export async function runSimulate(args: string[], io: CliIo): Promise<number> {
  let settings: Settings | 'help'
  try {
    settings = parseSettings(args)
    if (settings !== 'help') createMeshSimulator(settings.simulator) // validates the options
  } catch (e) {
    const error = e as Error & { code?: string }
    if (
      e instanceof SimulateUsageError ||
      e instanceof RangeError ||
      error.code?.startsWith('ERR_PARSE_ARGS')
    ) {
      const message = error.message.replace(/^createMeshSimulator: /, '')
      io.stderr.write(`meshtap simulate: ${message}\n\n${SIMULATE_USAGE}\n`)
      return 2
    }
    throw e
  }
  if (settings === 'help') {
    io.stdout.write(`${SIMULATE_USAGE}\n`)
    return 0
  }
  try {
    const summary = await simulate(settings)
    io.stdout.write(`${JSON.stringify(summary)}\n`)
    return 0
  } catch (e) {
    io.stderr.write(`meshtap simulate: ${(e as Error).message}\n`)
    return 1
  }
}
