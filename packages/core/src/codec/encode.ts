import { create, type DescMessage, fromJson, type JsonValue, toBinary } from '@bufbuild/protobuf'
import { BROADCAST_NUM, PortNum } from '@meshtap/protocol'
import {
  Admin,
  Mesh,
  Mqtt,
  PaxCount,
  RemoteHardware,
  StoreForward,
  Telemetry,
} from '@meshtastic/protobufs'
import { createAesCtr } from './aes-ctr.js'
import { type ChannelKey, type ChannelKeyInput, createChannelKey } from './keyring.js'

const TEXT_PORTS = new Set<number>([
  PortNum.TEXT_MESSAGE_APP,
  PortNum.ALERT_APP,
  PortNum.DETECTION_SENSOR_APP,
  PortNum.RANGE_TEST_APP,
  PortNum.REPLY_APP,
])

const SCHEMAS = new Map<number, DescMessage>([
  [PortNum.POSITION_APP, Mesh.PositionSchema],
  [PortNum.NODEINFO_APP, Mesh.UserSchema],
  [PortNum.ROUTING_APP, Mesh.RoutingSchema],
  [PortNum.TELEMETRY_APP, Telemetry.TelemetrySchema],
  [PortNum.TRACEROUTE_APP, Mesh.RouteDiscoverySchema],
  [PortNum.NEIGHBORINFO_APP, Mesh.NeighborInfoSchema],
  [PortNum.MAP_REPORT_APP, Mqtt.MapReportSchema],
  [PortNum.WAYPOINT_APP, Mesh.WaypointSchema],
  [PortNum.STORE_FORWARD_APP, StoreForward.StoreAndForwardSchema],
  [PortNum.PAXCOUNTER_APP, PaxCount.PaxcountSchema],
  [PortNum.ADMIN_APP, Admin.AdminMessageSchema],
  [PortNum.REMOTE_HARDWARE_APP, RemoteHardware.HardwareMessageSchema],
  [PortNum.KEY_VERIFICATION_APP, Mesh.KeyVerificationSchema],
  [PortNum.NODE_STATUS_APP, Mesh.StatusMessageSchema],
  [PortNum.STORE_FORWARD_PLUSPLUS_APP, Mesh.StoreForwardPlusPlusSchema],
])

const utf8 = new TextEncoder()

/**
 * Encodes an app payload for a port: text for text ports, a message in canonical protobuf JSON
 * (the same form the codec emits) for ports with a schema, or raw bytes for any port.
 *
 * @example
 * encodeAppPayload(PortNum.POSITION_APP, { latitudeI: 400145300, longitudeI: -828217400, precisionBits: 32 })
 */
export function encodeAppPayload(
  portnum: number,
  payload: Uint8Array | string | Record<string, unknown>,
): Uint8Array {
  if (payload instanceof Uint8Array) return payload
  if (typeof payload === 'string') {
    if (!TEXT_PORTS.has(portnum)) {
      throw new TypeError(`port ${portnum} does not carry text; pass its message as JSON or bytes`)
    }
    return utf8.encode(payload)
  }
  const schema = SCHEMAS.get(portnum)
  if (!schema) {
    throw new TypeError(`meshtap has no schema for port ${portnum}; pass the payload as bytes`)
  }
  return toBinary(schema, fromJson(schema, payload as JsonValue))
}

/** The `Data` fields besides port and payload. */
export interface DataFields {
  wantResponse?: boolean
  dest?: number
  source?: number
  requestId?: number
  replyId?: number
  emoji?: number
  /** Bit 0 OK-to-MQTT, bit 1 want-response. Firmware ≥ 2.5 always sets it. */
  bitfield?: number
}

/** Encodes a `Data` message. */
export function encodeData(
  portnum: number,
  payload: Uint8Array | string | Record<string, unknown>,
  fields: DataFields = {},
): Uint8Array {
  return toBinary(
    Mesh.DataSchema,
    create(Mesh.DataSchema, {
      portnum,
      payload: encodeAppPayload(portnum, payload),
      ...fields,
    }),
  )
}

/** What to put in a packet for {@link encodeMeshPacket} / {@link encodeEnvelope}. */
export interface EncodePacketInput extends DataFields {
  from: number
  /** @default 0xffffffff (broadcast) */
  to?: number
  id: number
  portnum: number
  /** Text, the message in canonical JSON, or raw bytes. */
  payload: Uint8Array | string | Record<string, unknown>
  /** The channel whose key encrypts it. @default LongFast with the default key */
  channel?: ChannelKeyInput | ChannelKey
  /** `false` sends a plaintext (`decoded`) packet, as a gateway with MQTT encryption off does. @default true */
  encrypt?: boolean
  /** Override `MeshPacket.channel` (by default the channel hash, or index 0 for plaintext). */
  channelField?: number
  hopLimit?: number
  hopStart?: number
  wantAck?: boolean
  viaMqtt?: boolean
  rxTime?: number
  rxSnr?: number
  rxRssi?: number
  priority?: number
  nextHop?: number
  relayNode?: number
  pkiEncrypted?: boolean
}

const DEFAULT_CHANNEL = createChannelKey({ name: 'LongFast', psk: 'AQ==' })
const channelCache = new WeakMap<object, ChannelKey>()

function channelKey(input: ChannelKeyInput | ChannelKey | undefined): ChannelKey {
  if (!input) return DEFAULT_CHANNEL
  if ('keyId' in input) return input
  let ch = channelCache.get(input)
  if (!ch) {
    ch = createChannelKey(input)
    channelCache.set(input, ch)
  }
  return ch
}

const engines = new Map<string, ReturnType<typeof createAesCtr>>()

/**
 * Encrypts (or decrypts: CTR is symmetric) bytes with a channel key for packet `id` from `from`.
 *
 * @example
 * const ciphertext = channelCrypt(createChannelKey({ name: 'LongFast', psk: 'AQ==' }), data, from, id)
 */
export function channelCrypt(
  ch: ChannelKey,
  bytes: Uint8Array,
  from: number,
  id: number,
): Uint8Array {
  if (ch.key.length === 0) return bytes.slice()
  let e = engines.get(ch.keyId)
  if (!e) {
    e = createAesCtr(ch.key)
    if (engines.size < 256) engines.set(ch.keyId, e)
  }
  return e.crypt(bytes, 0, bytes.length, from >>> 0, id >>> 0)
}

function meshPacket(input: EncodePacketInput) {
  const { from, id, portnum, payload, channel, encrypt = true, channelField, to, ...rest } = input
  const fields: DataFields = {}
  for (const k of [
    'wantResponse',
    'dest',
    'source',
    'requestId',
    'replyId',
    'emoji',
    'bitfield',
  ] as const) {
    if (rest[k] !== undefined) (fields as Record<string, unknown>)[k] = rest[k]
  }
  const ch = channelKey(channel)
  const header = {
    from: from >>> 0,
    to: (to ?? BROADCAST_NUM) >>> 0,
    id: id >>> 0,
    hopLimit: rest.hopLimit ?? 0,
    hopStart: rest.hopStart ?? 0,
    wantAck: rest.wantAck ?? false,
    viaMqtt: rest.viaMqtt ?? false,
    rxTime: rest.rxTime ?? 0,
    rxSnr: rest.rxSnr ?? 0,
    rxRssi: rest.rxRssi ?? 0,
    priority: rest.priority ?? 0,
    nextHop: rest.nextHop ?? 0,
    relayNode: rest.relayNode ?? 0,
    pkiEncrypted: rest.pkiEncrypted ?? false,
  }
  if (!encrypt) {
    return create(Mesh.MeshPacketSchema, {
      ...header,
      channel: channelField ?? 0,
      payloadVariant: {
        case: 'decoded',
        value: create(Mesh.DataSchema, {
          portnum,
          payload: encodeAppPayload(portnum, payload),
          ...fields,
        }),
      },
    })
  }
  const data = encodeData(portnum, payload, fields)
  return create(Mesh.MeshPacketSchema, {
    ...header,
    channel: channelField ?? ch.hash,
    payloadVariant: { case: 'encrypted', value: channelCrypt(ch, data, from, id) },
  })
}

/** Encodes a bare `MeshPacket` (as Mesh-via-UDP carries it). */
export function encodeMeshPacket(input: EncodePacketInput): Uint8Array {
  return toBinary(Mesh.MeshPacketSchema, meshPacket(input))
}

/** Input of {@link encodeEnvelope}: a packet plus the envelope's channel and gateway. */
export interface EncodeEnvelopeInput extends EncodePacketInput {
  /** Envelope `channel_id` (the channel name, or `PKI`). @default the channel's name */
  channelId?: string
  /** The gateway that publishes it, `!xxxxxxxx`. */
  gatewayId: string
}

/**
 * Encodes a `ServiceEnvelope` as a gateway publishes it on `<root>/2/e/<channelId>/<gatewayId>`.
 *
 * @example
 * const bytes = encodeEnvelope({ from: 0x1234, id: 42, portnum: PortNum.TEXT_MESSAGE_APP, payload: 'hi', gatewayId: '!00001234' })
 */
export function encodeEnvelope(input: EncodeEnvelopeInput): Uint8Array {
  const ch = channelKey(input.channel)
  return toBinary(
    Mqtt.ServiceEnvelopeSchema,
    create(Mqtt.ServiceEnvelopeSchema, {
      packet: meshPacket({ ...input, channel: ch }),
      channelId: input.channelId ?? ch.name,
      gatewayId: input.gatewayId,
    }),
  )
}
