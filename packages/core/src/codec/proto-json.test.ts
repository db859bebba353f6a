import type { DescEnum, DescField, DescMessage, MessageInitShape } from '@bufbuild/protobuf'
import {
  create,
  createFileRegistry,
  fromBinary,
  ScalarType,
  toBinary,
  toJson,
} from '@bufbuild/protobuf'
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire'
import {
  type DescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  type FieldDescriptorProtoSchema,
  FileDescriptorProtoSchema,
  file_google_protobuf_timestamp,
} from '@bufbuild/protobuf/wkt'
import { Mesh, Mqtt, PaxCount, StoreForward, Telemetry } from '@meshtastic/protobufs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileJsonDecoder } from './proto-json.js'

// ---------------------------------------------------------------------------------------------
// Synthetic schemas: every scalar type, maps, recursion, proto3 optional, oneofs, fields declared
// out of number order, a sparse field number, proto2 closed enums, and a well-known type.

const T = FieldDescriptorProto_Type
const LABEL_OPTIONAL = FieldDescriptorProto_Label.OPTIONAL
const LABEL_REPEATED = FieldDescriptorProto_Label.REPEATED

type FieldInit = MessageInitShape<typeof FieldDescriptorProtoSchema> & {
  name: string
  number: number
  type: FieldDescriptorProto_Type
}

/** protoc fills in json_name; createFileRegistry relies on it. */
const jsonName = (name: string): string =>
  name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
const field = (init: FieldInit): FieldInit => ({
  label: LABEL_OPTIONAL,
  jsonName: jsonName(init.name),
  ...init,
})
const repeated = (init: FieldInit): FieldInit => field({ ...init, label: LABEL_REPEATED })

const SCALAR_TYPES: [string, FieldDescriptorProto_Type][] = [
  ['double', T.DOUBLE],
  ['float', T.FLOAT],
  ['int64', T.INT64],
  ['uint64', T.UINT64],
  ['int32', T.INT32],
  ['fixed64', T.FIXED64],
  ['fixed32', T.FIXED32],
  ['bool', T.BOOL],
  ['string', T.STRING],
  ['bytes', T.BYTES],
  ['uint32', T.UINT32],
  ['sfixed32', T.SFIXED32],
  ['sfixed64', T.SFIXED64],
  ['sint32', T.SINT32],
  ['sint64', T.SINT64],
]

const mapEntry = (
  name: string,
  key: FieldDescriptorProto_Type,
  value: FieldDescriptorProto_Type,
  typeName?: string,
): MessageInitShape<typeof DescriptorProtoSchema> => ({
  name,
  field: [
    field({ name: 'key', number: 1, type: key }),
    field({ name: 'value', number: 2, type: value, ...(typeName ? { typeName } : {}) }),
  ],
  options: { mapEntry: true },
})

const ALL = '.meshtap.test.AllTypes'
const COLOR = '.meshtap.test.Color'

const testRegistry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: 'meshtap/test.proto',
    package: 'meshtap.test',
    syntax: 'proto3',
    dependency: ['google/protobuf/timestamp.proto'],
    enumType: [
      {
        name: 'Color',
        value: [
          { name: 'COLOR_UNSPECIFIED', number: 0 },
          { name: 'RED', number: 1 },
          { name: 'NEGATIVE', number: -7 },
          { name: 'HUGE', number: 100000 },
        ],
      },
    ],
    messageType: [
      {
        name: 'AllTypes',
        field: [
          // Declared out of number order on purpose, and one sparse field number.
          field({ name: 'late_field', number: 5000, type: T.STRING }),
          ...SCALAR_TYPES.map(([n, type], i) => field({ name: `s_${n}`, number: i + 1, type })),
          field({ name: 'color', number: 16, type: T.ENUM, typeName: COLOR }),
          field({ name: 'child', number: 17, type: T.MESSAGE, typeName: ALL }),
          ...SCALAR_TYPES.map(([n, type], i) => repeated({ name: `r_${n}`, number: 20 + i, type })),
          repeated({ name: 'r_color', number: 40, type: T.ENUM, typeName: COLOR }),
          repeated({ name: 'r_child', number: 41, type: T.MESSAGE, typeName: ALL }),
          ...SCALAR_TYPES.map(([n, type], i) =>
            field({
              name: `o_${n}`,
              number: 50 + i,
              type,
              oneofIndex: 2 + i,
              proto3Optional: true,
            }),
          ),
          field({ name: 'c_string', number: 70, type: T.STRING, oneofIndex: 0 }),
          field({ name: 'c_child', number: 71, type: T.MESSAGE, typeName: ALL, oneofIndex: 0 }),
          field({ name: 'c_sint64', number: 72, type: T.SINT64, oneofIndex: 0 }),
          field({ name: 'c_color', number: 73, type: T.ENUM, typeName: COLOR, oneofIndex: 0 }),
          field({ name: 'd_bytes', number: 74, type: T.BYTES, oneofIndex: 1 }),
          field({ name: 'd_float', number: 75, type: T.FLOAT, oneofIndex: 1 }),
          repeated({
            name: 'm_str_int64',
            number: 80,
            type: T.MESSAGE,
            typeName: `${ALL}.MStrInt64Entry`,
          }),
          repeated({
            name: 'm_int32_child',
            number: 81,
            type: T.MESSAGE,
            typeName: `${ALL}.MInt32ChildEntry`,
          }),
          repeated({
            name: 'm_bool_string',
            number: 82,
            type: T.MESSAGE,
            typeName: `${ALL}.MBoolStringEntry`,
          }),
          repeated({
            name: 'm_sint64_color',
            number: 83,
            type: T.MESSAGE,
            typeName: `${ALL}.MSint64ColorEntry`,
          }),
          repeated({
            name: 'm_uint64_bytes',
            number: 84,
            type: T.MESSAGE,
            typeName: `${ALL}.MUint64BytesEntry`,
          }),
          repeated({
            name: 'm_fixed32_double',
            number: 85,
            type: T.MESSAGE,
            typeName: `${ALL}.MFixed32DoubleEntry`,
          }),
        ],
        oneofDecl: [
          { name: 'choice' },
          { name: 'other' },
          ...SCALAR_TYPES.map(([n]) => ({ name: `_o_${n}` })),
        ],
        nestedType: [
          mapEntry('MStrInt64Entry', T.STRING, T.INT64),
          mapEntry('MInt32ChildEntry', T.INT32, T.MESSAGE, ALL),
          mapEntry('MBoolStringEntry', T.BOOL, T.STRING),
          mapEntry('MSint64ColorEntry', T.SINT64, T.ENUM, COLOR),
          mapEntry('MUint64BytesEntry', T.UINT64, T.BYTES),
          mapEntry('MFixed32DoubleEntry', T.FIXED32, T.DOUBLE),
        ],
      },
      {
        name: 'WithTimestamp',
        field: [
          field({ name: 'id', number: 1, type: T.UINT32 }),
          field({
            name: 'at',
            number: 2,
            type: T.MESSAGE,
            typeName: '.google.protobuf.Timestamp',
          }),
        ],
      },
    ],
  }),
  (name) =>
    name === 'google/protobuf/timestamp.proto' ? file_google_protobuf_timestamp : undefined,
)

const proto2Registry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: 'meshtap/test2.proto',
    package: 'meshtap.test2',
    syntax: 'proto2',
    enumType: [
      {
        name: 'Closed',
        value: [
          { name: 'ONE', number: 1 },
          { name: 'TWO', number: 2 },
        ],
      },
    ],
    messageType: [
      {
        name: 'Legacy',
        field: [
          field({ name: 'closed', number: 1, type: T.ENUM, typeName: '.meshtap.test2.Closed' }),
          repeated({
            name: 'closed_list',
            number: 2,
            type: T.ENUM,
            typeName: '.meshtap.test2.Closed',
          }),
          field({ name: 'text', number: 3, type: T.STRING }),
          field({ name: 'num', number: 4, type: T.INT32, defaultValue: '5' }),
        ],
      },
    ],
  }),
  () => undefined,
)

const AllTypesSchema = testRegistry.getMessage('meshtap.test.AllTypes')!
const WithTimestampSchema = testRegistry.getMessage('meshtap.test.WithTimestamp')!
const LegacySchema = proto2Registry.getMessage('meshtap.test2.Legacy')!

const SCHEMAS: DescMessage[] = [
  Mesh.PositionSchema,
  Mesh.UserSchema,
  Mesh.RoutingSchema,
  Mesh.RouteDiscoverySchema,
  Mesh.NeighborInfoSchema,
  Mesh.WaypointSchema,
  Mesh.DataSchema,
  Mesh.MeshPacketSchema,
  Mesh.KeyVerificationSchema,
  Mesh.StatusMessageSchema,
  Telemetry.TelemetrySchema,
  Mqtt.MapReportSchema,
  Mqtt.ServiceEnvelopeSchema,
  StoreForward.StoreAndForwardSchema,
  PaxCount.PaxcountSchema,
  AllTypesSchema,
  LegacySchema,
]

// ---------------------------------------------------------------------------------------------
// Arbitraries built from descriptors

const int32 = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.integer({ min: -3, max: 3 }),
)
const uint32 = fc.oneof(fc.nat(0xffffffff), fc.nat(3))
const int64 = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.bigInt({ min: -(2n ** 54n), max: 2n ** 54n }),
  fc.bigInt({ min: -3n, max: 3n }),
)
const uint64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  fc.bigInt({ min: 0n, max: 2n ** 54n }),
  fc.bigInt({ min: 0n, max: 3n }),
)
const text = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 50 }),
)

function scalarArb(t: ScalarType): fc.Arbitrary<unknown> {
  switch (t) {
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return int32
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return uint32
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return int64
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return uint64
    case ScalarType.FLOAT:
      return fc.float()
    case ScalarType.DOUBLE:
      return fc.double()
    case ScalarType.BOOL:
      return fc.boolean()
    case ScalarType.STRING:
      return text
    case ScalarType.BYTES:
      return fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 200 }))
  }
}

function enumArb(e: DescEnum): fc.Arbitrary<number> {
  const known = fc.constantFrom(...e.values.map((v) => v.number))
  // Open enums also carry unknown values.
  return e.open ? fc.oneof({ arbitrary: known, weight: 4 }, { arbitrary: int32, weight: 1 }) : known
}

/** Map keys as `create()` accepts them in an init record (strings). */
function mapKeyArb(t: ScalarType): fc.Arbitrary<string> {
  if (t === ScalarType.BOOL) return fc.constantFrom('true', 'false')
  if (t === ScalarType.STRING) return text
  return scalarArb(t).map(String)
}

const MAX_NESTING = 3
const messageArbs = new Map<string, fc.Arbitrary<Record<string, unknown>>>()

function valueArb(f: DescField, depth: number): fc.Arbitrary<unknown> {
  switch (f.fieldKind) {
    case 'scalar':
      return scalarArb(f.scalar)
    case 'enum':
      return enumArb(f.enum)
    case 'message':
      return messageArb(f.message, depth + 1)
    case 'list': {
      const item =
        f.listKind === 'scalar'
          ? scalarArb(f.scalar)
          : f.listKind === 'enum'
            ? enumArb(f.enum)
            : messageArb(f.message, depth + 1)
      return fc.array(item, { maxLength: f.listKind === 'message' ? 2 : 5 })
    }
    case 'map': {
      const value =
        f.mapKind === 'scalar'
          ? scalarArb(f.scalar)
          : f.mapKind === 'enum'
            ? enumArb(f.enum)
            : messageArb(f.message, depth + 1)
      return fc.dictionary(mapKeyArb(f.mapKey), value, { maxKeys: 3 })
    }
  }
}

/** A random init object for `create(desc, init)`: random fields, oneof cases, nesting. */
function messageArb(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  if (depth > MAX_NESTING) return fc.constant({})
  const cacheKey = `${desc.typeName}@${depth}`
  const cached = messageArbs.get(cacheKey)
  if (cached !== undefined) return cached
  const parts: Record<string, fc.Arbitrary<unknown>> = {}
  if (depth > 0 && desc === AllTypesSchema) {
    // Nested copies of the (large, recursive) synthetic message stay small.
    for (const f of desc.fields.filter((f) => f.fieldKind !== 'map' && f.oneof === undefined)) {
      if (f.number % 5 === depth) parts[f.localName] = valueArb(f, depth)
    }
    return fc.record(parts, { requiredKeys: [] })
  }
  for (const f of desc.fields) {
    if (f.oneof === undefined) parts[f.localName] = valueArb(f, depth)
  }
  for (const oneof of desc.oneofs) {
    parts[oneof.localName] = fc.oneof(
      ...oneof.fields.map((f) => valueArb(f, depth).map((value) => ({ case: f.localName, value }))),
    )
  }
  const arb = fc.record(parts, { requiredKeys: [] })
  messageArbs.set(cacheKey, arb)
  return arb
}

const encode = (desc: DescMessage, init: Record<string, unknown>): Uint8Array =>
  toBinary(desc, create(desc, init as never))

const encodedArb = (desc: DescMessage): fc.Arbitrary<Uint8Array> =>
  messageArb(desc).map((init) => encode(desc, init))

// ---------------------------------------------------------------------------------------------
// Reference comparison

/** bufbuild's answer, or undefined when fromBinary (or toJson) throws. */
function reference(desc: DescMessage, bytes: Uint8Array): unknown {
  try {
    return toJson(desc, fromBinary(desc, bytes))
  } catch {
    return undefined
  }
}

/**
 * Decodes with both and checks the contract: ours never throws; when ours returns an object,
 * bufbuild succeeds and the results are deep-equal with the same key order.
 */
function compare(desc: DescMessage, bytes: Uint8Array): { ours: unknown; ref: unknown } {
  const ours = compileJsonDecoder(desc)(bytes)
  const ref = reference(desc, bytes)
  if (ours !== undefined) {
    expect(ref).toBeDefined()
    expect(ours).toStrictEqual(ref)
    expect(JSON.stringify(ours)).toBe(JSON.stringify(ref))
  }
  return { ours, ref }
}

/** Splits an encoding into its top-level records (tag + payload) with bufbuild's reader. */
function records(bytes: Uint8Array): Uint8Array[] {
  const reader = new BinaryReader(bytes)
  const out: Uint8Array[] = []
  while (reader.pos < reader.len) {
    const start = reader.pos
    const [no, wt] = reader.tag()
    reader.skip(wt, no)
    out.push(bytes.subarray(start, reader.pos))
  }
  return out
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

const hex = (s: string): Uint8Array =>
  new Uint8Array((s.replace(/\s+/g, '').match(/../g) ?? []).map((b) => Number.parseInt(b, 16)))

// ---------------------------------------------------------------------------------------------

describe('compileJsonDecoder: random valid messages', () => {
  for (const desc of SCHEMAS) {
    it(`matches toJson(fromBinary()) for ${desc.typeName}`, () => {
      const decode = compileJsonDecoder(desc)
      fc.assert(
        fc.property(encodedArb(desc), (bytes) => {
          const ours = decode(bytes)
          expect(ours).toBeDefined()
          compare(desc, bytes)
        }),
        { numRuns: 300 },
      )
    })
  }

  it('matches for concatenated encodings (merging) and shuffled records (any field order)', () => {
    for (const desc of [Telemetry.TelemetrySchema, Mesh.MeshPacketSchema, AllTypesSchema]) {
      fc.assert(
        fc.property(encodedArb(desc), encodedArb(desc), fc.func(fc.integer()), (a, b, rank) => {
          expect(compare(desc, concat(a, b)).ours).toBeDefined()
          const shuffled = records(concat(a, b))
            .map((r, i) => [rank(i), r] as const)
            .sort((x, y) => x[0] - y[0])
            .map(([, r]) => r)
          expect(compare(desc, concat(...shuffled)).ours).toBeDefined()
        }),
        { numRuns: 150 },
      )
    }
  })
})

describe('compileJsonDecoder: arbitrary and corrupted input', () => {
  it('never throws on random bytes and agrees with bufbuild whenever it decodes', () => {
    for (const desc of SCHEMAS) {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
          compare(desc, bytes)
        }),
        { numRuns: 200 },
      )
    }
  })

  it('never throws on mutated valid encodings and agrees with bufbuild whenever it decodes', () => {
    const mutation = fc.tuple(
      fc.constantFrom('set', 'insert', 'delete', 'truncate'),
      fc.nat(),
      fc.nat(255),
    )
    let agreed = 0
    for (const desc of SCHEMAS) {
      fc.assert(
        fc.property(
          encodedArb(desc),
          fc.array(mutation, { minLength: 1, maxLength: 3 }),
          (valid, mutations) => {
            const bytes = Array.from(valid)
            for (const [kind, at, value] of mutations) {
              const i = bytes.length === 0 ? 0 : at % bytes.length
              if (kind === 'set') bytes[i] = value
              else if (kind === 'insert') bytes.splice(i, 0, value)
              else if (kind === 'delete') bytes.splice(i, 1)
              else bytes.length = i
            }
            if (compare(desc, new Uint8Array(bytes)).ours !== undefined) agreed++
          },
        ),
        { numRuns: 150 },
      )
    }
    // The comparison must not be vacuous.
    expect(agreed).toBeGreaterThan(200)
  })

  it('decodes strings exactly like bufbuild, rejecting invalid UTF-8 (proto3) ', () => {
    const utf8 = new TextEncoder()
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 70 }),
      fc.string({ unit: 'binary', maxLength: 40 }).map((s) => utf8.encode(s)),
      fc
        .tuple(
          fc.string({ unit: 'binary', maxLength: 20 }),
          fc.uint8Array({ minLength: 1, maxLength: 3 }),
          fc.string({ unit: 'binary', maxLength: 20 }),
        )
        .map(([a, b, c]) => concat(utf8.encode(a), b, utf8.encode(c))),
    )
    const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
    const lenient = new TextDecoder('utf-8', { ignoreBOM: true })
    fc.assert(
      fc.property(payload, (s) => {
        // User.long_name (proto3, validated) and Legacy.text (proto2, not validated).
        const user = new BinaryWriter().tag(2, 2).bytes(s).finish()
        const { ours, ref } = compare(Mesh.UserSchema, user)
        expect(ours === undefined).toBe(ref === undefined)
        let expected: string | undefined
        try {
          expected = fatal.decode(s)
        } catch {
          expected = undefined
        }
        if (expected === undefined) expect(ours).toBeUndefined()
        else expect(ours).toStrictEqual(expected === '' ? {} : { longName: expected })
        const legacy = new BinaryWriter().tag(3, 2).bytes(s).finish()
        const r = compare(LegacySchema, legacy)
        expect(r.ours).toStrictEqual({ text: lenient.decode(s) })
      }),
      { numRuns: 1000 },
    )
  })
})

describe('compileJsonDecoder: edge cases', () => {
  const position = compileJsonDecoder(Mesh.PositionSchema)
  const route = compileJsonDecoder(Mesh.RouteDiscoverySchema)
  const telemetry = compileJsonDecoder(Telemetry.TelemetrySchema)
  const user = compileJsonDecoder(Mesh.UserSchema)
  const all = compileJsonDecoder(AllTypesSchema)

  it('memoises per descriptor', () => {
    expect(compileJsonDecoder(Mesh.PositionSchema)).toBe(position)
  })

  it('accepts packed, unpacked and mixed repeated scalars', () => {
    const packed = hex('0a 08 01000000 02000000 12 02 05 7b')
    const unpacked = hex('0d 01000000 10 05 0d 02000000 10 7b')
    const mixed = hex('0d 01000000 0a 04 02000000 12 01 05 10 7b')
    const expected = { route: [1, 2], snrTowards: [5, 123] }
    for (const bytes of [packed, unpacked, mixed]) {
      expect(route(bytes)).toStrictEqual(expected)
      compare(Mesh.RouteDiscoverySchema, bytes)
    }
    // An empty packed run adds nothing.
    expect(route(hex('0a 00'))).toStrictEqual({})
    // A packed run that does not end on a value boundary is malformed.
    expect(route(hex('0a 03 01000000'))).toBeUndefined()
    // Negative int32 in a packed run (10-byte varint).
    expect(route(hex('12 0a ffffffffffffffffff01'))).toStrictEqual({ snrTowards: [-1] })
  })

  it('merges a singular message field that appears twice', () => {
    // deviceMetrics { batteryLevel: 50 } then deviceMetrics { voltage: 4.0, batteryLevel: 60 }
    const bytes = hex('12 02 08 32  12 07 15 00008040 08 3c')
    expect(telemetry(bytes)).toStrictEqual({ deviceMetrics: { batteryLevel: 60, voltage: 4 } })
    compare(Telemetry.TelemetrySchema, bytes)
    // Key order is field-number order even though voltage arrived first in the second record.
    expect(Object.keys((telemetry(bytes) as { deviceMetrics: object }).deviceMetrics)).toEqual([
      'batteryLevel',
      'voltage',
    ])
  })

  it('keeps only the last member of a oneof', () => {
    const device = hex('12 02 08 32')
    const environment = hex('1a 05 0d 0000a041')
    expect(telemetry(concat(device, environment))).toStrictEqual({
      environmentMetrics: { temperature: 20 },
    })
    expect(telemetry(concat(environment, device))).toStrictEqual({
      deviceMetrics: { batteryLevel: 50 },
    })
    // Switching away and back starts a fresh message instead of merging.
    expect(telemetry(concat(device, environment, hex('12 00')))).toStrictEqual({
      deviceMetrics: {},
    })
    for (const bytes of [concat(device, environment), concat(device, environment, device)]) {
      compare(Telemetry.TelemetrySchema, bytes)
    }
    // Scalar oneof members, including zero values and enum members.
    const bytes = concat(hex('b2 04 01 78'), hex('c0 04 00'))
    expect(all(bytes)).toStrictEqual({ cSint64: '0' })
    compare(AllTypesSchema, bytes)
  })

  it('emits explicit-presence zero values and omits implicit zero values', () => {
    // latitude_i = 0 (optional sfixed32), time = 0 (implicit fixed32),
    // location_source = LOC_UNSET (implicit enum), ground_speed = 0 (optional uint32)
    const bytes = hex('0d 00000000 25 00000000 28 00 78 00')
    expect(position(bytes)).toStrictEqual({ latitudeI: 0, groundSpeed: 0 })
    compare(Mesh.PositionSchema, bytes)
    // A later zero value resets an implicit field.
    const reset = hex('25 01000000 28 01 25 00000000 28 00')
    expect(position(reset)).toStrictEqual({})
    compare(Mesh.PositionSchema, reset)
    // Empty strings / bytes, false booleans.
    const empty = hex('0a 00 22 00 30 00 48 00')
    expect(user(empty)).toStrictEqual({ isUnmessagable: false })
    compare(Mesh.UserSchema, empty)
    // -0.0 is not the zero value of an implicit float.
    const negZero = hex('15 00000080')
    expect(Object.is((all(negZero) as { sFloat: number }).sFloat, -0)).toBe(true)
    compare(AllTypesSchema, negZero)
  })

  it('keeps a leading byte order mark as text', () => {
    for (const bytes of [
      hex('0a 04 efbbbf41'),
      concat(hex('0a 28 efbbbf'), new Uint8Array(37).fill(0x41)),
    ]) {
      const ours = user(bytes) as { id: string }
      expect(ours.id.charCodeAt(0)).toBe(0xfeff)
      compare(Mesh.UserSchema, bytes)
    }
  })

  it('renders values canonically', () => {
    const bytes = concat(
      new BinaryWriter()
        .tag(1, 1)
        .double(Number.NaN)
        .tag(2, 5)
        .float(Number.POSITIVE_INFINITY)
        .tag(75, 5)
        .float(Number.NEGATIVE_INFINITY)
        .tag(3, 0)
        .int64(-9007199254740993n)
        .tag(4, 0)
        .uint64(18446744073709551615n)
        .tag(6, 1)
        .fixed64(9007199254740993n)
        .tag(13, 1)
        .sfixed64(-1n)
        .tag(15, 0)
        .sint64(-9223372036854775808n)
        .tag(14, 0)
        .sint32(-2147483648)
        .tag(16, 0)
        .int32(-7)
        .tag(40, 2)
        .bytes(hex('01 02 e0a712'))
        .tag(10, 2)
        .bytes(hex('fbff'))
        .finish(),
    )
    expect(all(bytes)).toStrictEqual({
      sDouble: 'NaN',
      sFloat: 'Infinity',
      sInt64: '-9007199254740993',
      sUint64: '18446744073709551615',
      sFixed64: '9007199254740993',
      sBytes: '+/8=',
      sSfixed64: '-1',
      sSint32: -2147483648,
      sSint64: '-9223372036854775808',
      color: 'NEGATIVE',
      rColor: ['RED', 2, 300000],
      dFloat: '-Infinity',
    })
    compare(AllTypesSchema, bytes)
    // float32 values are widened exactly like bufbuild does.
    const metrics = hex('12 05 15 5c8f8640')
    expect(telemetry(metrics)).toStrictEqual({ deviceMetrics: { voltage: 4.204999923706055 } })
  })

  it('decodes maps, recursive messages and sparse field numbers', () => {
    const child = new BinaryWriter().tag(5, 0).int32(9).tag(17, 2).bytes(hex('28 01')).finish()
    const bytes = new BinaryWriter()
      .tag(80, 2)
      .bytes(new BinaryWriter().tag(1, 2).string('a').tag(2, 0).int64(-5n).finish())
      .tag(80, 2)
      .bytes(new BinaryWriter().tag(2, 0).int64(3n).finish())
      .tag(81, 2)
      .bytes(new BinaryWriter().tag(1, 0).int32(-1).tag(2, 2).bytes(child).finish())
      .tag(81, 2)
      .bytes(new BinaryWriter().tag(1, 0).int32(4).finish())
      .tag(82, 2)
      .bytes(new BinaryWriter().tag(1, 0).bool(true).tag(2, 2).string('yes').finish())
      .tag(83, 2)
      .bytes(new BinaryWriter().tag(1, 0).sint64(-3n).tag(2, 0).int32(1).finish())
      .tag(84, 2)
      .bytes(
        new BinaryWriter()
          .tag(1, 0)
          .uint64(2n ** 63n)
          .tag(2, 2)
          .bytes(hex('ff'))
          .finish(),
      )
      .tag(85, 2)
      .bytes(new BinaryWriter().tag(1, 5).fixed32(7).tag(2, 1).double(0.5).finish())
      .tag(5000, 2)
      .string('late')
      .tag(17, 2)
      .bytes(child)
      .finish()
    expect(all(bytes)).toStrictEqual({
      child: { sInt32: 9, child: { sInt32: 1 } },
      mStrInt64: { a: '-5', '': '3' },
      mInt32Child: { '-1': { sInt32: 9, child: { sInt32: 1 } }, '4': {} },
      mBoolString: { true: 'yes' },
      mSint64Color: { '-3': 'RED' },
      mUint64Bytes: { '9223372036854775808': '/w==' },
      mFixed32Double: { '7': 0.5 },
      lateField: 'late',
    })
    compare(AllTypesSchema, bytes)
  })

  it('skips unknown fields of every wire type', () => {
    const unknown = hex('f8 3e 96 01  f9 3e 0102030405060708  fa 3e 03 616263  fd 3e 01020304')
    const bytes = concat(unknown, hex('0d 01000000'), unknown)
    expect(position(bytes)).toStrictEqual({ latitudeI: 1 })
    compare(Mesh.PositionSchema, bytes)
    // Also inside nested messages.
    expect(telemetry(concat(hex('12 0e'), unknown.subarray(0, 14)))).toStrictEqual({
      deviceMetrics: {},
    })
  })

  it('returns undefined for malformed input', () => {
    const cases: [string, typeof position, Uint8Array][] = [
      ['truncated varint', position, hex('18 96')],
      ['truncated fixed32', position, hex('0d 0100')],
      ['truncated length', user, hex('0a')],
      ['truncated unknown length', position, hex('fa 3e')],
      ['length past the end', user, hex('0a 05 616263')],
      ['unknown length past the end', position, hex('fa 3e 05 616263')],
      ['truncated unknown fixed64', position, hex('f9 3e 01020304')],
      ['varint longer than 10 bytes', position, hex('18 ffffffffffffffffffff01')],
      ['unknown varint longer than 10 bytes', position, hex('f8 3e ffffffffffffffffffff01')],
      ['field number 0', position, hex('00 01')],
      ['tag longer than 5 bytes', position, hex('88 80 80 80 80 00 01')],
      ['tag overflowing uint32', position, hex('88 80 80 80 10 01')],
      ['start group', position, hex('0b 0c')],
      ['unknown group', position, hex('fb 3e fc 3e')],
      ['end group', position, hex('0c')],
      ['wire type 6', position, hex('0e 00')],
      ['wire type 7', position, hex('0f 00')],
      ['wrong wire type for known field', position, hex('08 01')],
      ['nested message malformed', telemetry, hex('12 02 15 00')],
      ['nested message overruns its length', telemetry, hex('12 01 08 32')],
    ]
    for (const [name, decode, bytes] of cases) {
      expect([name, decode(bytes)]).toEqual([name, undefined])
    }
    // Strings must be valid UTF-8 in proto3 (bufbuild 2.17 decodes them with a fatal decoder).
    expect(user(hex('0a 02 c328'))).toBeUndefined()
    expect(reference(Mesh.UserSchema, hex('0a 02 c328'))).toBeUndefined()
  })

  it('rejects every truncation of a valid encoding that bufbuild rejects', () => {
    const bytes = encode(Mesh.UserSchema, {
      id: '!a1b2c3d4',
      longName: 'Fox 🦊 node',
      hwModel: 7,
      publicKey: new Uint8Array(32).fill(7),
      isUnmessagable: false,
    })
    for (let n = 0; n <= bytes.length; n++) {
      const { ours, ref } = compare(Mesh.UserSchema, bytes.subarray(0, n))
      expect(ours === undefined).toBe(ref === undefined)
    }
  })

  it('caps nesting depth', () => {
    const nest = (depth: number): Uint8Array => {
      let inner = hex('28 01')
      for (let i = 0; i < depth; i++) {
        inner = new BinaryWriter().tag(17, 2).bytes(inner).finish()
      }
      return inner
    }
    expect(all(nest(20))).toBeDefined()
    compare(AllTypesSchema, nest(20))
    expect(all(nest(40))).toBeUndefined()
  })

  it('decodes a sub-range with start / end', () => {
    const body = hex('0d 01000000 18 2a')
    const padded = concat(hex('ff ff ff'), body, hex('ff ff'))
    expect(position(padded, 3, 3 + body.length)).toStrictEqual({ latitudeI: 1, altitude: 42 })
    expect(position(padded, 3, 3 + body.length - 1)).toBeUndefined()
    expect(position(padded, 3, 3)).toStrictEqual({})
    expect(position(padded, 8)).toBeUndefined()
    expect(position(concat(body, hex('ff')), 0, body.length)).toStrictEqual({
      latitudeI: 1,
      altitude: 42,
    })
    // Out-of-range or inverted bounds.
    expect(position(body, -1)).toBeUndefined()
    expect(position(body, 0, body.length + 1)).toBeUndefined()
    expect(position(body, 4, 2)).toBeUndefined()
    expect(position(body, 0.5)).toBeUndefined()
  })

  it('handles closed enums like bufbuild', () => {
    const legacy = compileJsonDecoder(LegacySchema)
    // Unknown values of a singular closed enum are dropped (the previous value stays); lists
    // keep them as numbers.
    const bytes = hex('08 02 08 07 10 01 10 09 12 02 02 05')
    expect(legacy(bytes)).toStrictEqual({ closed: 'TWO', closedList: ['ONE', 9, 'TWO', 5] })
    compare(LegacySchema, bytes)
  })

  it('falls back to bufbuild for well-known types with a custom JSON form', () => {
    const bytes = encode(WithTimestampSchema, { id: 3, at: { seconds: 1700000000n, nanos: 5 } })
    expect(compileJsonDecoder(WithTimestampSchema)(bytes)).toStrictEqual({
      id: 3,
      at: '2023-11-14T22:13:20.000000005Z',
    })
    expect(compileJsonDecoder(WithTimestampSchema)(hex('0a'))).toBeUndefined()
  })
})
