import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type AppPayload,
  type DecodedPacket,
  isPlausibleFix,
  nodeIdFromNum,
  portnumName,
  precisionRadiusM,
} from '../index.js'
import { VARIANT_GROUP } from './extract.js'
import { packPacket, unpackPacket } from './packing.js'

// --- The reference: packPacket as it was before it was made cheaper (its output is the format). ---

const REF_FIELDS = [
  'kind',
  'from',
  'to',
  'id',
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
  'portnum',
  'bitfield',
  'okToMqtt',
  'payload',
  'keyName',
  'hopsAway',
  'receptionClass',
  'app',
  'priority',
  'nextHop',
  'relayNode',
  'pkiEncrypted',
  'publicKey',
  'transportMechanism',
  'wantResponse',
  'dest',
  'source',
  'requestId',
  'replyId',
  'emoji',
] as const
const REF_INDEX = new Map<string, number>(REF_FIELDS.map((f, i) => [f, i + 2]))
const POSITION_DERIVED = ['latitude', 'longitude', 'altitude', 'precisionBits', 'radiusM'] as const

function refPositionDegrees(position: Record<string, unknown>): Record<string, number> {
  const lat = typeof position.latitudeI === 'number' ? position.latitudeI / 1e7 : 0
  const lon = typeof position.longitudeI === 'number' ? position.longitudeI / 1e7 : 0
  const fix = isPlausibleFix(lat, lon)
  const bits = position.precisionBits as number | undefined
  const out: Record<string, number> = {}
  if (fix) {
    out.latitude = lat
    out.longitude = lon
  }
  if (typeof position.altitude === 'number') out.altitude = position.altitude
  if (typeof bits === 'number') out.precisionBits = bits
  const radius = precisionRadiusM(bits)
  if (fix && radius !== undefined) out.radiusM = radius
  return out
}

function refPackApp(app: AppPayload): [unknown, number] {
  const a = app as unknown as Record<string, unknown>
  if (app.type === 'position' && app.position && typeof app.position === 'object') {
    const derived = refPositionDegrees(app.position)
    if (POSITION_DERIVED.every((k) => a[k] === derived[k])) {
      const { latitude, longitude, altitude, precisionBits, radiusM, ...rest } = app
      return [rest, 32]
    }
  }
  if (app.type === 'telemetry' && app.telemetry && typeof app.telemetry === 'object') {
    const group =
      app.telemetry[VARIANT_GROUP[app.variant]] ?? (app.variant === 'unknown' ? {} : undefined)
    if (
      group !== undefined &&
      (group === app.metrics || JSON.stringify(group) === JSON.stringify(app.metrics))
    ) {
      const { metrics, ...rest } = app
      return [rest, 64]
    }
  }
  return [app, 0]
}

function refEnvelopeTopic(p: Record<string, unknown>): string | undefined {
  const { root, channelId, gatewayId } = p
  return typeof root === 'string' && typeof channelId === 'string' && typeof gatewayId === 'string'
    ? `${root}/2/e/${channelId}/${gatewayId}`
    : undefined
}

function refPackPacket(packet: DecodedPacket): string {
  const p = packet as unknown as Record<string, unknown>
  let flags = 0
  let rest: Record<string, unknown> | undefined
  const values: unknown[] = [1, 0]
  for (const k of REF_FIELDS) {
    const v = p[k]
    if (v === undefined) values.push(null)
    else if (v === null) {
      values.push(null)
      rest ??= {}
      rest[k] = null
    } else values.push(v)
  }
  if (typeof p.from === 'number' && p.fromId === nodeIdFromNum(p.from)) flags |= 1
  if (typeof p.to === 'number' && p.toId === nodeIdFromNum(p.to)) flags |= 2
  if (
    typeof p.portnum === 'number' &&
    p.portnumName !== undefined &&
    p.portnumName === portnumName(p.portnum)
  ) {
    flags |= 4
  }
  if (p.topic !== undefined && p.topic === refEnvelopeTopic(p)) {
    flags |= 8
    values[REF_INDEX.get('topic') as number] = null
  }
  if (p.keyName !== undefined && p.keyName === p.channelId) {
    flags |= 16
    values[REF_INDEX.get('keyName') as number] = null
  }
  if (p.app !== null && typeof p.app === 'object') {
    const [app, appFlags] = refPackApp(p.app as AppPayload)
    flags |= appFlags
    values[REF_INDEX.get('app') as number] = app
  }
  for (const k in p) {
    if (REF_INDEX.has(k) || p[k] === undefined) continue
    if (k === 'fromId' && flags & 1) continue
    if (k === 'toId' && flags & 2) continue
    if (k === 'portnumName' && flags & 4) continue
    rest ??= {}
    rest[k] = p[k]
  }
  values[1] = flags
  while (values.length > 2 && values[values.length - 1] === null) values.pop()
  if (rest) {
    while (values.length < REF_FIELDS.length + 2) values.push(null)
    values.push(rest)
  }
  return JSON.stringify(values)
}

// --- Arbitrary packets: mostly shaped like decoded ones, with every derivable field sometimes off. ---

/** JSON-safe numbers (`wild`: also NaN, ±Infinity, -0). */
const num = (wild: boolean) =>
  wild
    ? fc.oneof(
        fc.integer({ min: -5, max: 0x1_0000_0005 }),
        fc.double(),
        fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 0xffffffff),
      )
    : fc.oneof(
        fc.integer({ min: -5, max: 0x1_0000_0005 }),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
      )

/** Short strings that mix the characters topics and node ids are made of. */
const piece = fc.string({
  unit: fc.constantFrom('a', 'B', '/', '2', 'e', '!', 'f', '0', 'é'),
  maxLength: 6,
})

const maybe = <T>(a: fc.Arbitrary<T>, wild: boolean) =>
  wild ? fc.oneof(a, fc.constant(undefined), fc.constant(null)) : fc.option(a, { nil: undefined })

/** A node id for `n`: its own, a near miss, or anything. */
const nodeIdFor = (n: unknown) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant(typeof n === 'number' ? nodeIdFromNum(n) : '!00000000') },
    fc.constant(typeof n === 'number' ? nodeIdFromNum(n).toUpperCase() : '!0000000A'),
    fc.constant(typeof n === 'number' ? nodeIdFromNum(n).slice(0, 8) : '!'),
    fc.constant(typeof n === 'number' ? `${nodeIdFromNum(n)}0` : '!ffffffff0'),
    fc.constant(typeof n === 'number' ? nodeIdFromNum(n).replace('!', '#') : '#ffffffff'),
    fc.constant(typeof n === 'number' ? nodeIdFromNum(n + 1) : ''),
    fc
      .string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: 8, maxLength: 8 })
      .map((h) => `!${h}`),
    fc.string({ maxLength: 10 }),
    fc.constant(undefined),
  )

const metricsValue = (wild: boolean): fc.Arbitrary<unknown> =>
  wild
    ? fc.oneof(
        num(true),
        fc.constant(null),
        fc.constant(undefined),
        fc.string({ maxLength: 3 }),
        fc.array(fc.oneof(num(true), fc.constant(undefined), fc.constant(null)), { maxLength: 3 }),
        fc.record({ x: num(true), y: fc.oneof(num(true), fc.constant(undefined)) }),
        fc.constant(new Date(0)),
        fc.constant({ toJSON: () => 1 }),
      )
    : fc.oneof(
        num(false),
        fc.boolean(),
        fc.string({ maxLength: 3 }),
        fc.array(num(false), { maxLength: 3 }),
      )

const metricsObject = (wild: boolean) =>
  fc.dictionary(fc.constantFrom('temperature', 'voltage', 'x', 'y', 'a1'), metricsValue(wild), {
    maxKeys: 4,
  })

/** How a packet's `metrics` relate to its telemetry group. */
const metricsLike = (group: Record<string, unknown> | undefined, wild: boolean) => {
  const g = group ?? {}
  const keys = Object.keys(g)
  return fc.oneof(
    fc.constant(group),
    fc.constant(structuredClone(JSON.parse(JSON.stringify(g)) as Record<string, unknown>)),
    fc.constant(Object.fromEntries(keys.reverse().map((k) => [k, g[k]]))),
    fc.constant({ ...g, extra: wild ? undefined : 1 }),
    fc.constant({ ...g, [keys[0] ?? 'temperature']: Number.NaN }),
    fc.constant({ ...g, [keys[0] ?? 'temperature']: null }),
    // Arrays one element longer or shorter (an undefined element writes null).
    fc.constantFrom(undefined, 1).map((x) =>
      Object.fromEntries(
        keys.map((k) => {
          const v = g[k]
          return [k, Array.isArray(v) ? (v.length && x === undefined ? v.slice(1) : [...v, x]) : v]
        }),
      ),
    ),
    metricsObject(wild),
  )
}

const telemetryApp = (wild: boolean) =>
  fc
    .record({
      variant: wild
        ? fc.constantFrom(...(Object.keys(VARIANT_GROUP) as (keyof typeof VARIANT_GROUP)[]), 'odd')
        : fc.constantFrom(...(Object.keys(VARIANT_GROUP) as (keyof typeof VARIANT_GROUP)[])),
      group: metricsObject(wild),
      time: fc.option(fc.integer(), { nil: undefined }),
      present: fc.boolean(),
    })
    .chain(({ variant, group, time, present }) => {
      const name = VARIANT_GROUP[variant as keyof typeof VARIANT_GROUP]
      const telemetry: Record<string, unknown> = { time }
      if (present && name) telemetry[name] = group
      return metricsLike(present && name ? group : undefined, wild).map((metrics) => ({
        type: 'telemetry',
        telemetry,
        variant,
        ...(metrics === undefined ? {} : { metrics }),
      }))
    })

const positionApp = (wild: boolean) =>
  fc
    .record({
      latitudeI: fc.oneof(
        fc.integer({ min: -900_000_000, max: 900_000_000 }),
        fc.constantFrom(0, 1_000_000_000),
        wild ? fc.constantFrom(undefined, Number.NaN, '12') : fc.constant(undefined),
      ),
      longitudeI: fc.oneof(
        fc.integer({ min: -1_800_000_000, max: 1_800_000_000 }),
        fc.constantFrom(0, 2_000_000_000),
        fc.constant(undefined),
      ),
      altitude: fc.oneof(
        fc.integer({ min: -100, max: 9000 }),
        fc.constant(undefined),
        wild ? fc.constantFrom('12', null) : fc.constant(undefined),
      ),
      precisionBits: fc.oneof(
        fc.integer({ min: 0, max: 33 }),
        fc.constant(undefined),
        wild ? fc.constantFrom('14', Number.NaN) : fc.constant(undefined),
      ),
      time: fc.option(fc.integer(), { nil: undefined }),
      tweak: fc.constantFrom(
        'none',
        'none',
        'none',
        'latitude',
        'longitude',
        'altitude',
        'precisionBits',
        'radiusM',
        'raw',
      ),
      wrong: fc.oneof(num(wild), fc.constant(undefined)),
    })
    .map(({ tweak, wrong, ...position }) => {
      const pos = Object.fromEntries(
        Object.entries(position).filter(([, v]) => v !== undefined),
      ) as Record<string, unknown>
      const app: Record<string, unknown> = {
        type: 'position',
        position: pos,
        ...refPositionDegrees(pos),
      }
      if (tweak === 'raw') {
        // The position's own values, numbers or not.
        app.altitude = position.altitude
        app.precisionBits = position.precisionBits
      } else if (tweak !== 'none') app[tweak] = wrong
      return app
    })

const appArb = (wild: boolean): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 3, arbitrary: positionApp(wild) },
    { weight: 3, arbitrary: telemetryApp(wild) },
    fc.record({ type: fc.constant('text'), text: fc.string(), isReaction: fc.boolean() }),
    fc.record({ type: fc.constantFrom('position', 'telemetry'), position: fc.constant(null) }),
    wild ? fc.oneof(fc.constant(null), fc.string(), fc.anything()) : fc.jsonValue(),
  )

const packetArb = (wild: boolean): fc.Arbitrary<DecodedPacket> =>
  fc
    .record({
      base: fc.record(
        {
          kind: fc.constantFrom('envelope', 'mapreport'),
          from: wild ? fc.oneof(num(true), fc.string()) : num(false),
          to: num(wild),
          id: num(wild),
          channel: num(wild),
          hopLimit: fc.integer({ min: 0, max: 7 }),
          hopStart: fc.integer({ min: 0, max: 7 }),
          wantAck: fc.boolean(),
          viaMqtt: fc.boolean(),
          rxTime: num(wild),
          rxSnr: num(wild),
          rxRssi: num(wild),
          encrypted: fc.boolean(),
          portnum: wild ? fc.oneof(num(true), fc.constant('3')) : fc.integer({ min: -1, max: 600 }),
          bitfield: fc.integer({ min: 0, max: 3 }),
          okToMqtt: fc.boolean(),
          payload: fc.base64String({ maxLength: 12 }),
          hopsAway: fc.integer({ min: 0, max: 7 }),
          receptionClass: fc.constantFrom('direct', 'relayed', 'self'),
          app: appArb(wild),
          priority: fc.integer(),
          nextHop: fc.integer({ min: 0, max: 255 }),
          relayNode: fc.integer({ min: 0, max: 255 }),
          pkiEncrypted: fc.boolean(),
          publicKey: fc.base64String({ maxLength: 8 }),
          transportMechanism: fc.integer({ min: 0, max: 7 }),
          wantResponse: fc.boolean(),
          dest: fc.nat(),
          source: fc.nat(),
          requestId: fc.nat(),
          replyId: fc.nat(),
          emoji: fc.nat(),
        },
        { requiredKeys: ['kind', 'from', 'to', 'id', 'app'] },
      ),
      root: maybe(piece, wild),
      channelId: maybe(piece, wild),
      gatewayId: maybe(piece, wild),
      topicHow: fc.constantFrom(
        'derived',
        'derived',
        'longer',
        'shorter',
        'split',
        'slash',
        'other',
        'none',
      ),
      topicOther: piece,
      keyNameHow: fc.constantFrom('channel', 'channel', 'other', 'none', 'null'),
      portnumNameHow: fc.constantFrom('derived', 'derived', 'other', 'none'),
      nulls: fc.subarray([...REF_FIELDS]),
      extra: fc.dictionary(
        fc.constantFrom('raw', 'extraField', 'decoded', 'zz', '__x'),
        wild ? fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.constant(null)) : fc.jsonValue(),
        { maxKeys: 3 },
      ),
      order: fc.constantFrom('as built', 'reversed', 'ids first'),
    })
    .chain((g) =>
      fc.tuple(nodeIdFor(g.base.from), nodeIdFor(g.base.to)).map(([fromId, toId]) => {
        const p: Record<string, unknown> = { ...g.base, fromId, toId }
        if (g.root !== undefined) p.root = g.root
        if (g.channelId !== undefined) p.channelId = g.channelId
        if (g.gatewayId !== undefined) p.gatewayId = g.gatewayId
        const derived = `${g.root}/2/e/${g.channelId}/${g.gatewayId}`
        if (g.topicHow === 'derived') p.topic = derived
        else if (g.topicHow === 'longer') p.topic = `${derived}/`
        else if (g.topicHow === 'shorter') p.topic = derived.slice(0, -1)
        else if (g.topicHow === 'split') p.topic = `${g.root}/2/e/${g.channelId}${g.gatewayId}/`
        else if (g.topicHow === 'slash') p.topic = `${g.root}/2/e/${g.channelId}_${g.gatewayId}`
        else if (g.topicHow === 'other') p.topic = g.topicOther
        if (g.keyNameHow === 'channel') p.keyName = g.channelId
        else if (g.keyNameHow === 'other') p.keyName = g.topicOther
        else if (g.keyNameHow === 'null') p.keyName = null
        if (g.portnumNameHow === 'derived' && typeof g.base.portnum === 'number') {
          p.portnumName = portnumName(g.base.portnum)
        } else if (g.portnumNameHow === 'other') p.portnumName = 'TEXT_MESSAGE_APP'
        if (wild) for (const k of g.nulls) p[k] = null
        Object.assign(p, g.extra)
        let entries = Object.entries(p)
        if (g.order === 'reversed') entries = entries.reverse()
        if (g.order === 'ids first') {
          entries = [
            ...entries.filter(([k]) => k.endsWith('Id')),
            ...entries.filter(([k]) => !k.endsWith('Id')),
          ]
        }
        return Object.fromEntries(entries) as unknown as DecodedPacket
      }),
    )

/** Runs per property (raise with PACKING_RUNS for a longer search). */
const RUNS = Number(process.env.PACKING_RUNS ?? 1000)

describe('packPacket (property)', () => {
  it('writes exactly what the reference implementation wrote, for any packet', () => {
    fc.assert(
      fc.property(packetArb(true), (p) => {
        let want: string | Error
        try {
          want = refPackPacket(p)
        } catch (e) {
          want = e as Error
        }
        if (want instanceof Error) expect(() => packPacket(p)).toThrow(want.constructor as never)
        else expect(packPacket(p)).toBe(want)
      }),
      { numRuns: RUNS },
    )
  }, 60_000)

  it('round-trips any JSON-shaped packet: unpack(pack(p)) is p as JSON', () => {
    fc.assert(
      fc.property(packetArb(false), (p) => {
        expect(unpackPacket(packPacket(p))).toEqual(JSON.parse(JSON.stringify(p)))
      }),
      { numRuns: RUNS },
    )
  }, 60_000)

  it('drops telemetry metrics exactly when they write the same JSON as their group', () => {
    const f = () => 1
    function toJSON(this: { v: number }) {
      return this.v
    }
    // Objects that differ only in what their (shared) toJSON reads.
    const hidden = (v: number) => Object.defineProperty({ toJSON }, 'v', { value: v })
    const same: [unknown, unknown][] = [
      [{ a: [1, 2] }, { a: [1, 2] }],
      [{ a: Number.NaN }, { a: null }],
      [{ a: Number.NaN }, { a: Number.POSITIVE_INFINITY }],
      [{ a: 1, b: undefined }, { a: 1 }],
      [{ a: [undefined] }, { a: [null] }],
      [{ a: 0 }, { a: -0 }],
      [{ a: { toJSON: f } }, { a: 1 }],
      [{ a: new Date(5) }, { a: new Date(5) }],
      [{ a: f }, {}],
    ]
    const differ: [unknown, unknown][] = [
      [{ a: [1, 2] }, { a: [1, 2, 3] }],
      [{ a: [1, 2, 3] }, { a: [1, 2] }],
      [{ a: [1] }, { a: [1, undefined] }],
      [
        { a: 1, b: 2 },
        { b: 2, a: 1 },
      ],
      [{ a: 1 }, { a: 1, b: null }],
      [{ a: 1 }, { a: '1' }],
      [{ a: new Date(5) }, { a: new Date(6) }],
      [{ a: { toJSON: () => 1 } }, { a: { toJSON: () => 2 } }],
      [{ a: [{ b: 1 }] }, { a: [{ b: 2 }] }],
      [{}, []],
      [{ a: Object(1) }, { a: Object(2) }],
      [{ a: hidden(1) }, { a: hidden(2) }],
    ]
    for (const [i, [group, metrics]] of [...same, ...differ].entries()) {
      const p = {
        kind: 'envelope',
        from: 1,
        to: 2,
        id: 3,
        app: { type: 'telemetry', telemetry: { deviceMetrics: group }, variant: 'device', metrics },
      } as unknown as DecodedPacket
      const flags = (JSON.parse(packPacket(p)) as number[])[1] as number
      expect([i, packPacket(p)]).toEqual([i, refPackPacket(p)])
      expect([i, (flags & 64) !== 0]).toEqual([i, i < same.length])
    }
  })

  it('leaves out what is derivable, and only that', () => {
    const from = 0xfa75f7c0
    const p = {
      kind: 'envelope',
      from,
      fromId: nodeIdFromNum(from),
      to: -1,
      toId: '!ffffffff',
      id: 1,
      root: 'msh/EU',
      channelId: 'LongFast',
      gatewayId: '!a0c0ffee',
      topic: 'msh/EU/2/e/LongFast/!a0c0ffee',
      keyName: 'LongFast',
      portnum: 67,
      portnumName: 'TELEMETRY_APP',
      app: {
        type: 'telemetry',
        telemetry: { deviceMetrics: { batteryLevel: 90, voltage: 4.1 } },
        variant: 'device',
        metrics: { batteryLevel: 90, voltage: 4.1 },
      },
    } as unknown as DecodedPacket
    const packed = JSON.parse(packPacket(p)) as unknown[]
    expect(packed[1]).toBe(1 | 2 | 4 | 8 | 16 | 64)
    expect(packPacket(p)).not.toContain('TELEMETRY_APP')
    expect(packPacket(p)).not.toContain('!fa75f7c0')
    expect(unpackPacket(packPacket(p))).toEqual(p)
    const upper = { ...p, fromId: '!FA75F7C0', topic: 'msh/EU/2/e/LongFast/!a0c0ffeE' }
    expect((JSON.parse(packPacket(upper)) as unknown[])[1]).toBe(2 | 4 | 16 | 64)
    expect(unpackPacket(packPacket(upper))).toEqual(upper)
  })
})
