import {
  readFixed32,
  readFloat,
  readLengthDelimited,
  readVarint32,
  skipField,
  type WireReader,
  wireReader,
} from './wire.js'

/** The fields of a `MeshPacket` that meshtap reads, with byte ranges instead of copies. @internal */
export interface RawMeshPacket {
  from: number
  to: number
  channel: number
  id: number
  rxTime: number
  rxSnr: number
  hopLimit: number
  wantAck: boolean
  priority: number
  rxRssi: number
  delayed: number
  viaMqtt: boolean
  hopStart: number
  pkiEncrypted: boolean
  nextHop: number
  relayNode: number
  txAfter: number
  transportMechanism: number
  /** `public_key` range, or start −1. */
  publicKeyStart: number
  publicKeyEnd: number
  /** Which payload variant was last seen: 0 none, 4 decoded, 5 encrypted. */
  variant: 0 | 4 | 5
  /** Byte range of `decoded` (a `Data` message) or `encrypted`. */
  payloadStart: number
  payloadEnd: number
}

/** A `ServiceEnvelope` read without copying: the packet and the two strings. @internal */
export interface RawEnvelope {
  packet: RawMeshPacket | undefined
  channelId: string
  gatewayId: string
}

function emptyPacket(): RawMeshPacket {
  return {
    from: 0,
    to: 0,
    channel: 0,
    id: 0,
    rxTime: 0,
    rxSnr: 0,
    hopLimit: 0,
    wantAck: false,
    priority: 0,
    rxRssi: 0,
    delayed: 0,
    viaMqtt: false,
    hopStart: 0,
    pkiEncrypted: false,
    nextHop: 0,
    relayNode: 0,
    txAfter: 0,
    transportMechanism: 0,
    publicKeyStart: -1,
    publicKeyEnd: -1,
    variant: 0,
    payloadStart: 0,
    payloadEnd: 0,
  }
}

const utf8 = new TextDecoder('utf-8')

/**
 * Reads a length-delimited string. When the bytes spell `hint` (the envelope repeats the channel and
 * gateway of its topic), returns `hint` itself instead of building a new string.
 */
function readString(r: WireReader, hint: string | undefined): string {
  const start = readLengthDelimited(r)
  if (start < 0) return ''
  const end = r.pos
  const buf = r.buf
  if (hint !== undefined && hint.length === end - start) {
    let same = true
    for (let i = 0; i < hint.length; i++) {
      if (hint.charCodeAt(i) !== buf[start + i]) {
        same = false
        break
      }
    }
    if (same) return hint
  }
  let s = ''
  for (let i = start; i < end; i++) {
    const c = buf[i] as number
    if (c >= 0x80) return utf8.decode(buf.subarray(start, end))
    s += String.fromCharCode(c)
  }
  return s
}

/** Reads the fields of a MeshPacket from `r` into `p` (merging, like protobuf). */
function readMeshPacketInto(r: WireReader, p: RawMeshPacket): boolean {
  while (r.pos < r.end) {
    const tag = readVarint32(r)
    if (r.err) return false
    const field = tag >>> 3
    const wt = tag & 7
    switch (field) {
      case 1:
        if (wt !== 5) return false
        p.from = readFixed32(r)
        break
      case 2:
        if (wt !== 5) return false
        p.to = readFixed32(r)
        break
      case 3:
        if (wt !== 0) return false
        p.channel = readVarint32(r)
        break
      case 4:
      case 5: {
        if (wt !== 2) return false
        const start = readLengthDelimited(r)
        if (start < 0) return false
        p.variant = field
        p.payloadStart = start
        p.payloadEnd = r.pos
        break
      }
      case 6:
        if (wt !== 5) return false
        p.id = readFixed32(r)
        break
      case 7:
        if (wt !== 5) return false
        p.rxTime = readFixed32(r)
        break
      case 8:
        if (wt !== 5) return false
        p.rxSnr = readFloat(r)
        // NaN or ±Infinity from a broken or hostile gateway: no usable figure, as if absent.
        if (p.rxSnr - p.rxSnr !== 0) p.rxSnr = 0
        break
      case 9:
        if (wt !== 0) return false
        p.hopLimit = readVarint32(r)
        break
      case 10:
        if (wt !== 0) return false
        p.wantAck = readVarint32(r) !== 0
        break
      case 11:
        if (wt !== 0) return false
        p.priority = readVarint32(r) | 0
        break
      case 12:
        if (wt !== 0) return false
        p.rxRssi = readVarint32(r) | 0
        break
      case 13:
        if (wt !== 0) return false
        p.delayed = readVarint32(r) | 0
        break
      case 14:
        if (wt !== 0) return false
        p.viaMqtt = readVarint32(r) !== 0
        break
      case 15:
        if (wt !== 0) return false
        p.hopStart = readVarint32(r)
        break
      case 16: {
        if (wt !== 2) return false
        const start = readLengthDelimited(r)
        if (start < 0) return false
        p.publicKeyStart = start
        p.publicKeyEnd = r.pos
        break
      }
      case 17:
        if (wt !== 0) return false
        p.pkiEncrypted = readVarint32(r) !== 0
        break
      case 18:
        if (wt !== 0) return false
        p.nextHop = readVarint32(r)
        break
      case 19:
        if (wt !== 0) return false
        p.relayNode = readVarint32(r)
        break
      case 20:
        if (wt !== 0) return false
        p.txAfter = readVarint32(r)
        break
      case 21:
        if (wt !== 0) return false
        p.transportMechanism = readVarint32(r) | 0
        break
      default:
        if (field === 0) return false
        skipField(r, wt)
    }
    if (r.err) return false
  }
  return true
}

/** Reads a bare `MeshPacket`; `undefined` when it is not valid protobuf. @internal */
export function readMeshPacket(
  buf: Uint8Array,
  start = 0,
  end = buf.length,
): RawMeshPacket | undefined {
  const p = emptyPacket()
  return readMeshPacketInto(wireReader(buf, start, end), p) ? p : undefined
}

/**
 * Reads a `ServiceEnvelope`; `undefined` when it is not valid protobuf. `channelHint` and
 * `gatewayHint` (from the topic) let equal strings be reused rather than rebuilt. @internal
 */
export function readEnvelope(
  buf: Uint8Array,
  channelHint?: string,
  gatewayHint?: string,
): RawEnvelope | undefined {
  const r = wireReader(buf)
  const env: RawEnvelope = { packet: undefined, channelId: '', gatewayId: '' }
  while (r.pos < r.end) {
    const tag = readVarint32(r)
    if (r.err) return undefined
    const field = tag >>> 3
    const wt = tag & 7
    if (field === 1) {
      if (wt !== 2) return undefined
      const start = readLengthDelimited(r)
      if (start < 0) return undefined
      if (!env.packet) env.packet = emptyPacket()
      // The packet is read with this same reader, narrowed to its bytes, then widened again.
      const next = r.pos
      const end = r.end
      r.pos = start
      r.end = next
      if (!readMeshPacketInto(r, env.packet)) return undefined
      r.pos = next
      r.end = end
    } else if (field === 2 || field === 3) {
      if (wt !== 2) return undefined
      if (field === 2) env.channelId = readString(r, channelHint)
      else env.gatewayId = readString(r, gatewayHint)
    } else {
      if (field === 0) return undefined
      skipField(r, wt)
    }
    if (r.err) return undefined
  }
  return env
}

/** The `Data` layer, with the payload as a byte range. @internal */
export interface RawData {
  portnum: number
  payloadStart: number
  payloadEnd: number
  wantResponse: boolean
  dest: number
  source: number
  requestId: number
  replyId: number
  emoji: number
  /** −1 when absent (explicit presence, firmware ≥ 2.5 sets it). */
  bitfield: number
}

/**
 * Reads `Data`. With `strict`, the bytes must look like what firmware (nanopb) writes: fields in
 * ascending order, each at most once, known field numbers with their wire types, minimal varints,
 * booleans 0/1, a non-zero port, and nothing after the last field. Strict reading is how meshtap
 * tells a right key from a wrong one. @internal
 */
export function readData(
  buf: Uint8Array,
  start: number,
  end: number,
  strict: boolean,
): RawData | undefined {
  const r = wireReader(buf, start, end)
  const d: RawData = {
    portnum: 0,
    // An absent payload is an empty range (at `start`, so offsets stay valid when rebased).
    payloadStart: start,
    payloadEnd: start,
    wantResponse: false,
    dest: 0,
    source: 0,
    requestId: 0,
    replyId: 0,
    emoji: 0,
    bitfield: -1,
  }
  let last = 0
  while (r.pos < r.end) {
    const tagPos = r.pos
    const tag = readVarint32(r)
    if (r.err) return undefined
    const field = tag >>> 3
    const wt = tag & 7
    if (strict) {
      if (field <= last || r.pos - tagPos !== 1) return undefined
      last = field
    }
    switch (field) {
      case 1:
      case 3:
      case 9: {
        if (wt !== 0) return undefined
        const vStart = r.pos
        const v = readVarint32(r)
        if (r.err) return undefined
        if (strict && r.pos - vStart > 1 && buf[r.pos - 1] === 0) return undefined
        if (field === 1) d.portnum = v | 0
        else if (field === 3) {
          if (strict && v > 1) return undefined
          d.wantResponse = v !== 0
        } else {
          if (strict && v > 0xff) return undefined
          d.bitfield = v
        }
        break
      }
      case 2: {
        if (wt !== 2) return undefined
        const s = readLengthDelimited(r)
        if (s < 0) return undefined
        d.payloadStart = s
        d.payloadEnd = r.pos
        break
      }
      case 4:
      case 5:
      case 6:
      case 7:
      case 8: {
        if (wt !== 5) return undefined
        const v = readFixed32(r)
        if (field === 4) d.dest = v
        else if (field === 5) d.source = v
        else if (field === 6) d.requestId = v
        else if (field === 7) d.replyId = v
        else d.emoji = v
        break
      }
      default:
        if (field === 0) return undefined
        // Field 10 (xeddsa_signature, firmware 2.8) and later additions: skip, but in strict mode
        // only with a plausible wire type and within the range firmware could have added.
        if (strict && (field > 15 || (field === 10 && wt !== 2))) return undefined
        skipField(r, wt)
    }
    if (r.err) return undefined
  }
  if (strict && d.portnum === 0) return undefined
  return d
}
