import { base64ToBytes, type PartialPacket } from '../index.js'

/** `MeshPacket.Priority` numbers by name (mesh.proto). */
const PRIORITY: Readonly<Record<string, number>> = {
  UNSET: 0,
  MIN: 1,
  BACKGROUND: 10,
  DEFAULT: 64,
  RELIABLE: 70,
  RESPONSE: 80,
  HIGH: 100,
  ALERT: 110,
  ACK: 120,
  MAX: 127,
}

/** `MeshPacket.TransportMechanism` numbers by name (mesh.proto). */
const TRANSPORT: Readonly<Record<string, number>> = {
  TRANSPORT_INTERNAL: 0,
  TRANSPORT_LORA: 1,
  TRANSPORT_LORA_ALT1: 2,
  TRANSPORT_LORA_ALT2: 3,
  TRANSPORT_LORA_ALT3: 4,
  TRANSPORT_MQTT: 5,
  TRANSPORT_MULTICAST_UDP: 6,
  TRANSPORT_API: 7,
}

function enumValue(table: Readonly<Record<string, number>>, v: string | undefined): number {
  if (v === undefined) return 0
  const n = table[v]
  if (n !== undefined) return n
  const parsed = Number(v)
  return Number.isInteger(parsed) ? parsed : 0
}

/** A growable protobuf writer (the few wire types a MeshPacket needs). */
class Writer {
  private buf = new Uint8Array(256)
  private pos = 0

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n))
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
  }

  /** An unsigned varint (< 2^32), or a negative int32 as ten bytes, as protobuf does. */
  varint(v: number): void {
    this.room(10)
    if (v < 0) {
      let lo = v >>> 0
      for (let i = 0; i < 4; i++) {
        this.buf[this.pos++] = (lo & 0x7f) | 0x80
        lo >>>= 7
      }
      // bits 28..63 of the sign-extended 64-bit value
      this.buf[this.pos++] = (lo & 0x0f) | 0x70 | 0x80
      for (let i = 0; i < 4; i++) this.buf[this.pos++] = 0xff
      this.buf[this.pos++] = 0x01
      return
    }
    let u = v >>> 0
    while (u >= 0x80) {
      this.buf[this.pos++] = (u & 0x7f) | 0x80
      u >>>= 7
    }
    this.buf[this.pos++] = u
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType)
  }

  uint(field: number, v: number | undefined): void {
    if (!v) return
    this.tag(field, 0)
    this.varint(v)
  }

  bool(field: number, v: boolean | undefined): void {
    if (v) this.uint(field, 1)
  }

  fixed32(field: number, v: number | undefined): void {
    if (!v) return
    this.tag(field, 5)
    this.room(4)
    const u = v >>> 0
    this.buf[this.pos++] = u & 0xff
    this.buf[this.pos++] = (u >>> 8) & 0xff
    this.buf[this.pos++] = (u >>> 16) & 0xff
    this.buf[this.pos++] = (u >>> 24) & 0xff
  }

  float(field: number, v: number | undefined): void {
    if (!v) return
    this.tag(field, 5)
    this.room(4)
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat32(this.pos, v, true)
    this.pos += 4
  }

  bytes(field: number, v: Uint8Array | undefined): void {
    if (v === undefined) return
    this.tag(field, 2)
    this.varint(v.length)
    this.room(v.length)
    this.buf.set(v, this.pos)
    this.pos += v.length
  }

  string(field: number, v: string | undefined): void {
    if (!v) return
    this.bytes(field, new TextEncoder().encode(v))
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos)
  }
}

function base64(text: string | undefined): Uint8Array | undefined {
  return text === undefined ? undefined : base64ToBytes(text)
}

/**
 * Rebuilds the `MeshPacket` a gateway published from the header a failed decode kept and the
 * ciphertext, field for field (`delayed` and `tx_after` are not kept by the codec and are left out;
 * neither takes part in decryption). @internal
 */
export function encodeMeshPacket(h: PartialPacket, ciphertext: Uint8Array): Uint8Array {
  const w = new Writer()
  w.fixed32(1, h.from)
  w.fixed32(2, h.to)
  w.uint(3, h.channel)
  w.bytes(5, ciphertext)
  w.fixed32(6, h.id)
  w.fixed32(7, h.rxTime)
  w.float(8, h.rxSnr)
  w.uint(9, h.hopLimit)
  w.bool(10, h.wantAck)
  w.uint(11, enumValue(PRIORITY, h.priority))
  if (h.rxRssi) {
    w.tag(12, 0)
    w.varint(h.rxRssi | 0)
  }
  w.bool(14, h.viaMqtt)
  w.uint(15, h.hopStart)
  w.bytes(16, base64(h.publicKey))
  w.bool(17, h.pkiEncrypted)
  w.uint(18, h.nextHop)
  w.uint(19, h.relayNode)
  w.uint(21, enumValue(TRANSPORT, h.transportMechanism))
  return w.finish()
}

/** Wraps a packet in a `ServiceEnvelope` with the channel and gateway it was published with. @internal */
export function encodeEnvelope(h: PartialPacket, ciphertext: Uint8Array): Uint8Array {
  const w = new Writer()
  w.bytes(1, encodeMeshPacket(h, ciphertext))
  w.string(2, h.channelId)
  w.string(3, h.gatewayId)
  return w.finish()
}
