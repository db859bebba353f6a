/**
 * Minimal protobuf wire reader for the hot path (envelope, packet and `Data` headers).
 * Functions never throw: they return -1 (or set `r.err`) on malformed input.
 * @internal
 */
export interface WireReader {
  buf: Uint8Array
  pos: number
  end: number
  /** Set when the input was malformed. */
  err: boolean
}

/** Creates a reader over `buf[start, end)`. */
export function wireReader(buf: Uint8Array, start = 0, end = buf.length): WireReader {
  return { buf, pos: start, end, err: false }
}

/**
 * Reads a varint that must fit in 32 bits of information (tags, lengths, uint32, enums).
 * Higher bits of a 64-bit varint are dropped like protobuf does for 32-bit fields.
 * Returns the unsigned value (0 … 2^32−1); sets `err` when truncated or longer than 10 bytes.
 */
export function readVarint32(r: WireReader): number {
  const buf = r.buf
  let pos = r.pos
  const end = r.end
  let result = 0
  let shift = 0
  for (let i = 0; i < 10; i++) {
    if (pos >= end) {
      r.err = true
      return 0
    }
    const b = buf[pos++] as number
    if (shift < 32) result |= (b & 0x7f) << shift
    shift += 7
    if (b < 0x80) {
      r.pos = pos
      return result >>> 0
    }
  }
  r.err = true
  return 0
}

/** Reads a little-endian fixed32 as an unsigned number. */
export function readFixed32(r: WireReader): number {
  const pos = r.pos
  if (pos + 4 > r.end) {
    r.err = true
    return 0
  }
  const b = r.buf
  r.pos = pos + 4
  return (
    ((b[pos] as number) | ((b[pos + 1] as number) << 8) | ((b[pos + 2] as number) << 16)) +
    (b[pos + 3] as number) * 0x1000000
  )
}

const F32 = new Float32Array(1)
const F32B = new Uint8Array(F32.buffer)

/** Reads a little-endian float32, widened to a JS number. */
export function readFloat(r: WireReader): number {
  const pos = r.pos
  if (pos + 4 > r.end) {
    r.err = true
    return 0
  }
  const b = r.buf
  F32B[0] = b[pos] as number
  F32B[1] = b[pos + 1] as number
  F32B[2] = b[pos + 2] as number
  F32B[3] = b[pos + 3] as number
  r.pos = pos + 4
  return F32[0] as number
}

/** Reads a length prefix and returns the start offset of the delimited bytes (end = start + len), or -1. */
export function readLengthDelimited(r: WireReader): number {
  const len = readVarint32(r)
  if (r.err) return -1
  const start = r.pos
  if (len > r.end - start) {
    r.err = true
    return -1
  }
  r.pos = start + len
  return start
}

/** Skips a field of the given wire type. Groups (3/4) and 6/7 are malformed. */
export function skipField(r: WireReader, wireType: number): void {
  switch (wireType) {
    case 0:
      readVarint32(r)
      return
    case 1:
      if (r.pos + 8 > r.end) r.err = true
      else r.pos += 8
      return
    case 2:
      readLengthDelimited(r)
      return
    case 5:
      if (r.pos + 4 > r.end) r.err = true
      else r.pos += 4
      return
    default:
      r.err = true
  }
}

const utf8 = new TextDecoder('utf-8')
const utf8Fatal = new TextDecoder('utf-8', { fatal: true })

/** Decodes UTF-8 like protobuf runtimes do (invalid sequences become U+FFFD). */
export function decodeUtf8(buf: Uint8Array, start: number, end: number): string {
  // Short ASCII strings are faster by hand than through TextDecoder.
  if (end - start < 24) {
    let s = ''
    for (let i = start; i < end; i++) {
      const c = buf[i] as number
      if (c >= 0x80) return utf8.decode(buf.subarray(start, end))
      s += String.fromCharCode(c)
    }
    return s
  }
  return utf8.decode(buf.subarray(start, end))
}

/** Decodes UTF-8 strictly; `undefined` when the bytes are not valid UTF-8. */
export function decodeUtf8Strict(bytes: Uint8Array): string | undefined {
  try {
    return utf8Fatal.decode(bytes)
  } catch {
    return undefined
  }
}
