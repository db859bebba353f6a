import { createInterface } from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import {
  type ChannelKeyInput,
  createCodec,
  type DecodeResult,
  parseTopic,
  protobufJsonToBytes,
} from '@meshtap/core'
import { base64ToBytes, hexToBytes, type PacketKind } from '@meshtap/protocol'
import { describeResult } from '../describe.js'
import { type DecodeLine, toDecodeLine } from '../format.js'

const KINDS = new Set<PacketKind>(['envelope', 'mapreport', 'meshpacket', 'json-uplink', 'data'])
const ENCODINGS = new Set(['base64', 'hex', 'json'])

/** Options of the `decode` command. */
export interface DecodeCommandOptions {
  keys: ChannelKeyInput[]
  /** `json` (default): the NDJSON contract; `pretty`: the same, indented; `text`: one readable line per packet. */
  format?: 'json' | 'pretty' | 'text'
  input: Readable
  output: Writable
}

function invalid(message: string): DecodeLine {
  return { ok: false, error: { code: 'INVALID_INPUT', message }, packet: {} }
}

const encoder = new TextEncoder()

/**
 * Decodes one input line of the `meshtap decode` contract:
 * `{"payload": string, "encoding"?: "base64"|"hex"|"json", "topic"?: string|null, "kind"?: …}`.
 */
export function decodeLine(
  line: string,
  decode: (m: { topic?: string; payload: Uint8Array; kind?: PacketKind }) => DecodeResult,
): DecodeLine {
  return parseAndDecode(line, decode, toDecodeLine)
}

function parseAndDecode<T>(
  line: string,
  decode: (m: { topic?: string; payload: Uint8Array; kind?: PacketKind }) => DecodeResult,
  format: (r: DecodeResult) => T,
): T | DecodeLine {
  let input: unknown
  try {
    input = JSON.parse(line)
  } catch {
    return invalid('the input line is not JSON; expected {"payload": "<base64>", "topic": "..."}')
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return invalid('the input line is not a JSON object')
  }
  const { payload, encoding = 'base64', topic, kind } = input as Record<string, unknown>
  if (typeof payload !== 'string') return invalid('"payload" must be a string')
  if (typeof encoding !== 'string' || !ENCODINGS.has(encoding)) {
    return invalid('"encoding" must be "base64", "hex" or "json"')
  }
  if (topic !== undefined && topic !== null && typeof topic !== 'string') {
    return invalid('"topic" must be a string or null')
  }
  if (kind !== undefined && kind !== null && !KINDS.has(kind as PacketKind)) {
    return invalid('"kind" must be one of envelope, mapreport, meshpacket, json-uplink, data')
  }
  const t = typeof topic === 'string' ? topic : undefined
  const k = (kind ?? undefined) as PacketKind | undefined
  let bytes: Uint8Array | undefined
  if (encoding === 'json') {
    const effective = k ?? (t !== undefined ? parseTopic(t)?.kind : undefined) ?? 'envelope'
    if (effective === 'json-uplink') bytes = encoder.encode(payload)
    else {
      const converted = protobufJsonToBytes(effective, payload)
      if (!(converted instanceof Uint8Array)) {
        return { ok: false, error: converted, packet: { kind: effective } }
      }
      bytes = converted
    }
  } else {
    bytes = encoding === 'hex' ? hexToBytes(payload) : base64ToBytes(payload)
    if (!bytes) return invalid(`"payload" is not valid ${encoding}`)
  }
  return format(
    decode({
      ...(t !== undefined ? { topic: t } : {}),
      payload: bytes,
      ...(k !== undefined ? { kind: k } : {}),
    }),
  )
}

/** Runs `meshtap decode`: NDJSON in, exactly one NDJSON line out per input line, in order. */
export async function runDecode(options: DecodeCommandOptions): Promise<{ lines: number }> {
  const codec = createCodec({ keys: options.keys, includeRaw: true })
  const decode = codec.decode
  const rl = createInterface({ input: options.input, crlfDelay: Number.POSITIVE_INFINITY })
  let buffer = ''
  let lines = 0
  const flush = async () => {
    if (buffer.length === 0) return
    const chunk = buffer
    buffer = ''
    if (!options.output.write(chunk)) {
      await new Promise<void>((resolve) => options.output.once('drain', resolve))
    }
  }
  const format = options.format ?? 'json'
  for await (const line of rl) {
    if (format === 'text') {
      const out = parseAndDecode(line, decode, describeResult)
      buffer += `${typeof out === 'string' ? out : `✗ ${out.ok ? '' : out.error.message}`}\n`
    } else {
      const out = decodeLine(line, decode)
      buffer +=
        format === 'pretty' ? `${JSON.stringify(out, null, 2)}\n` : `${JSON.stringify(out)}\n`
    }
    lines++
    if (buffer.length > 65_536) await flush()
  }
  await flush()
  return { lines }
}
