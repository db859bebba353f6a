import { randomBytes } from 'node:crypto'
import { create, toBinary } from '@bufbuild/protobuf'
import { bytesToBase64, type DecodedPacket, type DecodeFailure, PortNum } from '@meshtap/protocol'
import { Mesh, Mqtt } from '@meshtastic/protobufs'
import { describe, expect, it } from 'vitest'
import { createCodec, type DecodeResult } from './decode.js'
import { encodeEnvelope, encodeMeshPacket } from './encode.js'
import { channelHash, expandPsk } from './keyring.js'

const TOPIC = 'msh/US/2/e/LongFast/!a0c0ffee'
const GW = '!a0c0ffee'
const base = {
  from: 0x1f2e3d4c,
  id: 0x5a000001,
  gatewayId: GW,
  hopStart: 3,
  hopLimit: 3,
  rxSnr: 5,
  rxRssi: -90,
}
const text = (payload: string) => ({
  ...base,
  portnum: PortNum.TEXT_MESSAGE_APP,
  payload,
  bitfield: 1,
})

function ok(r: DecodeResult): DecodedPacket {
  if (!r.ok)
    throw new Error(`expected a packet, got ${r.error.error.code}: ${r.error.error.message}`)
  return r.value
}
function failed(r: DecodeResult): DecodeFailure {
  if (r.ok) throw new Error(`expected a failure, got a ${r.value.portnumName} packet`)
  return r.error
}

describe('createCodec', () => {
  const codec = createCodec()

  it('decrypts default-key traffic and fills header, Data and derived fields', () => {
    const p = ok(codec.decode({ topic: TOPIC, payload: encodeEnvelope(text('hello')) }))
    expect(p).toMatchObject({
      kind: 'envelope',
      root: 'msh/US',
      channelId: 'LongFast',
      gatewayId: GW,
      fromId: '!1f2e3d4c',
      toId: '!ffffffff',
      channel: 8,
      encrypted: true,
      keyName: 'LongFast',
      portnum: 1,
      portnumName: 'TEXT_MESSAGE_APP',
      okToMqtt: true,
      hopsAway: 0,
      receptionClass: 'direct',
      app: { type: 'text', text: 'hello', isReaction: false },
    })
  })

  it('reads a NaN or infinite rx_snr as absent (0), so no store is handed a value it cannot keep', () => {
    for (const rxSnr of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const p = ok(codec.decode({ topic: TOPIC, payload: encodeEnvelope({ ...text('x'), rxSnr }) }))
      expect(p.rxSnr).toBe(0)
      const secret = { name: 'Secret', psk: bytesToBase64(randomBytes(32)) }
      const failure = failed(
        codec.decode({
          topic: 'msh/US/2/e/Secret/!a0c0ffee',
          payload: encodeEnvelope({ ...text('x'), rxSnr, channel: secret }),
        }),
      )
      expect(failure.packet.rxSnr ?? 0).toBe(0)
    }
  })

  it('treats a null or non-string topic as no topic', () => {
    const payload = encodeEnvelope(text('hello'))
    for (const topic of [null, 42, {}]) {
      const p = ok(codec.decode({ topic: topic as unknown as string, payload }))
      expect(p.topic).toBeUndefined()
      expect(p.gatewayId).toBe(GW)
    }
  })

  it('keeps header and ciphertext of a packet it cannot decrypt', () => {
    const secret = { name: 'Secret', psk: bytesToBase64(randomBytes(32)) }
    const bytes = encodeEnvelope({ ...text('psst'), channel: secret })
    const f = failed(codec.decode({ topic: 'msh/US/2/e/Secret/!a0c0ffee', payload: bytes }))
    expect(f.error.code).toBe('NO_MATCHING_KEY')
    expect(f.error.message).toMatch(/--key Secret=/)
    expect(f.packet).toMatchObject({
      from: base.from,
      id: base.id,
      channelId: 'Secret',
      encrypted: true,
    })
    expect(f.packet.ciphertext).toMatch(/^[A-Za-z0-9+/]+=*$/)
    // …and decodes once the key is known (AES-256 here).
    const withKey = createCodec({ keys: [secret] })
    expect(
      ok(withKey.decode({ topic: 'msh/US/2/e/Secret/!a0c0ffee', payload: bytes })).app,
    ).toMatchObject({
      text: 'psst',
    })
  })

  it('finds the default key under a custom channel name (hash from the envelope name)', () => {
    const bytes = encodeEnvelope({ ...text('custom'), channel: { name: 'Oregon', psk: 'AQ==' } })
    const p = ok(codec.decode({ topic: 'msh/US/2/e/Oregon/!a0c0ffee', payload: bytes }))
    expect(p.channel).toBe(channelHash('Oregon', expandPsk(new Uint8Array([1]))))
    expect(p.app).toMatchObject({ text: 'custom' })
  })

  it('falls back to other keys when the hash matches none, unless told not to', () => {
    const bytes = encodeEnvelope({ ...text('odd hash'), channelField: 77 })
    expect(ok(codec.decode({ topic: TOPIC, payload: bytes })).app).toMatchObject({
      text: 'odd hash',
    })
    const strict = createCodec({ tryAllKeys: false })
    expect(failed(strict.decode({ topic: TOPIC, payload: bytes })).error.code).toBe(
      'NO_MATCHING_KEY',
    )
  })

  it('reads plaintext Data inside `encrypted` on an unencrypted (ham) channel', () => {
    const bytes = encodeEnvelope({ ...text('ham'), channel: { name: 'LongFast', psk: '' } })
    const p = ok(codec.decode({ topic: TOPIC, payload: bytes }))
    expect(p.channel).toBe(10)
    expect(p.app).toMatchObject({ text: 'ham' })
    expect(p.keyName).toBeUndefined()
  })

  it('decodes plaintext (decoded) envelopes, where channel is the local index', () => {
    const bytes = encodeEnvelope({ ...text('plain'), encrypt: false })
    const p = ok(codec.decode({ topic: TOPIC, payload: bytes }))
    expect(p).toMatchObject({ encrypted: false, channel: 0, app: { text: 'plain' } })
  })

  it('reports PKI direct messages without trying channel keys', () => {
    const bytes = encodeEnvelope({
      ...text('dm'),
      to: 0x11111111,
      channelId: 'PKI',
      channelField: 0,
      pkiEncrypted: true,
    })
    const f = failed(codec.decode({ topic: 'msh/US/2/e/PKI/!a0c0ffee', payload: bytes }))
    expect(f.error.code).toBe('PKI_ENCRYPTED')
    expect(f.packet).toMatchObject({ channelId: 'PKI', toId: '!11111111', pkiEncrypted: true })
    expect(f.packet.ciphertext).toBeDefined()
  })

  it('decodes map reports (id 0, plaintext) with degrees and precision radius', () => {
    const bytes = encodeEnvelope({
      from: 0xa0c0ffee,
      id: 0,
      gatewayId: GW,
      encrypt: false,
      portnum: PortNum.MAP_REPORT_APP,
      payload: {
        longName: 'GW',
        latitudeI: 377749000,
        longitudeI: -1224194000,
        positionPrecision: 14,
      },
    })
    const p = ok(codec.decode({ topic: 'msh/US/2/map/', payload: bytes }))
    expect(p).toMatchObject({ kind: 'mapreport', id: 0, receptionClass: 'self' })
    expect(p.app).toMatchObject({ type: 'mapreport', latitude: 37.7749, longitude: -122.4194 })
    expect((p.app as { radiusM: number }).radiusM).toBeCloseTo(1456.25)
  })

  it('gives hopsAway only where the hop fields make it valid', () => {
    const at = (h: object) =>
      ok(codec.decode({ topic: TOPIC, payload: encodeEnvelope({ ...text('x'), ...h }) }))
    expect(at({ hopStart: 5, hopLimit: 3 })).toMatchObject({
      hopsAway: 2,
      receptionClass: 'relayed',
    })
    // hopStart 0: firmware < 2.3, unknown.
    expect(at({ hopStart: 0, hopLimit: 3, bitfield: undefined }).hopsAway).toBeUndefined()
    // hopLimit stripped to 0 by the broker: unknown, not "hopStart hops away".
    expect(at({ hopStart: 3, hopLimit: 0 })).toMatchObject({ receptionClass: 'unknown' })
    expect(at({ hopStart: 3, hopLimit: 0 }).hopsAway).toBeUndefined()
    expect(at({ hopStart: 2, hopLimit: 5 }).hopsAway).toBeUndefined()
    expect(at({ rxSnr: 0, rxRssi: 0 }).receptionClass).toBe('injected')
    expect(at({ gatewayId: '!1f2e3d4c' }).receptionClass).toBe('self')
  })

  it('marks reactions and replies', () => {
    const p = ok(
      codec.decode({
        topic: TOPIC,
        payload: encodeEnvelope({ ...text('👍'), replyId: 1234, emoji: 1 }),
      }),
    )
    expect(p.app).toMatchObject({ type: 'text', isReaction: true, replyId: 1234 })
  })

  it('converts traceroute SNR to dB and marks unknown hops', () => {
    const bytes = encodeEnvelope({
      ...base,
      portnum: PortNum.TRACEROUTE_APP,
      payload: { route: [0x11111111, 0xffffffff], snrTowards: [25, -128, -40] },
      requestId: 99,
    })
    const p = ok(codec.decode({ topic: TOPIC, payload: bytes }))
    expect(p.app).toMatchObject({
      type: 'traceroute',
      route: [
        { id: '!11111111', unknown: false },
        { id: '!ffffffff', unknown: true },
      ],
      snrTowardsDb: [6.25, null, -10],
    })
  })

  it('names the telemetry variant', () => {
    const bytes = encodeEnvelope({
      ...base,
      portnum: PortNum.TELEMETRY_APP,
      payload: { time: 1, environmentMetrics: { temperature: 21.5, relativeHumidity: 40 } },
    })
    expect(ok(codec.decode({ topic: TOPIC, payload: bytes })).app).toMatchObject({
      type: 'telemetry',
      variant: 'environment',
      metrics: { temperature: 21.5, relativeHumidity: 40 },
    })
  })

  it('decodes a plaintext request whose Data has no payload field', () => {
    const bytes = encodeEnvelope({
      ...base,
      encrypt: false,
      portnum: PortNum.TRACEROUTE_APP,
      payload: new Uint8Array(0),
      wantResponse: true,
    })
    const p = ok(codec.decode({ topic: TOPIC, payload: bytes }))
    expect(p).toMatchObject({
      portnumName: 'TRACEROUTE_APP',
      wantResponse: true,
      payload: '',
      app: { type: 'traceroute', route: [] },
    })
  })

  it('decodes bare MeshPackets and Data', () => {
    const mp = encodeMeshPacket(text('bare'))
    expect(ok(codec.decode({ payload: mp, kind: 'meshpacket' })).app).toMatchObject({
      text: 'bare',
    })
    const data = toBinary(
      Mesh.DataSchema,
      create(Mesh.DataSchema, { portnum: 1, payload: new TextEncoder().encode('data') }),
    )
    expect(ok(codec.decode({ payload: data, kind: 'data' })).app).toMatchObject({ text: 'data' })
  })

  it('fails with a typed error on bad topics, sizes and shapes', () => {
    const good = encodeEnvelope(text('x'))
    expect(failed(codec.decode({ topic: 'msh/US/2/stat/!a', payload: good })).error.code).toBe(
      'UNKNOWN_TOPIC',
    )
    expect(failed(codec.decode({ topic: TOPIC, payload: new Uint8Array(20_000) })).error.code).toBe(
      'PAYLOAD_TOO_LARGE',
    )
    expect(failed(codec.decode({ topic: TOPIC, payload: good.subarray(0, 10) })).error.code).toBe(
      'MALFORMED_ENVELOPE',
    )
    const noPacket = toBinary(
      Mqtt.ServiceEnvelopeSchema,
      create(Mqtt.ServiceEnvelopeSchema, { gatewayId: GW }),
    )
    expect(failed(codec.decode({ topic: TOPIC, payload: noPacket })).error.code).toBe(
      'MALFORMED_ENVELOPE',
    )
    const empty = toBinary(
      Mqtt.ServiceEnvelopeSchema,
      create(Mqtt.ServiceEnvelopeSchema, {
        gatewayId: GW,
        packet: create(Mesh.MeshPacketSchema, { from: 1, id: 2 }),
      }),
    )
    expect(failed(codec.decode({ topic: TOPIC, payload: empty })).error.code).toBe('EMPTY_PACKET')
    const badPayload = encodeEnvelope({
      ...base,
      encrypt: false,
      portnum: PortNum.POSITION_APP,
      payload: new Uint8Array([0xff]),
    })
    const f = failed(codec.decode({ topic: TOPIC, payload: badPayload }))
    expect(f.error.code).toBe('MALFORMED_PAYLOAD')
    expect(f.packet).toMatchObject({ portnum: 3, portnumName: 'POSITION_APP', from: base.from })
  })

  it('decodes legacy JSON uplinks into the same model', () => {
    const json = JSON.stringify({
      channel: 0,
      from: -1,
      id: 7,
      payload: { latitude_i: 517720000, longitude_i: 395000, precision_bits: 32 },
      sender: '!da656a30',
      timestamp: 1714295459,
      to: -1,
      type: 'position',
      snr: -18,
      rssi: -124,
    })
    const p = ok(
      codec.decode({
        topic: 'msh/EU/2/json/LongFast/!da656a30',
        payload: new TextEncoder().encode(json),
      }),
    )
    expect(p).toMatchObject({
      kind: 'json-uplink',
      from: 0xffffffff,
      to: 0xffffffff,
      gatewayId: '!da656a30',
      channelId: 'LongFast',
      rxTime: 1714295459,
      portnumName: 'POSITION_APP',
      app: { type: 'position', latitude: 51.772, longitude: 0.0395 },
    })
    const bad = codec.decode({
      topic: 'msh/EU/2/json/LongFast/!da656a30',
      payload: new TextEncoder().encode('{'),
    })
    expect(failed(bad).error.code).toBe('MALFORMED_JSON')
  })
})

describe('names cut inside a multi-byte character', () => {
  it('decode with U+FFFD instead of losing the packet (plaintext and encrypted)', () => {
    // MapReport { long_name: "Fox " + the first 2 bytes of 🦊 } — what a 24-byte cut can leave.
    const name = new Uint8Array([0x46, 0x6f, 0x78, 0x20, 0xf0, 0x9f])
    const report = new Uint8Array([0x0a, name.length, ...name])
    const codec = createCodec()
    const plain = encodeEnvelope({
      from: 1,
      id: 0,
      gatewayId: '!00000001',
      encrypt: false,
      portnum: PortNum.MAP_REPORT_APP,
      payload: report,
    })
    const p = codec.decode({ topic: 'msh/US/2/map/', payload: plain })
    expect(p.ok && p.value.app).toMatchObject({
      type: 'mapreport',
      mapReport: { longName: 'Fox \uFFFD' },
    })
    const user = new Uint8Array([0x12, name.length, ...name])
    const enc = encodeEnvelope({
      from: 2,
      id: 9,
      gatewayId: '!00000001',
      portnum: PortNum.NODEINFO_APP,
      payload: user,
      bitfield: 1,
    })
    const q = codec.decode({ topic: 'msh/US/2/e/LongFast/!00000001', payload: enc })
    expect(q.ok && q.value.app).toMatchObject({
      type: 'nodeinfo',
      user: { longName: 'Fox \uFFFD' },
    })
  })
})
