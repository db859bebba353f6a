import { createWriteStream, type WriteStream } from 'node:fs'
import { parseArgs } from 'node:util'
import {
  type ChannelKeyInput,
  createChannelKey,
  createCodec,
  parseChannelKeySpec,
} from '@meshtap/core'
import { createMqttSource, type MqttSource, type MqttSourceStatus } from '@meshtap/core/mqtt'
import { type RawMessage, toCaptureLine } from '@meshtap/protocol'
import type { CliIo } from '../cli.js'
import { describeResult } from '../describe.js'
import { toDecodeLine } from '../format.js'

/** The usage text of `meshtap tail`. */
export const TAIL_USAGE = `Usage: meshtap tail --url URL --topic FILTER [--topic FILTER…] [options]

Subscribes to an MQTT broker and prints every Meshtastic message as it arrives, decoded:
one readable line per message, or with --json the NDJSON objects of "meshtap decode".
Status changes (connected, reconnecting…) go to stderr. Ctrl-C stops it cleanly.

Options:
  --url URL            mqtt://, mqtts://, ws:// or wss:// broker URL
  --topic FILTER       topic filter, repeatable (e.g. msh/US/#)
  --key NAME=PSK       a channel key, PSK in base64 (repeatable; LongFast=AQ== is built in)
  --json               print the NDJSON decode objects instead of readable lines
  --raw-out FILE       also append every raw message to FILE as a capture line (replayable)
  --username USER      broker user name
  --password PASS      broker password
  --qos 0|1            subscription QoS (default 0)
  --count N            exit after N messages
  --idle-exit-ms MS    exit after MS milliseconds without a message

Example (the public Meshtastic broker; it refuses msh/#, use a region):
  meshtap tail --url mqtt://mqtt.meshtastic.org --username meshdev --password large4cats --topic 'msh/US/#'`

/** Options `runTail` takes besides its arguments (for embedding and tests). */
export interface TailRunOptions {
  /** Stops the tail like SIGINT does. */
  signal?: AbortSignal
}

class TailUsageError extends Error {}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0) {
    throw new TailUsageError(`${flag} must be a positive integer, not "${value}"`)
  }
  return n
}

function parseKeys(specs: string[] | undefined): ChannelKeyInput[] {
  return (specs ?? []).map((spec) => {
    try {
      const key = parseChannelKeySpec(spec)
      createChannelKey(key)
      return key
    } catch (e) {
      throw new TailUsageError(`--key: ${(e as Error).message}`)
    }
  })
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

function statusLine(s: MqttSourceStatus, topics: string[]): string | undefined {
  switch (s.state) {
    case 'connecting':
      return s.attempt ? undefined : `connecting to ${s.endpoint} …`
    case 'connected':
      return `connected to ${s.endpoint} (${topics.join(', ')})${s.error ? `, but ${s.error}` : ''}`
    case 'reconnecting':
      return `reconnecting in ${seconds(s.retryInMs ?? 0)}: ${s.error ?? 'connection lost'}`
    case 'offline':
      return `refused by ${s.endpoint}: ${s.error ?? 'unknown reason'}; retrying in ${seconds(s.retryInMs ?? 0)}`
    default:
      return undefined
  }
}

function openAppend(file: string): Promise<WriteStream> {
  return new Promise((resolve, reject) => {
    const stream = createWriteStream(file, { flags: 'a' })
    stream.once('open', () => {
      stream.off('error', reject)
      resolve(stream)
    })
    stream.once('error', reject)
  })
}

function closeStream(stream: WriteStream): Promise<void> {
  return new Promise((resolve) => {
    stream.once('error', () => resolve())
    stream.end(() => resolve())
  })
}

/**
 * Runs `meshtap tail` with its arguments (without `tail`). Resolves to the exit code: 0 after a
 * clean stop (`--count`, `--idle-exit-ms`, SIGINT, SIGTERM or `options.signal`), 2 on bad usage,
 * 1 when the `--raw-out` file cannot be opened. The broker being down is not an error: the tail
 * keeps reconnecting and says so on stderr.
 *
 * @example
 * // meshtap tail --url mqtt://localhost --topic 'msh/#' --json --count 10
 * const code = await runTail(['--url', 'mqtt://localhost', '--topic', 'msh/#', '--json', '--count', '10'], {
 *   stdin: process.stdin,
 *   stdout: process.stdout,
 *   stderr: process.stderr,
 * })
 */
export async function runTail(
  args: string[],
  io: CliIo,
  options: TailRunOptions = {},
): Promise<number> {
  let source: MqttSource
  let topics: string[]
  let json: boolean
  let rawOutFile: string | undefined
  let count: number | undefined
  let idleMs: number | undefined
  let keys: ChannelKeyInput[]
  try {
    const { values } = parseArgs({
      args,
      options: {
        url: { type: 'string' },
        topic: { type: 'string', multiple: true },
        key: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        'raw-out': { type: 'string' },
        username: { type: 'string' },
        password: { type: 'string' },
        qos: { type: 'string' },
        count: { type: 'string' },
        'idle-exit-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    })
    if (values.help) {
      io.stdout.write(`${TAIL_USAGE}\n`)
      return 0
    }
    if (!values.url) throw new TailUsageError('--url is required')
    topics = values.topic ?? []
    if (topics.length === 0) throw new TailUsageError('at least one --topic is required')
    if (values.qos !== undefined && values.qos !== '0' && values.qos !== '1') {
      throw new TailUsageError(`--qos must be 0 or 1, not "${values.qos}"`)
    }
    json = values.json ?? false
    rawOutFile = values['raw-out']
    count = positiveInt(values.count, '--count')
    idleMs = positiveInt(values['idle-exit-ms'], '--idle-exit-ms')
    keys = parseKeys(values.key)
    try {
      source = createMqttSource({
        name: 'tail',
        brokers: [
          {
            url: values.url,
            topics,
            qos: values.qos === '1' ? 1 : 0,
            ...(values.username !== undefined ? { username: values.username } : {}),
            ...(values.password !== undefined ? { password: values.password } : {}),
          },
        ],
      })
    } catch (e) {
      throw new TailUsageError(
        (e as Error).message.replace(/^createMqttSource: brokers\[0\]\./, '--'),
      )
    }
  } catch (e) {
    const error = e as Error & { code?: string }
    if (e instanceof TailUsageError || error.code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`meshtap tail: ${error.message}\n\n${TAIL_USAGE}\n`)
      return 2
    }
    throw e
  }

  let rawOut: WriteStream | undefined
  if (rawOutFile !== undefined) {
    try {
      rawOut = await openAppend(rawOutFile)
    } catch (e) {
      io.stderr.write(`meshtap tail: cannot open --raw-out file: ${(e as Error).message}\n`)
      return 1
    }
  }

  const codec = createCodec({ keys, includeRaw: true })
  let received = 0
  let finished = false
  let finish!: (reason: string) => void
  const finishedWith = new Promise<string>((resolve) => {
    finish = (reason) => {
      if (finished) return
      finished = true
      resolve(reason)
    }
  })

  let idleTimer: ReturnType<typeof setTimeout> | undefined
  const armIdle = () => {
    if (idleMs === undefined) return
    if (idleTimer !== undefined) clearTimeout(idleTimer)
    idleTimer = setTimeout(() => finish(`no message for ${idleMs} ms`), idleMs)
  }

  const onSigint = () => finish('interrupted')
  const onSigterm = () => finish('terminated')
  const onAbort = () => finish('stopped')
  const onOutputError = () => finish('output closed')
  process.on('SIGINT', onSigint)
  process.on('SIGTERM', onSigterm)
  options.signal?.addEventListener('abort', onAbort, { once: true })
  if (options.signal?.aborted) onAbort()
  io.stdout.on('error', onOutputError)

  const offStatus = source.onStatus((s) => {
    const line = statusLine(s, topics)
    if (line !== undefined) io.stderr.write(`${line}\n`)
  })

  const onMessage = (message: RawMessage, ack: () => void) => {
    if (finished) return
    received++
    armIdle()
    if (rawOut && message.topic !== undefined) {
      rawOut.write(`${toCaptureLine({ ...message, topic: message.topic })}\n`)
    }
    const result = codec.decode(message)
    const line = json ? JSON.stringify(toDecodeLine(result)) : describeResult(result)
    io.stdout.write(`${line}\n`)
    ack()
    if (count !== undefined && received >= count) finish(`${count} messages`)
  }

  try {
    armIdle()
    await source.start(onMessage)
    const reason = await finishedWith
    await source.stop()
    io.stderr.write(`stopped (${reason}) after ${received} message${received === 1 ? '' : 's'}\n`)
    return 0
  } finally {
    if (idleTimer !== undefined) clearTimeout(idleTimer)
    offStatus()
    process.off('SIGINT', onSigint)
    process.off('SIGTERM', onSigterm)
    options.signal?.removeEventListener('abort', onAbort)
    io.stdout.off('error', onOutputError)
    await source.stop()
    if (rawOut) await closeStream(rawOut)
  }
}
