import { type DescMessage, fromJson, type JsonValue, toBinary } from '@bufbuild/protobuf'
import type { DecodeError, PacketKind } from '@meshtap/protocol'
import { Mesh, Mqtt } from '@meshtastic/protobufs'

const SCHEMAS: Record<Exclude<PacketKind, 'json-uplink'>, DescMessage> = {
  envelope: Mqtt.ServiceEnvelopeSchema,
  mapreport: Mqtt.ServiceEnvelopeSchema,
  meshpacket: Mesh.MeshPacketSchema,
  data: Mesh.DataSchema,
}

const UINT32_FIELDS = new Set([
  'from',
  'to',
  'id',
  'requestId',
  'request_id',
  'replyId',
  'reply_id',
])

/** Signed ids from old firmware and third-party tools (`"to": -1`) become uint32. */
function normaliseIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normaliseIds)
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      UINT32_FIELDS.has(k) && typeof v === 'number' && Number.isInteger(v) && v < 0
        ? v >>> 0
        : normaliseIds(v)
  }
  return out
}

/**
 * Converts the protobuf-JSON form of an envelope, MeshPacket or Data (as tools and the Meshtastic
 * Python API print them) into protobuf bytes for the codec. Unknown fields are ignored; negative ids
 * are normalised to uint32. Returns a {@link DecodeError} (`MALFORMED_JSON`) when the text is not
 * that message in JSON.
 *
 * @example
 * const bytes = protobufJsonToBytes('meshpacket', '{"from":1978765680,"id":1994624120,"encrypted":"FIft…"}')
 */
export function protobufJsonToBytes(
  kind: Exclude<PacketKind, 'json-uplink'>,
  text: string,
): Uint8Array | DecodeError {
  const schema = SCHEMAS[kind]
  if (!schema) return { code: 'INVALID_INPUT', message: `unknown kind "${kind}"` }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return { code: 'MALFORMED_JSON', message: `the ${kind} JSON is not valid JSON` }
  }
  try {
    const msg = fromJson(schema, normaliseIds(json) as JsonValue, { ignoreUnknownFields: true })
    return toBinary(schema, msg)
  } catch (cause) {
    return {
      code: 'MALFORMED_JSON',
      message: `the JSON is not a ${schema.name} in protobuf JSON form: ${(cause as Error).message}`,
    }
  }
}
