import type { DescEnum, DescField, DescMessage } from '@bufbuild/protobuf'
import { fromBinary, ScalarType, toJson } from '@bufbuild/protobuf'

/**
 * A compiled decoder: binary protobuf bytes -> the message's canonical protobuf JSON object, or
 * `undefined` when the bytes are not well-formed protobuf. Never throws.
 *
 * `start` / `end` select a sub-range of `bytes` (default: the whole array).
 */
export type JsonDecoder = (
  bytes: Uint8Array,
  start?: number,
  end?: number,
) => Record<string, unknown> | undefined

type Json = Record<string, unknown>

/**
 * Reads one field record into `o`. The tag has already been consumed; `wt` is its wire type.
 * `first` is true when `o` certainly has no value for the field yet (saves a property lookup).
 * Returns {@link HOLE} when it left an `undefined` hole in `o` (an implicit field reset to its
 * zero value), which the message decoder then compacts away, {@link ONEOF_SET} after setting a
 * oneof member, else 0.
 */
type FieldReader = (o: Json, wt: number, end: number, depth: number, first: boolean) => number

const HOLE = 1
const ONEOF_SET = 2

/** Compiled decoding plan of one message type. */
interface Plan {
  /** Field readers indexed by field number (dense part). */
  dense: (FieldReader | undefined)[]
  /** Field readers for large field numbers. */
  sparse: Map<number, FieldReader> | undefined
  /** JSON keys in field-number order, the order `toJson` writes them in. */
  keys: string[]
  /** Per field number: a bit identifying the member's oneof, or 0 (no bit available). */
  oneofBit: number[]
  /** Per oneof member field number: the JSON keys of the other members. */
  siblings: Map<number, string[]>
}

/** Maximum message nesting depth; deeper input is rejected as malformed. */
const MAX_DEPTH = 32
/** Field numbers below this are dispatched through an array. */
const DENSE_LIMIT = 1024

const EMPTY = new Uint8Array(0)

// Decoder state. Decoding is synchronous and never re-entrant, so a single module-level cursor
// avoids allocating a reader per call.
let buf: Uint8Array = EMPTY
let pos = 0
// Result of readVarint64(): the low and high 32 bits.
let lo = 0
let hi = 0

/** Thrown internally for malformed input; a plain object, so no stack trace is captured. */
const MALFORMED = { malformed: true }

// ---------------------------------------------------------------------------------------------
// Primitive readers

/** Reads a varint and returns its low 32 bits as an unsigned number (like bufbuild's uint32()). */
function readVarint32(): number {
  let b = buf[pos++]!
  if (b < 0x80) return b
  let r = b & 0x7f
  b = buf[pos++]!
  r |= (b & 0x7f) << 7
  if (b < 0x80) return r
  b = buf[pos++]!
  r |= (b & 0x7f) << 14
  if (b < 0x80) return r
  b = buf[pos++]!
  r |= (b & 0x7f) << 21
  if (b < 0x80) return r
  b = buf[pos++]!
  r |= b << 28
  if (b < 0x80) return r >>> 0
  // Bits beyond 32 are discarded, but a varint is at most 10 bytes long.
  for (let i = 0; i < 5; i++) {
    if (buf[pos++]! < 0x80) return r >>> 0
  }
  throw MALFORMED
}

/** Reads a 64-bit varint into `lo` / `hi`. */
function readVarint64(): void {
  let b = buf[pos++]!
  let l = b & 0x7f
  if (b < 0x80) {
    lo = l
    hi = 0
    return
  }
  for (let shift = 7; shift < 28; shift += 7) {
    b = buf[pos++]!
    l |= (b & 0x7f) << shift
    if (b < 0x80) {
      lo = l
      hi = 0
      return
    }
  }
  b = buf[pos++]!
  l |= (b & 0x0f) << 28
  let h = (b & 0x70) >> 4
  if (b < 0x80) {
    lo = l
    hi = h
    return
  }
  for (let shift = 3; shift <= 31; shift += 7) {
    b = buf[pos++]!
    h |= (b & 0x7f) << shift
    if (b < 0x80) {
      lo = l
      hi = h
      return
    }
  }
  throw MALFORMED
}

/** Reads a tag (a uint32 varint of at most 5 bytes) and rejects field number 0. */
function readTag(): number {
  let b = buf[pos++]!
  let t = b & 0x7f
  if (b >= 0x80) {
    b = buf[pos++]!
    t |= (b & 0x7f) << 7
    if (b >= 0x80) {
      b = buf[pos++]!
      t |= (b & 0x7f) << 14
      if (b >= 0x80) {
        b = buf[pos++]!
        t |= (b & 0x7f) << 21
        if (b >= 0x80) {
          b = buf[pos++]!
          if (!(b <= 0x0f)) throw MALFORMED
          t = (t | (b << 28)) >>> 0
        }
      }
    }
  }
  if (t < 8) throw MALFORMED
  return t
}

/** Reads a length prefix and checks that the delimited payload fits before `end`. */
function readLength(end: number): number {
  const len = readVarint32()
  if (len > end - pos) throw MALFORMED
  return len
}

function readFixed32(): number {
  const p = pos
  pos = p + 4
  return (buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16) | (buf[p + 3]! << 24)) >>> 0
}

const scratch = new ArrayBuffer(8)
const scratchBytes = new Uint8Array(scratch)
const scratchF32 = new Float32Array(scratch)
const scratchF64 = new Float64Array(scratch)
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

function readFloat(): number {
  const p = pos
  pos = p + 4
  if (LITTLE_ENDIAN) {
    scratchBytes[0] = buf[p]!
    scratchBytes[1] = buf[p + 1]!
    scratchBytes[2] = buf[p + 2]!
    scratchBytes[3] = buf[p + 3]!
  } else {
    for (let i = 0; i < 4; i++) scratchBytes[i] = buf[p + 3 - i]!
  }
  return scratchF32[0]!
}

function readDouble(): number {
  const p = pos
  pos = p + 8
  if (LITTLE_ENDIAN) {
    for (let i = 0; i < 8; i++) scratchBytes[i] = buf[p + i]!
  } else {
    for (let i = 0; i < 8; i++) scratchBytes[i] = buf[p + 7 - i]!
  }
  return scratchF64[0]!
}

/** float / double to JSON: NaN and the infinities become strings, like `toJson`. */
function floatJson(v: number): number | string {
  if (v - v === 0) return v
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'
}

// ---------------------------------------------------------------------------------------------
// 64-bit integer formatting (same algorithm as bufbuild's int64ToString, without BigInt)

const TWO_PWR_32 = 4294967296

function decimal1e7(d: number): string {
  const s = String(d)
  return '0000000'.slice(s.length) + s
}

/** Formats the unsigned 64-bit integer `hi:lo` in decimal. */
function formatU64(l: number, h: number): string {
  l >>>= 0
  h >>>= 0
  if (h <= 0x1fffff) return String(h * TWO_PWR_32 + l)
  // Split into 24:24:16 bits and convert to base 1e7 digits.
  const low = l & 0xffffff
  const mid = ((l >>> 24) | (h << 8)) & 0xffffff
  const high = (h >> 16) & 0xffff
  let a = low + mid * 6777216 + high * 6710656
  let b = mid + high * 8147497
  let c = high * 2
  const base = 10000000
  if (a >= base) {
    b += Math.floor(a / base)
    a %= base
  }
  if (b >= base) {
    c += Math.floor(b / base)
    b %= base
  }
  return String(c) + decimal1e7(b) + decimal1e7(a)
}

/** Formats the two's complement signed 64-bit integer `hi:lo` in decimal. */
function formatI64(l: number, h: number): string {
  h |= 0
  if (h >= -0x200000 && h <= 0x1fffff) return String(h * TWO_PWR_32 + (l >>> 0))
  if (h > 0) return formatU64(l, h)
  // Negate: ~x + 1.
  h = ~h
  if (l === 0) h += 1
  else l = ~l + 1
  return `-${formatU64(l, h)}`
}

// ---------------------------------------------------------------------------------------------
// Strings and bytes

const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const utf8Lenient = new TextDecoder('utf-8', { ignoreBOM: true })

/** Strings up to this many bytes are decoded in JS; longer ones go to the TextDecoder. */
const SHORT_STRING = 32

/**
 * Reads `len` bytes (already bounds-checked) as UTF-8. With `strict`, invalid UTF-8 is malformed
 * input (bufbuild throws for fields with `utf8Validation`, which every proto3 string has);
 * otherwise invalid sequences become U+FFFD like bufbuild's non-fatal decoder. A leading BOM is
 * kept as text in both cases.
 */
function readString(len: number, validated: boolean): string {
  const strict = validated && rejectInvalidUtf8
  const s = pos
  const e = s + len
  pos = e
  if (len > SHORT_STRING) return decodeUtf8(s, e, strict)
  // UTF-16 code units; never more than there are bytes.
  const units = new Array<number>(len)
  let j = 0
  let i = s
  while (i < e) {
    const b = buf[i]!
    if (b < 0x80) {
      units[j++] = b
      i++
      continue
    }
    // Multi-byte sequence, validated per the Unicode table of well-formed byte sequences;
    // anything else is left to the TextDecoder (which throws, or substitutes U+FFFD).
    if (b >= 0xc2 && b <= 0xdf) {
      const b1 = buf[i + 1]!
      if (i + 1 >= e || (b1 & 0xc0) !== 0x80) return decodeUtf8(s, e, strict)
      units[j++] = ((b & 0x1f) << 6) | (b1 & 0x3f)
      i += 2
    } else if (b >= 0xe0 && b <= 0xef) {
      const b1 = buf[i + 1]!
      const b2 = buf[i + 2]!
      if (
        i + 2 >= e ||
        (b1 & 0xc0) !== 0x80 ||
        (b2 & 0xc0) !== 0x80 ||
        (b === 0xe0 && b1 < 0xa0) ||
        (b === 0xed && b1 > 0x9f)
      ) {
        return decodeUtf8(s, e, strict)
      }
      units[j++] = ((b & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f)
      i += 3
    } else if (b >= 0xf0 && b <= 0xf4) {
      const b1 = buf[i + 1]!
      const b2 = buf[i + 2]!
      const b3 = buf[i + 3]!
      if (
        i + 3 >= e ||
        (b1 & 0xc0) !== 0x80 ||
        (b2 & 0xc0) !== 0x80 ||
        (b3 & 0xc0) !== 0x80 ||
        (b === 0xf0 && b1 < 0x90) ||
        (b === 0xf4 && b1 > 0x8f)
      ) {
        return decodeUtf8(s, e, strict)
      }
      const cp =
        (((b & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f)) - 0x10000
      units[j++] = 0xd800 + (cp >> 10)
      units[j++] = 0xdc00 + (cp & 0x3ff)
      i += 4
    } else {
      return decodeUtf8(s, e, strict)
    }
  }
  if (j < len) units.length = j
  return String.fromCharCode.apply(null, units)
}

/** Decodes with a shared TextDecoder; the fatal one throws on invalid UTF-8 (caught at the top). */
function decodeUtf8(s: number, e: number, strict: boolean): string {
  return (strict ? utf8Fatal : utf8Lenient).decode(buf.subarray(s, e))
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
/** Every 12-bit group as its two base64 characters. */
const B64_PAIRS: string[] = []
for (let i = 0; i < 4096; i++) B64_PAIRS.push(B64[i >> 6]! + B64[i & 63]!)

/** Every 12-bit group as its two base64 characters, packed as ASCII bytes in memory order. */
const B64_PAIR_CODES = new Uint16Array(4096)
for (let i = 0; i < 4096; i++) {
  const a = B64.charCodeAt(i >> 6)
  const b = B64.charCodeAt(i & 63)
  B64_PAIR_CODES[i] = LITTLE_ENDIAN ? a | (b << 8) : (a << 8) | b
}
/** Scratch output for long base64 strings, grown on demand. */
let b64Scratch = new Uint16Array(256)

/** Inputs up to this many bytes are base64-encoded by string concatenation. */
const SHORT_BASE64 = 120

/** Reads `len` bytes (already bounds-checked) as standard, padded base64. */
function readBase64(len: number): string {
  let i = pos
  const e = i + len
  pos = e
  const e3 = e - (len % 3)
  let out = ''
  if (len <= SHORT_BASE64) {
    for (; i < e3; i += 3) {
      const v = (buf[i]! << 16) | (buf[i + 1]! << 8) | buf[i + 2]!
      out += B64_PAIRS[v >> 12]! + B64_PAIRS[v & 0xfff]!
    }
  } else {
    // Long input: write the ASCII output into a scratch buffer and decode it in one go.
    const units = ((len / 3) | 0) * 2
    if (b64Scratch.length < units) b64Scratch = new Uint16Array(units * 2)
    const out16 = b64Scratch
    let j = 0
    for (; i < e3; i += 3) {
      const v = (buf[i]! << 16) | (buf[i + 1]! << 8) | buf[i + 2]!
      out16[j++] = B64_PAIR_CODES[v >> 12]!
      out16[j++] = B64_PAIR_CODES[v & 0xfff]!
    }
    out = utf8Lenient.decode(new Uint8Array(out16.buffer, 0, j * 2))
  }
  if (e - i === 1) {
    out += `${B64_PAIRS[buf[i]! << 4]!}==`
  } else if (e - i === 2) {
    const v = (buf[i]! << 16) | (buf[i + 1]! << 8)
    out += `${B64_PAIRS[v >> 12]!}${B64[(v >> 6) & 63]!}=`
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Generic value readers (repeated fields and map entries)

const T_DOUBLE = ScalarType.DOUBLE
const T_FLOAT = ScalarType.FLOAT
const T_INT64 = ScalarType.INT64
const T_UINT64 = ScalarType.UINT64
const T_INT32 = ScalarType.INT32
const T_FIXED64 = ScalarType.FIXED64
const T_FIXED32 = ScalarType.FIXED32
const T_BOOL = ScalarType.BOOL
const T_STRING = ScalarType.STRING
const T_BYTES = ScalarType.BYTES
const T_UINT32 = ScalarType.UINT32
const T_SFIXED32 = ScalarType.SFIXED32
const T_SFIXED64 = ScalarType.SFIXED64
const T_SINT32 = ScalarType.SINT32
const T_SINT64 = ScalarType.SINT64

/** The wire type a scalar type is encoded with (unpacked). */
function wireTypeOf(t: ScalarType): number {
  switch (t) {
    case T_DOUBLE:
    case T_FIXED64:
    case T_SFIXED64:
      return 1
    case T_FLOAT:
    case T_FIXED32:
    case T_SFIXED32:
      return 5
    case T_STRING:
    case T_BYTES:
      return 2
    default:
      return 0
  }
}

/** Reads one scalar value of type `t` (wire type already checked) and returns its JSON form. */
function readScalarJson(t: number, end: number, strict: boolean): unknown {
  switch (t) {
    case T_INT32:
      return readVarint32() | 0
    case T_UINT32:
      return readVarint32()
    case T_SINT32: {
      const z = readVarint32()
      return (z >>> 1) ^ -(z & 1)
    }
    case T_FIXED32:
      return readFixed32()
    case T_SFIXED32:
      return readFixed32() | 0
    case T_FLOAT:
      return floatJson(readFloat())
    case T_DOUBLE:
      return floatJson(readDouble())
    case T_BOOL:
      readVarint64()
      return (lo | hi) !== 0
    case T_INT64:
      readVarint64()
      return formatI64(lo, hi)
    case T_UINT64:
      readVarint64()
      return formatU64(lo, hi)
    case T_SINT64: {
      readVarint64()
      const s = -(lo & 1)
      return formatI64(((lo >>> 1) | (hi << 31)) ^ s, (hi >>> 1) ^ s)
    }
    case T_FIXED64: {
      const l = readFixed32()
      return formatU64(l, readFixed32())
    }
    case T_SFIXED64: {
      const l = readFixed32()
      return formatI64(l, readFixed32())
    }
    case T_STRING:
      return readString(readLength(end), strict)
    default:
      return readBase64(readLength(end))
  }
}

/** JSON form of a scalar type's zero value (map entries without a value). */
function scalarZeroJson(t: ScalarType): unknown {
  switch (t) {
    case T_BOOL:
      return false
    case T_STRING:
    case T_BYTES:
      return ''
    case T_INT64:
    case T_UINT64:
    case T_SINT64:
    case T_FIXED64:
    case T_SFIXED64:
      return '0'
    default:
      return 0
  }
}

// ---------------------------------------------------------------------------------------------
// Message decoding

/** Rebuilds `o` with keys in field-number order, dropping `undefined` holes. */
function compact(o: Json, keys: string[]): Json {
  const r: Json = {}
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!
    const v = o[k]
    if (v !== undefined) r[k] = v
  }
  return r
}

/**
 * Decodes the message body from `pos` to `end`, into `existing` (merging, like a repeated
 * occurrence of a singular message field) or into a new object.
 */
function decodeMessage(plan: Plan, existing: Json | undefined, end: number, depth: number): Json {
  if (depth > MAX_DEPTH) throw MALFORMED
  const fresh = existing === undefined
  const o: Json = existing ?? {}
  const { dense, sparse } = plan
  // Set when keys may be out of field-number order or `o` has holes.
  let dirty = fresh ? 0 : 1
  // Highest field number seen so far.
  let last = 0
  // Oneofs (by bit) that already have a member set in `o`.
  let oneofs = fresh ? 0 : -1
  while (pos < end) {
    const tag = readTag()
    const no = tag >>> 3
    const read = no < dense.length ? dense[no] : sparse?.get(no)
    if (read === undefined) {
      skipField(tag & 7)
      continue
    }
    let first = false
    if (no > last) {
      // Fields in ascending order into a new object: this is the field's first occurrence.
      first = fresh
      last = no
    } else if (no < last) {
      dirty = 1
    }
    const r = read(o, tag & 7, end, depth, first)
    if (r === HOLE) {
      dirty = 1
    } else if (r === ONEOF_SET) {
      // Setting a oneof member clears the others, if the oneof may have one set.
      const bit = no < DENSE_LIMIT ? plan.oneofBit[no]! : 0
      if ((oneofs & bit) !== 0 || bit === 0) dirty |= clearSiblings(o, plan.siblings.get(no)!)
      oneofs |= bit
    }
  }
  if (pos !== end) throw MALFORMED
  return dirty === 0 ? o : compact(o, plan.keys)
}

/** Skips an unknown field (groups are not supported and count as malformed). */
function skipField(wt: number): void {
  switch (wt) {
    case 0:
      for (let i = 0; i < 10; i++) {
        if (buf[pos++]! < 0x80) return
      }
      throw MALFORMED
    case 1:
      pos += 8
      return
    case 2: {
      const len = readVarint32()
      pos += len
      return
    }
    case 5:
      pos += 4
      return
    default:
      throw MALFORMED
  }
}

/** Clears the other members of a oneof after one was set; returns 1 if any was present. */
function clearSiblings(o: Json, siblings: string[]): number {
  let d = 0
  for (let i = 0; i < siblings.length; i++) {
    const k = siblings[i]!
    if (o[k] !== undefined) {
      o[k] = undefined
      d = 1
    }
  }
  return d
}

/** An implicit-presence field was set to its zero value: drop a previous value, if any. */
function clearKey(o: Json, key: string, first: boolean): number {
  if (first || o[key] === undefined) return 0
  o[key] = undefined
  return HOLE
}

/** Enum number -> JSON (value name, or the number itself when the value is unknown). */
interface EnumNames {
  dense: (string | undefined)[]
  sparse: Map<number, string>
  closed: boolean
}

function enumNames(desc: DescEnum): EnumNames {
  const dense: (string | undefined)[] = []
  const sparse = new Map<number, string>()
  for (const v of desc.values) {
    // toJson looks the name up through `desc.value`, which decides between aliases.
    const name = desc.value[v.number]?.jsonName ?? v.jsonName
    if (v.number >= 0 && v.number < DENSE_LIMIT) {
      while (dense.length <= v.number) dense.push(undefined)
      dense[v.number] = name
    } else {
      sparse.set(v.number, name)
    }
  }
  return { dense, sparse, closed: !desc.open }
}

function enumName(names: EnumNames, v: number): string | undefined {
  return v >= 0 && v < names.dense.length ? names.dense[v] : names.sparse.get(v)
}

// ---------------------------------------------------------------------------------------------
// Compilation

const plans = new WeakMap<DescMessage, Plan>()
const decoders = new WeakMap<DescMessage, JsonDecoder>()
const replacingDecoders = new WeakMap<DescMessage, JsonDecoder>()
/** Whether the decode under way rejects invalid UTF-8 in validated (proto3) strings. */
let rejectInvalidUtf8 = true

/** Options of {@link compileJsonDecoder}. */
export interface JsonDecoderOptions {
  /**
   * Invalid UTF-8 in a proto3 string: `'reject'` makes the message malformed (as `fromBinary` does),
   * `'replace'` decodes it with U+FFFD (firmware truncates names at a byte limit, which can cut a
   * multi-byte character; such packets are real and worth keeping).
   * @default 'reject'
   */
  invalidUtf8?: 'reject' | 'replace'
}

function planFor(desc: DescMessage): Plan {
  let plan = plans.get(desc)
  if (plan !== undefined) return plan
  const fields = desc.fields.concat().sort((a, b) => a.number - b.number)
  plan = {
    dense: [],
    sparse: undefined,
    keys: fields.map((f) => f.jsonName),
    oneofBit: [],
    siblings: new Map(),
  }
  // Registered before compiling the fields, so recursive types resolve to this plan.
  plans.set(desc, plan)
  for (const field of fields) {
    const reader = compileField(field)
    const { oneof } = field
    if (oneof !== undefined) {
      const others = oneof.fields.filter((f) => f !== field).map((f) => f.jsonName)
      plan.siblings.set(field.number, others)
    }
    if (field.number < DENSE_LIMIT) {
      while (plan.dense.length <= field.number) {
        plan.dense.push(undefined)
        plan.oneofBit.push(0)
      }
      plan.dense[field.number] = reader
      const index = oneof === undefined ? -1 : desc.oneofs.indexOf(oneof)
      // 31 oneofs get a bit each; members of further ones always clear their siblings.
      plan.oneofBit[field.number] = index >= 0 && index < 31 ? 1 << index : 0
    } else {
      plan.sparse ??= new Map()
      plan.sparse.set(field.number, reader)
    }
  }
  return plan
}

function compileField(field: DescField): FieldReader {
  switch (field.fieldKind) {
    case 'scalar':
    case 'enum':
    case 'message':
      return compileSingular(field)
    case 'list':
      return compileList(field)
    case 'map':
      return compileMap(field)
  }
}

const IMPLICIT = 2

function compileSingular(
  field: DescField & { fieldKind: 'scalar' | 'enum' | 'message' },
): FieldReader {
  const key = field.jsonName
  const implicit = field.presence === IMPLICIT
  const oneof = field.oneof === undefined ? 0 : ONEOF_SET

  if (field.fieldKind === 'message') {
    const plan = planFor(field.message)
    return (o, wt, end, depth, first) => {
      if (wt !== 2) throw MALFORMED
      const len = readLength(end)
      const prev = first ? undefined : (o[key] as Json | undefined)
      o[key] = decodeMessage(plan, prev, pos + len, depth + 1)
      return oneof
    }
  }

  if (field.fieldKind === 'enum') {
    const names = enumNames(field.enum)
    const zero = field.enum.values[0]?.number ?? 0
    return (o, wt, _end, _depth, first) => {
      if (wt !== 0) throw MALFORMED
      const v = readVarint32() | 0
      if (implicit && v === zero) return clearKey(o, key, first)
      const name = enumName(names, v)
      if (name === undefined) {
        // Closed enums keep unknown values as unknown fields; the field is left untouched.
        if (names.closed) return 0
        o[key] = v
      } else {
        o[key] = name
      }
      return oneof
    }
  }

  const t = field.scalar
  switch (t) {
    case T_INT32:
    case T_UINT32:
    case T_SINT32: {
      const mode = t === T_INT32 ? 0 : t === T_UINT32 ? 1 : 2
      return (o, wt, _end, _depth, first) => {
        if (wt !== 0) throw MALFORMED
        let v = readVarint32()
        if (mode === 0) v |= 0
        else if (mode === 2) v = (v >>> 1) ^ -(v & 1)
        if (implicit && v === 0) return clearKey(o, key, first)
        o[key] = v
        return oneof
      }
    }
    case T_FIXED32:
    case T_SFIXED32: {
      const signed = t === T_SFIXED32
      return (o, wt, _end, _depth, first) => {
        if (wt !== 5) throw MALFORMED
        let v = readFixed32()
        if (signed) v |= 0
        if (implicit && v === 0) return clearKey(o, key, first)
        o[key] = v
        return oneof
      }
    }
    case T_INT64:
    case T_UINT64:
    case T_SINT64: {
      const mode = t === T_INT64 ? 0 : t === T_UINT64 ? 1 : 2
      return (o, wt, _end, _depth, first) => {
        if (wt !== 0) throw MALFORMED
        readVarint64()
        let l = lo
        let h = hi
        if (implicit && (l | h) === 0) return clearKey(o, key, first)
        if (mode === 2) {
          const s = -(l & 1)
          l = ((l >>> 1) | (h << 31)) ^ s
          h = (h >>> 1) ^ s
        }
        o[key] = mode === 1 ? formatU64(l, h) : formatI64(l, h)
        return oneof
      }
    }
    case T_FIXED64:
    case T_SFIXED64: {
      const signed = t === T_SFIXED64
      return (o, wt, _end, _depth, first) => {
        if (wt !== 1) throw MALFORMED
        const l = readFixed32()
        const h = readFixed32()
        if (implicit && (l | h) === 0) return clearKey(o, key, first)
        o[key] = signed ? formatI64(l, h) : formatU64(l, h)
        return oneof
      }
    }
    case T_FLOAT:
      return (o, wt, _end, _depth, first) => {
        if (wt !== 5) throw MALFORMED
        const v = readFloat()
        // -0 is not the zero value for toJson (it compares with Object.is).
        if (implicit && v === 0 && 1 / v > 0) return clearKey(o, key, first)
        o[key] = floatJson(v)
        return oneof
      }
    case T_DOUBLE:
      return (o, wt, _end, _depth, first) => {
        if (wt !== 1) throw MALFORMED
        const v = readDouble()
        if (implicit && v === 0 && 1 / v > 0) return clearKey(o, key, first)
        o[key] = floatJson(v)
        return oneof
      }
    case T_BOOL:
      return (o, wt, _end, _depth, first) => {
        if (wt !== 0) throw MALFORMED
        let v: boolean
        const b = buf[pos]!
        if (b < 0x80) {
          pos++
          v = b !== 0
        } else {
          readVarint64()
          v = (lo | hi) !== 0
        }
        if (implicit && !v) return clearKey(o, key, first)
        o[key] = v
        return oneof
      }
    case T_STRING: {
      const strict = field.utf8Validation
      return (o, wt, end, _depth, first) => {
        if (wt !== 2) throw MALFORMED
        const len = readLength(end)
        if (implicit && len === 0) return clearKey(o, key, first)
        o[key] = readString(len, strict)
        return oneof
      }
    }
    default:
      return (o, wt, end, _depth, first) => {
        if (wt !== 2) throw MALFORMED
        const len = readLength(end)
        if (implicit && len === 0) return clearKey(o, key, first)
        o[key] = readBase64(len)
        return oneof
      }
  }
}

function compileList(field: DescField & { fieldKind: 'list' }): FieldReader {
  const key = field.jsonName
  if (field.listKind === 'message') {
    const plan = planFor(field.message)
    return (o, wt, end, depth, first) => {
      if (wt !== 2) throw MALFORMED
      const len = readLength(end)
      const item = decodeMessage(plan, undefined, pos + len, depth + 1)
      const a = first ? undefined : (o[key] as unknown[] | undefined)
      if (a === undefined) o[key] = [item]
      else a.push(item)
      return 0
    }
  }
  if (field.listKind === 'enum') {
    const names = enumNames(field.enum)
    // Unlike singular fields, bufbuild keeps unknown values of closed enums in lists.
    const push = (o: Json): void => {
      const v = readVarint32() | 0
      const name = enumName(names, v)
      const a = o[key] as unknown[] | undefined
      if (a === undefined) o[key] = [name ?? v]
      else a.push(name ?? v)
    }
    return (o, wt, end) => {
      if (wt === 2) {
        const len = readLength(end)
        const pend = pos + len
        while (pos < pend) push(o)
        if (pos !== pend) throw MALFORMED
      } else if (wt === 0) {
        push(o)
      } else {
        throw MALFORMED
      }
      return 0
    }
  }
  const t = field.scalar
  const strict = field.utf8Validation
  const itemWt = wireTypeOf(t)
  const packable = itemWt !== 2
  return (o, wt, end, _depth, first) => {
    let a = first ? undefined : (o[key] as unknown[] | undefined)
    if (wt === 2 && packable) {
      const len = readLength(end)
      const pend = pos + len
      if (len > 0 && a === undefined) o[key] = a = []
      while (pos < pend) a!.push(readScalarJson(t, end, strict))
      if (pos !== pend) throw MALFORMED
      return 0
    }
    if (wt !== itemWt) throw MALFORMED
    const v = readScalarJson(t, end, strict)
    if (a === undefined) o[key] = [v]
    else a.push(v)
    return 0
  }
}

function compileMap(field: DescField & { fieldKind: 'map' }): FieldReader {
  const key = field.jsonName
  const keyType = field.mapKey
  const keyWt = wireTypeOf(keyType)
  const keyZero = String(scalarZeroJson(keyType))
  const strict = field.utf8Validation
  let valueWt: number
  let readValue: (prev: unknown, end: number, depth: number) => unknown
  let valueZero: () => unknown
  switch (field.mapKind) {
    case 'message': {
      const plan = planFor(field.message)
      valueWt = 2
      readValue = (prev, end, depth) => {
        const len = readLength(end)
        return decodeMessage(plan, prev as Json | undefined, pos + len, depth + 1)
      }
      valueZero = () => ({})
      break
    }
    case 'enum': {
      const names = enumNames(field.enum)
      const zero = field.enum.values[0]?.number ?? 0
      valueWt = 0
      readValue = () => {
        const v = readVarint32() | 0
        return enumName(names, v) ?? v
      }
      valueZero = () => enumName(names, zero) ?? zero
      break
    }
    default: {
      const t = field.scalar
      const zero = scalarZeroJson(t)
      valueWt = wireTypeOf(t)
      readValue = (_prev, end) => readScalarJson(t, end, strict)
      valueZero = () => zero
    }
  }
  return (o, wt, end, depth) => {
    if (wt !== 2) throw MALFORMED
    const len = readLength(end)
    const eend = pos + len
    let k: string | undefined
    let v: unknown
    while (pos < eend) {
      const tag = readTag()
      const no = tag >>> 3
      const twt = tag & 7
      if (no === 1) {
        if (twt !== keyWt) throw MALFORMED
        k = String(readScalarJson(keyType, eend, strict))
      } else if (no === 2) {
        if (twt !== valueWt) throw MALFORMED
        v = readValue(v, eend, depth)
      } else {
        skipField(twt)
      }
    }
    if (pos !== eend) throw MALFORMED
    let m = o[key] as Json | undefined
    if (m === undefined) o[key] = m = {}
    if (k === undefined) k = keyZero
    if (v === undefined) v = valueZero()
    if (k === '__proto__') {
      // An own property, not the prototype setter (bufbuild uses the same guard).
      Object.defineProperty(m, k, {
        value: v,
        enumerable: true,
        writable: true,
        configurable: true,
      })
    } else {
      m[k] = v
    }
    return 0
  }
}

/** google.protobuf types that toJson renders specially (Timestamp as a string etc.). */
const CUSTOM_JSON = new Set([
  'google.protobuf.Any',
  'google.protobuf.Timestamp',
  'google.protobuf.Duration',
  'google.protobuf.FieldMask',
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
])

/**
 * Whether the message graph uses something this decoder does not specialise: well-known types
 * with a custom JSON form, groups, proto2 `required`, `google.protobuf.NullValue`, or a field
 * whose JSON name is `__proto__`.
 */
function needsFallback(desc: DescMessage, seen: Set<DescMessage>): boolean {
  if (seen.has(desc)) return false
  seen.add(desc)
  if (CUSTOM_JSON.has(desc.typeName)) return true
  for (const f of desc.fields) {
    if (f.presence === 3 || f.jsonName === '__proto__') return true
    if (f.enum?.typeName === 'google.protobuf.NullValue') return true
    if (f.message !== undefined) {
      if (f.fieldKind !== 'map' && f.delimitedEncoding) return true
      if (needsFallback(f.message, seen)) return true
    }
  }
  return false
}

function validRange(bytes: Uint8Array, start: number, end: number): boolean {
  return start >= 0 && start <= end && end <= bytes.length && start % 1 === 0 && end % 1 === 0
}

/**
 * Compiles (once per descriptor, memoised) a decoder from binary protobuf straight to the
 * canonical protobuf JSON object, identical to
 * `toJson(desc, fromBinary(desc, bytes))` with default options, without materialising the
 * message. Input that is not well-formed protobuf yields `undefined`.
 *
 * The decoder is stricter than `fromBinary` in a few places where bufbuild is lenient about
 * malformed input (it then returns `undefined` where bufbuild may still produce a message):
 * a known field with a wire type that does not match its declaration, a value or nested
 * message running past the end of its enclosing length-delimited record, groups (wire types 3 / 4),
 * varints of unknown fields longer than 10 bytes, and nesting deeper than 32 messages.
 *
 * @param desc - message descriptor, e.g. `Mesh.PositionSchema`
 * @returns the decoder; `decoder(bytes, start?, end?)` decodes `bytes[start, end)`
 */
export function compileJsonDecoder(
  desc: DescMessage,
  options: JsonDecoderOptions = {},
): JsonDecoder {
  const reject = (options.invalidUtf8 ?? 'reject') === 'reject'
  const memo = reject ? decoders : replacingDecoders
  let decoder = memo.get(desc)
  if (decoder !== undefined) return decoder
  if (needsFallback(desc, new Set())) {
    decoder = (bytes, start = 0, end = bytes.length) => {
      if (!validRange(bytes, start, end)) return undefined
      try {
        return toJson(desc, fromBinary(desc, bytes.subarray(start, end))) as Json
      } catch {
        return undefined
      }
    }
  } else {
    const plan = planFor(desc)
    decoder = (bytes, start = 0, end = bytes.length) => {
      if (!validRange(bytes, start, end)) return undefined
      buf = bytes
      pos = start
      rejectInvalidUtf8 = reject
      try {
        return decodeMessage(plan, undefined, end, 0)
      } catch {
        return undefined
      } finally {
        buf = EMPTY
      }
    }
  }
  memo.set(desc, decoder)
  return decoder
}
