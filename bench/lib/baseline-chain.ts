import { createDecipheriv } from 'node:crypto'
import { type DescMessage, fromBinary, Mesh, Mqtt, PortNum, Telemetry, toJson } from './deps.js'

/**
 * What a decoder found in one message, in a form both chains can produce and the bench can
 * compare: ok or the failure class, the sender and id, the port, and the app payload as canonical
 * protobuf JSON (`{ text }` for text ports).
 */
export interface ChainOutcome {
  ok: boolean
  /** Failure class: `undecryptable` (no key opens it), `pki` (a PKI direct message), or another reason. */
  failure?: string
  from: number
  id: number
  portnum?: number
  /** Canonical JSON of the payload message; `undefined` for ports without a schema. */
  json?: unknown
}

/** A channel the baseline can decrypt: its name and expanded AES key. */
export interface BaselineChannel {
  name: string
  key: Uint8Array
}

/** The payload schema of each port the baseline understands. */
export const PAYLOAD_SCHEMAS: ReadonlyMap<number, DescMessage> = new Map<number, DescMessage>([
  [PortNum.POSITION_APP, Mesh.PositionSchema],
  [PortNum.NODEINFO_APP, Mesh.UserSchema],
  [PortNum.ROUTING_APP, Mesh.RoutingSchema],
  [PortNum.TELEMETRY_APP, Telemetry.TelemetrySchema],
  [PortNum.TRACEROUTE_APP, Mesh.RouteDiscoverySchema],
  [PortNum.NEIGHBORINFO_APP, Mesh.NeighborInfoSchema],
  [PortNum.MAP_REPORT_APP, Mqtt.MapReportSchema],
  [PortNum.WAYPOINT_APP, Mesh.WaypointSchema],
])

/** Ports whose payload is UTF-8 text. */
export const TEXT_PORTS: ReadonlySet<number> = new Set<number>([
  PortNum.TEXT_MESSAGE_APP,
  PortNum.ALERT_APP,
  PortNum.DETECTION_SENSOR_APP,
  PortNum.RANGE_TEST_APP,
  PortNum.REPLY_APP,
])

function xorBytes(bytes: Uint8Array): number {
  let h = 0
  for (const b of bytes) h ^= b
  return h
}

/**
 * The straightforward chain, as most Meshtastic MQTT tools decode (and as the performance notes
 * measured it): parse the whole `ServiceEnvelope` with `@bufbuild/protobuf`; for an encrypted
 * packet, take the channel whose hash matches, create a new AES-128-CTR `Decipher` for the packet
 * (nonce = id u64 LE ‖ from u32 LE ‖ 4 zero bytes), parse the `Data`, then parse the payload with
 * its schema and turn it into canonical JSON with `toJson`.
 */
export function createBaselineChain(
  channels: readonly BaselineChannel[],
): (topic: string, payload: Uint8Array) => ChainOutcome {
  const byHash = new Map<number, { key: Buffer; algo: string }>()
  for (const ch of channels) {
    if (ch.key.length === 0) continue
    const hash = xorBytes(new TextEncoder().encode(ch.name)) ^ xorBytes(ch.key)
    if (!byHash.has(hash)) {
      byHash.set(hash, {
        key: Buffer.from(ch.key),
        algo: ch.key.length === 32 ? 'aes-256-ctr' : 'aes-128-ctr',
      })
    }
  }
  const text = new TextDecoder()

  function payloadJson(portnum: number, bytes: Uint8Array): unknown {
    if (TEXT_PORTS.has(portnum)) return { text: text.decode(bytes) }
    const schema = PAYLOAD_SCHEMAS.get(portnum)
    if (schema === undefined) return undefined
    return toJson(schema, fromBinary(schema, bytes))
  }

  return (_topic, payload) => {
    let env: Mqtt.ServiceEnvelope
    try {
      env = fromBinary(Mqtt.ServiceEnvelopeSchema, payload)
    } catch {
      return { ok: false, failure: 'malformed-envelope', from: 0, id: 0 }
    }
    const p = env.packet
    if (!p) return { ok: false, failure: 'malformed-envelope', from: 0, id: 0 }
    const { from, id } = p
    let data: Mesh.Data
    const v = p.payloadVariant
    if (v.case === 'decoded') {
      data = v.value
    } else if (v.case === 'encrypted') {
      if (p.pkiEncrypted || env.channelId === 'PKI') return { ok: false, failure: 'pki', from, id }
      const ch = byHash.get(p.channel)
      if (!ch) return { ok: false, failure: 'undecryptable', from, id }
      const nonce = Buffer.alloc(16)
      nonce.writeUInt32LE(id, 0)
      nonce.writeUInt32LE(from, 8)
      const decipher = createDecipheriv(ch.algo, ch.key, nonce)
      const plain = Buffer.concat([decipher.update(v.value), decipher.final()])
      try {
        data = fromBinary(Mesh.DataSchema, plain)
      } catch {
        return { ok: false, failure: 'undecryptable', from, id }
      }
      if (data.portnum === 0) return { ok: false, failure: 'undecryptable', from, id }
    } else {
      return { ok: false, failure: 'empty-packet', from, id }
    }
    let json: unknown
    try {
      json = payloadJson(data.portnum, data.payload)
    } catch {
      return { ok: false, failure: 'malformed-payload', from, id, portnum: data.portnum }
    }
    return { ok: true, from, id, portnum: data.portnum, json }
  }
}
