import { type ChannelKeyInput, createChannelKey, parseChannelKeySpec } from '@meshtap/core'
import {
  createMqttSource,
  type MqttBrokerOptions,
  type MqttSource,
  type MqttSourceStatus,
} from '@meshtap/core/mqtt'

/** A usage error of a command: printed with the command's usage text, exit code 2. */
export class CommandUsageError extends Error {
  override readonly name = 'CommandUsageError'
}

/** Parses an optional positive integer flag. */
export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0) {
    throw new CommandUsageError(`${flag} must be a positive integer, not "${value}"`)
  }
  return n
}

/** Parses repeated `--key NAME=PSK` flags, validating each key. */
export function parseKeys(specs: readonly string[] | undefined): ChannelKeyInput[] {
  return (specs ?? []).map((spec) => {
    try {
      const key = parseChannelKeySpec(spec)
      createChannelKey(key)
      return key
    } catch (e) {
      throw new CommandUsageError(`--key: ${(e as Error).message}`)
    }
  })
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

/** A stderr line for a source status change, or `undefined` when there is nothing to say. */
export function statusLine(s: MqttSourceStatus, topics: readonly string[]): string | undefined {
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

/** The broker flags `tail` and `ingest` share, as `parseArgs` options. */
export const BROKER_FLAGS = {
  url: { type: 'string' },
  topic: { type: 'string', multiple: true },
  username: { type: 'string' },
  password: { type: 'string' },
  qos: { type: 'string' },
} as const

/** The parsed values of {@link BROKER_FLAGS}. */
export interface BrokerFlagValues {
  url?: string
  topic?: string[]
  username?: string
  password?: string
  qos?: string
}

/**
 * Builds an MQTT source from the broker flags (plus extra broker options), turning option errors
 * into usage errors that name the flag.
 */
export function sourceFromFlags(
  name: string,
  values: BrokerFlagValues,
  extra: Partial<MqttBrokerOptions> = {},
): { source: MqttSource; topics: string[] } {
  if (!values.url) throw new CommandUsageError('--url is required')
  const topics = values.topic ?? []
  if (topics.length === 0) throw new CommandUsageError('at least one --topic is required')
  if (values.qos !== undefined && values.qos !== '0' && values.qos !== '1') {
    throw new CommandUsageError(`--qos must be 0 or 1, not "${values.qos}"`)
  }
  try {
    const source = createMqttSource({
      name,
      brokers: [
        {
          url: values.url,
          topics,
          qos: values.qos === '1' ? 1 : 0,
          ...(values.username !== undefined ? { username: values.username } : {}),
          ...(values.password !== undefined ? { password: values.password } : {}),
          ...extra,
        },
      ],
    })
    return { source, topics }
  } catch (e) {
    throw new CommandUsageError(
      (e as Error).message.replace(/^createMqttSource: brokers\[0\]\./, '--'),
    )
  }
}

/** Prints a usage error (exit 2), or rethrows anything else. */
export function usageFailure(
  command: string,
  usage: string,
  e: unknown,
  io: { stderr: { write(s: string): unknown } },
): number {
  const error = e as Error & { code?: string }
  if (e instanceof CommandUsageError || error.code?.startsWith('ERR_PARSE_ARGS')) {
    io.stderr.write(`meshtap ${command}: ${error.message}\n\n${usage}\n`)
    return 2
  }
  throw e
}
