import { createCipheriv } from 'node:crypto'
import { create, type DescMessage, fromBinary, toBinary, toJson } from '@bufbuild/protobuf'
import {
  bytesToBase64,
  DECODE_ERROR_CODES,
  type PartialPacket,
  PortNum,
  type Reception,
} from '@meshtap/protocol'
import { Mesh, Mqtt, PaxCount, StoreForward, Telemetry } from '@meshtastic/protobufs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { copyReception, createCodec, derive } from './decode.js'
import { encodeAppPayload, encodeEnvelope } from './encode.js'

const f32 = fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }).map(Math.fround)
const u32 = fc.nat(0xffffffff)
const i32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })
const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 })

/** Port → [schema, key of the app payload holding the message, arbitrary canonical-JSON message]. */
const PORTS: [number, DescMessage, string, fc.Arbitrary<Record<string, unknown>>][] = [
  [
    PortNum.POSITION_APP,
    Mesh.PositionSchema,
    'position',
    fc.record(
      {
        latitudeI: fc.integer({ min: -900000000, max: 900000000 }),
        longitudeI: fc.integer({ min: -1800000000, max: 1800000000 }),
        altitude: fc.integer({ min: -500, max: 9000 }),
        time: u32,
        precisionBits: fc.integer({ min: 0, max: 32 }),
        satsInView: fc.nat(40),
        groundSpeed: fc.nat(300),
        locationSource: fc.constantFrom('LOC_INTERNAL', 'LOC_EXTERNAL', 'LOC_MANUAL'),
      },
      { requiredKeys: ['time'] },
    ),
  ],
  [
    PortNum.NODEINFO_APP,
    Mesh.UserSchema,
    'user',
    fc.record(
      {
        id: u32.map((n) => `!${n.toString(16).padStart(8, '0')}`),
        longName: text,
        shortName: fc.string({ minLength: 1, maxLength: 4 }),
        hwModel: fc.constantFrom('TBEAM', 'HELTEC_V3', 'RAK4631', 'T_ECHO', 'STATION_G2'),
        role: fc.constantFrom('CLIENT', 'ROUTER', 'CLIENT_MUTE', 'TRACKER'),
        publicKey: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(bytesToBase64),
        isLicensed: fc.boolean(),
      },
      { requiredKeys: ['id'] },
    ),
  ],
  [
    PortNum.ROUTING_APP,
    Mesh.RoutingSchema,
    'routing',
    fc.oneof(
      fc.record({
        errorReason: fc.constantFrom('NONE', 'NO_ROUTE', 'MAX_RETRANSMIT', 'NO_CHANNEL'),
      }),
      fc.record({ routeRequest: fc.record({ route: fc.array(u32, { maxLength: 6 }) }) }),
    ),
  ],
  [
    PortNum.TELEMETRY_APP,
    Telemetry.TelemetrySchema,
    'telemetry',
    fc.oneof(
      fc.record({
        time: u32,
        deviceMetrics: fc.record({
          batteryLevel: fc.nat(101),
          voltage: f32,
          channelUtilization: f32,
          airUtilTx: f32,
          uptimeSeconds: u32,
        }),
      }),
      fc.record({
        time: u32,
        environmentMetrics: fc.record({
          temperature: f32,
          relativeHumidity: f32,
          barometricPressure: f32,
        }),
      }),
      fc.record({
        time: u32,
        powerMetrics: fc.record({ ch1Voltage: f32, ch1Current: f32, ch3Voltage: f32 }),
      }),
      fc.record({
        time: u32,
        airQualityMetrics: fc.record({ pm25Standard: fc.nat(1000), co2: fc.nat(5000) }),
      }),
    ),
  ],
  [
    PortNum.TRACEROUTE_APP,
    Mesh.RouteDiscoverySchema,
    'routeDiscovery',
    fc.record(
      {
        route: fc.array(u32, { minLength: 1, maxLength: 7 }),
        snrTowards: fc.array(fc.integer({ min: -128, max: 127 }), { maxLength: 8 }),
        routeBack: fc.array(u32, { maxLength: 7 }),
        snrBack: fc.array(fc.integer({ min: -128, max: 127 }), { maxLength: 8 }),
      },
      { requiredKeys: ['route'] },
    ),
  ],
  [
    PortNum.NEIGHBORINFO_APP,
    Mesh.NeighborInfoSchema,
    'neighborInfo',
    fc.record({
      nodeId: u32,
      lastSentById: u32,
      nodeBroadcastIntervalSecs: fc.nat(86400),
      neighbors: fc.array(fc.record({ nodeId: u32, snr: f32 }), { maxLength: 8 }),
    }),
  ],
  [
    PortNum.MAP_REPORT_APP,
    Mqtt.MapReportSchema,
    'mapReport',
    fc.record(
      {
        longName: text,
        shortName: fc.string({ minLength: 1, maxLength: 4 }),
        firmwareVersion: fc.constant('2.7.15.567b8ea'),
        region: fc.constantFrom('US', 'EU_868', 'ANZ'),
        latitudeI: i32,
        longitudeI: i32,
        positionPrecision: fc.integer({ min: 12, max: 15 }),
        numOnlineLocalNodes: fc.nat(200),
      },
      { requiredKeys: ['longName'] },
    ),
  ],
  [
    PortNum.WAYPOINT_APP,
    Mesh.WaypointSchema,
    'waypoint',
    fc.record({
      id: fc.integer({ min: 1, max: 2 ** 31 }),
      latitudeI: i32,
      longitudeI: i32,
      name: text,
      description: text,
    }),
  ],
  [
    PortNum.STORE_FORWARD_APP,
    StoreForward.StoreAndForwardSchema,
    'storeForward',
    fc.record({
      rr: fc.constantFrom('ROUTER_HEARTBEAT', 'CLIENT_HISTORY', 'ROUTER_STATS'),
      heartbeat: fc.record({ period: fc.nat(3600), secondary: fc.nat(1) }),
    }),
  ],
  [
    PortNum.PAXCOUNTER_APP,
    PaxCount.PaxcountSchema,
    'paxcount',
    fc.record({ wifi: fc.nat(1000), ble: fc.nat(1000), uptime: u32 }),
  ],
]
const TEXT_PORTS = [
  PortNum.TEXT_MESSAGE_APP,
  PortNum.ALERT_APP,
  PortNum.DETECTION_SENSOR_APP,
  PortNum.RANGE_TEST_APP,
  PortNum.REPLY_APP,
]

const psk = fc.oneof(
  fc.integer({ min: 1, max: 255 }).map((n) => bytesToBase64(new Uint8Array([n]))),
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map(bytesToBase64),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map(bytesToBase64),
  fc.uint8Array({ minLength: 2, maxLength: 31 }).map(bytesToBase64),
)
const channelName = fc.string({
  unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_'),
  minLength: 1,
  maxLength: 11,
})
const header = fc.record({
  from: fc.integer({ min: 1, max: 0xfffffffe }),
  id: fc.integer({ min: 1, max: 0xffffffff }),
  hopStart: fc.integer({ min: 0, max: 7 }),
  rxSnr: f32,
  rxRssi: fc.integer({ min: -140, max: 0 }),
  bitfield: fc.constantFrom(0, 1, 3),
  wantResponse: fc.boolean(),
})

describe('codec round trips: encode → encrypt → decrypt → decode', () => {
  for (const [portnum, schema, key, message] of PORTS) {
    it(`port ${portnum} (${schema.name}) on any channel key`, () => {
      fc.assert(
        fc.property(message, header, channelName, psk, (msg, h, name, channelPsk) => {
          const bytes = encodeAppPayload(portnum, msg)
          const codec = createCodec({ keys: [{ name, psk: channelPsk }] })
          const env = encodeEnvelope({
            ...h,
            wantResponse: h.wantResponse || bytes.length === 0,
            portnum,
            payload: bytes,
            channel: { name, psk: channelPsk },
            gatewayId: '!a0c0ffee',
          })
          const r = codec.decode({ topic: `msh/US/2/e/${name}/!a0c0ffee`, payload: env })
          if (!r.ok) throw new Error(`${r.error.error.code}: ${r.error.error.message}`)
          expect(r.value.portnum).toBe(portnum)
          expect(r.value.from).toBe(h.from)
          expect(r.value.id).toBe(h.id)
          expect((r.value.app as unknown as Record<string, unknown>)[key]).toEqual(
            toJson(schema, fromBinary(schema, bytes)),
          )
        }),
        { numRuns: 60 },
      )
    })
  }

  it('text ports keep any Unicode text', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...TEXT_PORTS),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }),
        header,
        psk,
        (portnum, t, h, channelPsk) => {
          const codec = createCodec({ keys: [{ name: 'Chat', psk: channelPsk }] })
          const env = encodeEnvelope({
            ...h,
            portnum,
            payload: t,
            channel: { name: 'Chat', psk: channelPsk },
            gatewayId: '!a0c0ffee',
          })
          const r = codec.decode({ topic: 'msh/US/2/e/Chat/!a0c0ffee', payload: env })
          expect(r.ok && r.value.app).toMatchObject({ text: t })
        },
      ),
      { numRuns: 200 },
    )
  })

  it('ports without a schema come through as opaque bytes', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(
          PortNum.SERIAL_APP,
          PortNum.ATAK_PLUGIN,
          PortNum.PRIVATE_APP,
          PortNum.IP_TUNNEL_APP,
        ),
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        header,
        (portnum, bytes, h) => {
          const codec = createCodec()
          const r = codec.decode({
            topic: 'msh/US/2/e/LongFast/!a0c0ffee',
            payload: encodeEnvelope({ ...h, portnum, payload: bytes, gatewayId: '!a0c0ffee' }),
          })
          expect(r.ok && r.value.app).toEqual({ type: 'opaque', bytes: bytesToBase64(bytes) })
        },
      ),
      { numRuns: 100 },
    )
  })
})

describe('the codec never throws', () => {
  const codec = createCodec({ keys: [{ name: 'Ham', psk: '' }] })
  const codes = new Set<string>(DECODE_ERROR_CODES)
  const check = (r: ReturnType<typeof codec.decode>) => {
    if (!r.ok) expect(codes.has(r.error.error.code)).toBe(true)
  }
  const kind = fc.constantFrom(
    undefined,
    'envelope',
    'mapreport',
    'meshpacket',
    'json-uplink',
    'data',
  ) as fc.Arbitrary<'envelope' | 'mapreport' | 'meshpacket' | 'json-uplink' | 'data' | undefined>
  it('on random bytes, topics and kinds', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.option(fc.string({ maxLength: 80 })),
        kind,
        (payload, topic, k) => {
          check(
            codec.decode({
              payload,
              ...(topic !== null ? { topic } : {}),
              ...(k ? { kind: k } : {}),
            }),
          )
        },
      ),
      { numRuns: 3000 },
    )
  })
  it('on mutated and truncated real envelopes', () => {
    const env = encodeEnvelope({
      from: 5,
      id: 6,
      portnum: PortNum.POSITION_APP,
      payload: { latitudeI: 1, longitudeI: 2, time: 3 },
      gatewayId: '!00000005',
      hopStart: 3,
      hopLimit: 2,
    })
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(env.length - 1), fc.nat(255)), { maxLength: 4 }),
        fc.nat(env.length),
        (flips, cut) => {
          const m = env.slice(0, Math.max(1, cut))
          for (const [i, v] of flips) if (i < m.length) m[i] = v
          check(codec.decode({ topic: 'msh/2/e/LongFast/!00000005', payload: m }))
        },
      ),
      { numRuns: 3000 },
    )
  })
  it('on JSON garbage for the JSON uplink', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        check(
          codec.decode({
            topic: 'msh/2/json/LongFast/!00000005',
            payload: new TextEncoder().encode(JSON.stringify(v)),
          }),
        )
      }),
      { numRuns: 1000 },
    )
  })
})

describe('plausibility: random ciphertext on the default channel', () => {
  it('accepts at most 1 in 100,000 envelopes of random ciphertext (deterministic sample)', () => {
    const codec = createCodec()
    // A deterministic stream of "random" bytes: the AES-CTR keystream of a fixed key.
    const prng = createCipheriv('aes-128-ctr', new Uint8Array(16).fill(7), new Uint8Array(16))
    const zeros = new Uint8Array(256)
    let accepted = 0
    for (let i = 0; i < 100_000; i++) {
      const r = new Uint8Array(prng.update(zeros))
      const dv = new DataView(r.buffer, r.byteOffset)
      const len = 1 + ((r[0] as number) % 237)
      const packet = create(Mesh.MeshPacketSchema, {
        from: dv.getUint32(4) || 1,
        to: 0xffffffff,
        id: dv.getUint32(8) || 1,
        channel: 8,
        hopStart: 3,
        hopLimit: 3,
        payloadVariant: { case: 'encrypted', value: r.slice(16, 16 + len) },
      })
      const envelope = create(Mqtt.ServiceEnvelopeSchema, {
        packet,
        channelId: 'LongFast',
        gatewayId: '!a0c0ffee',
      })
      const out = codec.decode({
        topic: 'msh/US/2/e/LongFast/!a0c0ffee',
        payload: toBinary(Mqtt.ServiceEnvelopeSchema, envelope),
      })
      if (out.ok) accepted++
      else expect(out.error.error.code).toBe('NO_MATCHING_KEY')
    }
    expect(accepted).toBeLessThanOrEqual(1)
  }, 60_000) // 100,000 decodes: ~5 s on a loaded 2-core machine, more than the default timeout
})

describe('copyReception (the ingest fast path for gateway copies)', () => {
  const codec = createCodec()
  it('gives exactly the reception derive() + the header would, for any header', () => {
    fc.assert(
      fc.property(
        fc.record({
          from: u32,
          id: fc.integer({ min: 1, max: 0xffffffff }),
          hopLimit: fc.integer({ min: 0, max: 9 }),
          hopStart: fc.integer({ min: 0, max: 9 }),
          rxSnr: fc.oneof(f32, fc.constant(0)),
          rxRssi: fc.oneof(fc.integer({ min: -140, max: 0 }), fc.constant(0)),
          rxTime: fc.oneof(u32, fc.constant(0)),
          relayNode: fc.oneof(fc.nat(255), fc.constant(0)),
          viaMqtt: fc.boolean(),
          selfGateway: fc.boolean(),
          upperCaseGateway: fc.boolean(),
          topicGateway: fc.boolean(),
          hasBitfield: fc.boolean(),
          mapreport: fc.boolean(),
          source: fc.option(fc.constant('mqtt://broker'), { nil: undefined }),
        }),
        (x) => {
          let gatewayId = x.selfGateway
            ? `!${x.from.toString(16).padStart(8, '0')}`
            : `!${((x.from ^ 0x5a5a5a5a) >>> 0).toString(16).padStart(8, '0')}`
          if (x.upperCaseGateway) gatewayId = gatewayId.toUpperCase()
          const root = x.mapreport ? 'msh/US/2/map/' : `msh/US/2/e/LongFast/${gatewayId}`
          const payload = encodeEnvelope({
            from: x.from,
            id: x.id,
            portnum: PortNum.TEXT_MESSAGE_APP,
            payload: 'hi',
            hopLimit: x.hopLimit,
            hopStart: x.hopStart,
            rxSnr: x.rxSnr,
            rxRssi: x.rxRssi,
            rxTime: x.rxTime,
            relayNode: x.relayNode,
            viaMqtt: x.viaMqtt,
            gatewayId: x.topicGateway ? '' : gatewayId,
          })
          const view = codec.inspect({ topic: root, payload })
          const fast = copyReception(view, 'k', 1234, x.source, x.hasBitfield)
          // The slow path, as the ingest took it before: build the header, derive, copy fields.
          const h = structuredClone(codec.inspect({ topic: root, payload }).header) as PartialPacket
          if (!h || !fast) {
            expect(fast).toBe(h ? fast : undefined)
            return
          }
          derive(h, x.hasBitfield)
          const slow: Reception = {
            packetKey: 'k',
            rxTime: h.rxTime ?? 0,
            receivedAt: 1234,
            rxSnr: h.rxSnr ?? 0,
            rxRssi: h.rxRssi ?? 0,
            hopLimit: h.hopLimit ?? 0,
            hopStart: h.hopStart ?? 0,
            receptionClass: h.receptionClass ?? 'unknown',
            ...(h.gatewayId !== undefined ? { gatewayId: h.gatewayId } : {}),
            ...(h.topic !== undefined ? { topic: h.topic } : {}),
            ...(x.source !== undefined ? { source: x.source } : {}),
            ...(h.channelId !== undefined ? { channelId: h.channelId } : {}),
            ...(h.relayNode !== undefined ? { relayNode: h.relayNode } : {}),
            ...(h.hopsAway !== undefined ? { hopsAway: h.hopsAway } : {}),
          }
          expect(fast).toStrictEqual(slow)
          // Same fields in the same order (stores and JSON keep the order).
          expect(Object.keys(fast)).toEqual(Object.keys(slow))
        },
      ),
      { numRuns: 3000 },
    )
  })
})

describe('packet headers and payloads (key order, base64)', () => {
  const codec = createCodec({ includeRaw: true })
  it('builds a header with the fields in the same order with or without topic, channel and gateway', () => {
    const order = [
      'kind',
      'from',
      'to',
      'id',
      'fromId',
      'toId',
      'channel',
      'hopLimit',
      'hopStart',
      'wantAck',
      'viaMqtt',
      'rxTime',
      'rxSnr',
      'rxRssi',
      'encrypted',
      'topic',
      'root',
      'channelId',
      'gatewayId',
    ]
    fc.assert(
      fc.property(
        u32,
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.boolean(),
        fc.boolean(),
        fc.string({ minLength: 1, maxLength: 200 }),
        (from, id, withTopic, envGateway, text) => {
          const gatewayId = '!0badcafe'
          const payload = encodeEnvelope({
            from,
            id,
            portnum: PortNum.TEXT_MESSAGE_APP,
            payload: text,
            gatewayId: envGateway ? gatewayId : '',
          })
          const h = codec.inspect({
            ...(withTopic ? { topic: `msh/US/2/e/LongFast/${gatewayId}` } : { kind: 'envelope' }),
            payload,
          }).header as unknown as Record<string, unknown>
          const keys = Object.keys(h)
          expect(keys.slice(0, 15)).toEqual(order.slice(0, 15))
          const rest = order.slice(15).filter((k) => h[k] !== undefined)
          expect(keys.slice(15, 15 + rest.length)).toEqual(rest)
          if (withTopic) expect(rest).toEqual(order.slice(15))
          const r = codec.decode({ topic: `msh/US/2/e/LongFast/${gatewayId}`, payload })
          expect(r.ok).toBe(true)
          if (r.ok) {
            // Node's encoder (in the codec) writes what the protocol's does.
            expect(r.value.payload).toBe(bytesToBase64(new TextEncoder().encode(text)))
            const env = fromBinary(Mqtt.ServiceEnvelopeSchema, payload)
            const v = env.packet?.payloadVariant
            expect(v?.case).toBe('encrypted')
            expect(r.value.raw?.ciphertext).toBe(bytesToBase64(v?.value as Uint8Array))
          }
        },
      ),
      { numRuns: 500 },
    )
  })
})
