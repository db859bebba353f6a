import { createWriteStream, type WriteStream } from 'node:fs'
import { parseArgs } from 'node:util'
import { type ChannelKeyInput, createCodec } from '@meshtap/core'
import type { MqttSource } from '@meshtap/core/mqtt'
import { type RawMessage, toCaptureLine } from '@meshtap/protocol'
import type { CliIo } from '../cli.js'
import { describeResult } from '../describe.js'
import { toDecodeLine } from '../format.js'
import {
  BROKER_FLAGS,
  parseKeys,
  positiveInt,
  sourceFromFlags,
  statusLine,
  usageFailure,
} from './options.js'

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
        ...BROKER_FLAGS,
        key: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        'raw-out': { type: 'string' },
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
    json = values.json ?? false
    rawOutFile = values['raw-out']
    count = positiveInt(values.count, '--count')
    idleMs = positiveInt(values['idle-exit-ms'], '--idle-exit-ms')
    keys = parseKeys(values.key)
    ;({ source, topics } = sourceFromFlags('tail', values))
  } catch (e) {
    return usageFailure('tail', TAIL_USAGE, e, io)
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
