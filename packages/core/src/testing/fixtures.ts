import {
  type DecodedPacket,
  PortNum,
  type Reception,
  type StoredPacket,
  type UndecodedPacket,
} from '@meshtap/protocol'
import { createCodec } from '../codec/decode.js'
import { encodeEnvelope } from '../codec/encode.js'
import { packetKeyOf } from '../pipeline/ingest.js'

const codec = createCodec()
const T0 = 1_764_288_000_000

/** A realistic decoded packet made with meshtap's own encoder, for store tests. */
export function samplePacket(
  n: number,
  kind: 'position' | 'text' | 'telemetry' | 'nodeinfo' | 'mapreport' = 'position',
): StoredPacket {
  const from = 0x10000000 + (n % 97)
  const id = kind === 'mapreport' ? 0 : 0x20000000 + n
  const common = {
    from,
    id,
    gatewayId: '!a0c0ffee',
    hopStart: 3,
    hopLimit: 2,
    rxTime: T0 / 1000 + n,
    rxSnr: 5.5,
    rxRssi: -97,
    bitfield: 1,
  }
  const bytes =
    kind === 'text'
      ? encodeEnvelope({ ...common, portnum: PortNum.TEXT_MESSAGE_APP, payload: `hello ${n} ✓` })
      : kind === 'telemetry'
        ? encodeEnvelope({
            ...common,
            portnum: PortNum.TELEMETRY_APP,
            payload: { time: 1000 + n, deviceMetrics: { batteryLevel: n % 101, voltage: 3.75 } },
          })
        : kind === 'nodeinfo'
          ? encodeEnvelope({
              ...common,
              portnum: PortNum.NODEINFO_APP,
              payload: {
                id: `!${from.toString(16)}`,
                longName: `Node ${n}`,
                shortName: 'N',
                hwModel: 'RAK4631',
              },
            })
          : kind === 'mapreport'
            ? encodeEnvelope({
                ...common,
                encrypt: false,
                gatewayId: `!${from.toString(16)}`,
                portnum: PortNum.MAP_REPORT_APP,
                payload: {
                  longName: `GW ${n}`,
                  latitudeI: 377749000,
                  longitudeI: -1224194000,
                  positionPrecision: 14,
                },
              })
            : encodeEnvelope({
                ...common,
                portnum: PortNum.POSITION_APP,
                payload: {
                  latitudeI: 377749000 + n * 100,
                  longitudeI: -1224194000 - n * 100,
                  altitude: 12,
                  time: 1000 + n,
                  precisionBits: 32,
                },
              })
  const topic = kind === 'mapreport' ? 'msh/US/2/map/' : 'msh/US/2/e/LongFast/!a0c0ffee'
  const r = codec.decode({ topic, payload: bytes })
  if (!r.ok) throw new Error(`sample packet ${n} did not decode: ${r.error.error.message}`)
  const receivedAt = T0 + n * 1000
  return { key: packetKeyOf(from, id, receivedAt), packet: r.value as DecodedPacket, receivedAt }
}

/** A reception of `packet` by gateway number `g`. */
export function sampleReception(packet: StoredPacket, g: number, offsetMs = 10): Reception {
  return {
    packetKey: packet.key,
    gatewayId: `!a0c0${g.toString(16).padStart(4, '0')}`,
    topic: `msh/US/2/e/LongFast/!a0c0${g.toString(16).padStart(4, '0')}`,
    channelId: 'LongFast',
    rxTime: Math.floor(packet.receivedAt / 1000),
    receivedAt: packet.receivedAt + offsetMs,
    rxSnr: -3.25 + g,
    rxRssi: -110 + g,
    hopLimit: 2,
    hopStart: 3,
    hopsAway: 1,
    receptionClass: 'relayed',
  }
}

/** An undecodable packet (unknown channel key) as the codec reports it. */
export function sampleUndecoded(n: number): UndecodedPacket {
  const bytes = encodeEnvelope({
    from: 0x30000000 + n,
    id: 0x40000000 + n,
    gatewayId: '!a0c0ffee',
    portnum: PortNum.TEXT_MESSAGE_APP,
    payload: 'secret',
    channel: { name: 'Secret', psk: 'c2VjcmV0LXNlY3JldC1rZXk=' },
  })
  const r = codec.decode({ topic: 'msh/US/2/e/Secret/!a0c0ffee', payload: bytes })
  if (r.ok) throw new Error('sample undecoded packet decoded')
  return {
    key: packetKeyOf(0x30000000 + n, 0x40000000 + n, T0),
    failure: r.error,
    receivedAt: T0 + n,
  }
}
