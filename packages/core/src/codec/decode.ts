import { Buffer } from 'node:buffer'
import {
  type AppPayload,
  type DecodedPacket,
  type DecodeErrorCode,
  type DecodeFailure,
  err,
  isBroadcast,
  isKnownPortnum,
  nodeIdFromNum,
  nodeNumFromId,
  ok,
  type PacketKind,
  type PartialPacket,
  portnumName,
  type RawMessage,
  type Reception,
  type ReceptionClass,
  type Result,
} from '@meshtap/protocol'
import { Mesh } from '@meshtastic/protobufs'
import { type AesCtr, createAesCtr } from './aes-ctr.js'
import {
  type RawData,
  type RawMeshPacket,
  readData,
  readEnvelope,
  readMeshPacket,
} from './envelope.js'
import { decodeJsonUplink } from './json-uplink.js'
import {
  type ChannelKey,
  type ChannelKeyInput,
  createKeyRing,
  type KeyRing,
  nameHash,
} from './keyring.js'
import { buildAppPayload } from './payload.js'
import { type ParsedTopic, parseTopic } from './topic.js'

/** The result of decoding one message: a packet, or a failure that keeps what was known. */
export type DecodeResult = Result<DecodedPacket, DecodeFailure>

/** Options of {@link createCodec}. */
export interface CodecOptions {
  /** Channels to decrypt (the default `LongFast`/`AQ==` channel is always included). */
  keys?: readonly ChannelKeyInput[]
  /**
   * After the keys whose channel hash matches, try every other key too (a hash is only a hint:
   * custom channel names on a known key have other hashes). Each attempt must still pass the
   * plausibility checks.
   * @default true
   */
  tryAllKeys?: boolean
  /**
   * Inputs longer than this are refused with `PAYLOAD_TOO_LARGE` without being parsed. A real
   * envelope is under 600 bytes.
   * @default 16384
   */
  maxPayloadBytes?: number
  /** Attach {@link DecodedPacket.raw} (ciphertext, `Data` bytes, JSON uplink) to every packet. @default false */
  includeRaw?: boolean
}

/** A codec: turns raw MQTT messages into packets. Synchronous and pure; never throws. */
export interface Codec {
  readonly name: string
  /** Decodes one message. Expected failures are values, never exceptions. */
  decode(message: RawMessage): DecodeResult
}

/**
 * A message whose envelope and header have been read but whose payload is not decrypted yet, so a
 * pipeline can recognise a duplicate before spending work on it. `result` is set when there is
 * nothing left to do (a failure, a JSON uplink, a bare `Data`).
 */
export interface PacketView {
  /** The envelope and header as read (derived fields are filled when the view is opened). */
  readonly header?: PartialPacket
  /** The final result, when it needs no further step. */
  readonly result?: DecodeResult
}

/**
 * A view whose payload is still to be opened. The header object is built on first use: a copy
 * of a packet already seen (most messages on a busy broker) never needs it. @internal
 */
export class View implements PacketView {
  #header: (PartialPacket & DecodedPacket) | undefined
  constructor(
    readonly kind: PacketKind,
    readonly p: RawMeshPacket,
    readonly buf: Uint8Array,
    readonly topic: string | undefined,
    readonly parsed: ParsedTopic | undefined,
    readonly channelId: string,
    readonly gatewayId: string,
  ) {}
  get header(): PartialPacket & DecodedPacket {
    this.#header ??= header(
      this.kind,
      this.p,
      this.buf,
      this.topic,
      this.parsed,
      this.channelId,
      this.gatewayId,
    )
    return this.#header
  }
}

/**
 * Standard base64 with padding, as `bytesToBase64` from `@meshtap/protocol` writes it, with Node's
 * encoder: one flat string instead of a chain of concatenations.
 */
function bytesToBase64(bytes: Uint8Array, start = 0, end = bytes.length): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('base64')
}

/** The header of a packet as read from its envelope (no payload yet). */
function header(
  kind: PacketKind,
  p: RawMeshPacket,
  buf: Uint8Array,
  topic: string | undefined,
  parsed: ParsedTopic | undefined,
  channelId: string,
  gatewayId: string,
): PartialPacket & DecodedPacket {
  let h: PartialPacket & DecodedPacket
  if (topic !== undefined && parsed && channelId && gatewayId) {
    // The usual envelope: every field in one literal (the same fields in the same order as the
    // general case below), so none is added one by one afterwards.
    h = {
      kind,
      from: p.from,
      to: p.to,
      id: p.id,
      fromId: nodeIdFromNum(p.from),
      toId: nodeIdFromNum(p.to),
      channel: p.channel,
      hopLimit: p.hopLimit,
      hopStart: p.hopStart,
      wantAck: p.wantAck,
      viaMqtt: p.viaMqtt,
      rxTime: p.rxTime,
      rxSnr: p.rxSnr,
      rxRssi: p.rxRssi,
      encrypted: p.variant === 5,
      topic,
      root: parsed.root,
      channelId,
      gatewayId,
    } as PartialPacket & DecodedPacket
  } else {
    h = {
      kind,
      from: p.from,
      to: p.to,
      id: p.id,
      fromId: nodeIdFromNum(p.from),
      toId: nodeIdFromNum(p.to),
      channel: p.channel,
      hopLimit: p.hopLimit,
      hopStart: p.hopStart,
      wantAck: p.wantAck,
      viaMqtt: p.viaMqtt,
      rxTime: p.rxTime,
      rxSnr: p.rxSnr,
      rxRssi: p.rxRssi,
      encrypted: p.variant === 5,
    } as PartialPacket & DecodedPacket
    if (topic !== undefined) h.topic = topic
    if (parsed) h.root = parsed.root
    if (channelId) h.channelId = channelId
    if (gatewayId) h.gatewayId = gatewayId
  }
  if (p.priority !== 0) h.priority = PRIORITY[p.priority] ?? String(p.priority)
  if (p.nextHop !== 0) h.nextHop = p.nextHop
  if (p.relayNode !== 0) h.relayNode = p.relayNode
  if (p.pkiEncrypted) h.pkiEncrypted = true
  if (p.publicKeyStart >= 0 && p.publicKeyEnd > p.publicKeyStart) {
    h.publicKey = bytesToBase64(buf, p.publicKeyStart, p.publicKeyEnd)
  }
  if (p.transportMechanism !== 0) {
    h.transportMechanism = TRANSPORT[p.transportMechanism] ?? String(p.transportMechanism)
  }
  return h
}
function done(result: DecodeResult): PacketView {
  return result.ok ? { header: result.value, result } : { header: result.error.packet, result }
}

/** The Meshtastic codec, with its key ring. */
export interface MeshtasticCodec extends Codec {
  /** The channels this codec decrypts. */
  readonly keyRing: KeyRing
  /** Reads envelope and header only (no decryption). `decode(m)` is `open(inspect(m))`. */
  inspect(message: RawMessage): PacketView
  /** Finishes decoding a view from {@link MeshtasticCodec.inspect}: decrypts and decodes the payload. */
  open(view: PacketView): DecodeResult
}

const PRIORITY = Mesh.MeshPacket_Priority as unknown as Record<number, string>
const TRANSPORT = Mesh.MeshPacket_TransportMechanism as unknown as Record<number, string>

/**
 * Creates the Meshtastic codec.
 *
 * - Topics of any root depth (`/2/e/`, `/2/c/`, `/2/map/`, `/2/json/`); anything else fails with `UNKNOWN_TOPIC`.
 * - Channel decryption (AES-CTR) tries the keys whose channel hash matches first, then (by default) the rest;
 *   a result is accepted only when the `Data` and its payload look like what firmware writes, which rejects
 *   wrong keys on random-looking bytes far more reliably than "it parsed".
 * - PKI direct messages are reported as `PKI_ENCRYPTED` and never tried against channel keys.
 * - A packet that cannot be decrypted keeps its header and ciphertext in the failure.
 *
 * @example
 * const codec = createCodec({ keys: [{ name: 'Private', psk: 'AQ==' }] })
 * const result = codec.decode({ topic: 'msh/US/2/e/LongFast/!abcd1234', payload })
 * if (result.ok) console.log(result.value.fromId, result.value.app)
 * else console.log(result.error.error.code)
 */
export function createCodec(options: CodecOptions = {}): MeshtasticCodec {
  const keyRing = createKeyRing(options.keys ?? [])
  const tryAllKeys = options.tryAllKeys ?? true
  const maxBytes = options.maxPayloadBytes ?? 16_384
  const includeRaw = options.includeRaw ?? false
  const engines = new Map<string, AesCtr>()
  const nameHashes = new Map<string, number>()
  const topicCache = new Map<string, ParsedTopic | undefined>()

  function engine(ch: ChannelKey): AesCtr {
    let e = engines.get(ch.keyId)
    if (!e) {
      e = createAesCtr(ch.key)
      engines.set(ch.keyId, e)
    }
    return e
  }

  function hashOfName(name: string): number {
    let h = nameHashes.get(name)
    if (h === undefined) {
      h = nameHash(name)
      if (nameHashes.size < 4096) nameHashes.set(name, h)
    }
    return h
  }

  function fail(code: DecodeErrorCode, message: string, packet: PartialPacket): DecodeResult {
    return err({ error: { code, message }, packet })
  }

  /** Decryption result for one candidate, or undefined. */
  interface Opened {
    data: RawData
    bytes: Uint8Array
    app: AppPayload
    keyName?: string
  }

  function attempt(
    p: RawMeshPacket,
    buf: Uint8Array,
    ch: ChannelKey | undefined,
  ): Opened | undefined {
    const bytes = ch
      ? engine(ch).crypt(buf, p.payloadStart, p.payloadEnd, p.from, p.id)
      : buf.subarray(p.payloadStart, p.payloadEnd)
    const data = readData(bytes, 0, bytes.length, true)
    if (!data || !isKnownPortnum(data.portnum)) return undefined
    const payloadLen = data.payloadEnd - data.payloadStart
    // An empty payload is only sent by requests (traceroute, position/node info requests), which
    // ask for a response; replies and ACKs always carry a payload.
    if (
      payloadLen === 0 &&
      !data.wantResponse &&
      (data.bitfield < 0 || (data.bitfield & 2) === 0)
    ) {
      return undefined
    }
    if (payloadLen > 233) return undefined
    const app = buildAppPayload(data.portnum, bytes, data.payloadStart, data.payloadEnd, true)
    if (!app) return undefined
    return ch ? { data, bytes, app, keyName: ch.name } : { data, bytes, app }
  }

  function open(p: RawMeshPacket, buf: Uint8Array, channelId: string): Opened | undefined {
    const keys = keyRing.keys
    // Keys already tried, by index in `keys` (a bitmask; key rings are small).
    let tried = 0
    let o: Opened | undefined
    // 1. Keys that give this hash under the envelope's channel name.
    const nh = channelId ? hashOfName(channelId) : -1
    if (nh >= 0) {
      for (let i = 0; i < keys.length && i < 31; i++) {
        const ch = keys[i] as ChannelKey
        if ((nh ^ ch.keyXor) === p.channel) {
          tried |= 1 << i
          o = attempt(p, buf, ch)
          if (o) return o
        }
      }
    }
    // 2. Configured channels with this hash.
    for (const ch of keyRing.byHash(p.channel)) {
      const i = keys.indexOf(ch)
      if (i >= 0 && i < 31) {
        if (tried & (1 << i)) continue
        tried |= 1 << i
      }
      o = attempt(p, buf, ch)
      if (o) return o
    }
    // 3. An unencrypted channel (ham mode): plaintext Data in `encrypted`.
    const plaintextHash = nh === p.channel || keyRing.hasPlaintextHash(p.channel)
    if (plaintextHash) {
      o = attempt(p, buf, undefined)
      if (o) return o
    }
    // 4. Everything else.
    if (tryAllKeys) {
      for (let i = 0; i < keys.length; i++) {
        if (i < 31 && tried & (1 << i)) continue
        o = attempt(p, buf, keys[i] as ChannelKey)
        if (o) return o
      }
      if (!plaintextHash && nh < 0) return attempt(p, buf, undefined)
    }
    return undefined
  }

  function finish(
    h: PartialPacket & DecodedPacket,
    data: RawData,
    dataBytes: Uint8Array,
    app: AppPayload,
    keyName: string | undefined,
    ciphertext: Uint8Array | undefined,
  ): DecodeResult {
    const pkt = h as DecodedPacket
    pkt.portnum = data.portnum
    const name = portnumName(data.portnum)
    if (name !== undefined) pkt.portnumName = name
    if (data.wantResponse) pkt.wantResponse = true
    if (data.dest !== 0) pkt.dest = data.dest
    if (data.source !== 0) pkt.source = data.source
    if (data.requestId !== 0) pkt.requestId = data.requestId
    if (data.replyId !== 0) pkt.replyId = data.replyId
    if (data.emoji !== 0) pkt.emoji = data.emoji
    if (data.bitfield >= 0) {
      pkt.bitfield = data.bitfield
      pkt.okToMqtt = (data.bitfield & 1) === 1
    }
    pkt.payload = bytesToBase64(dataBytes, data.payloadStart, data.payloadEnd)
    if (keyName !== undefined) pkt.keyName = keyName
    if ('isReaction' in app) {
      if (data.replyId !== 0) app.replyId = data.replyId
      app.isReaction = data.emoji !== 0
    }
    pkt.app = app
    derive(pkt, data.bitfield >= 0)
    if (includeRaw) {
      pkt.raw = ciphertext
        ? { ciphertext: bytesToBase64(ciphertext), data: bytesToBase64(dataBytes) }
        : { data: bytesToBase64(dataBytes) }
    }
    return ok(pkt)
  }

  function openPacket(
    h: PartialPacket & DecodedPacket,
    p: RawMeshPacket,
    buf: Uint8Array,
    channelId: string,
  ): DecodeResult {
    if (p.variant === 4) {
      const data = readData(buf, p.payloadStart, p.payloadEnd, false)
      if (!data) {
        derive(h, false)
        return fail('MALFORMED_DATA', 'the decoded Data message is not valid protobuf', h)
      }
      const dataBytes = buf.subarray(p.payloadStart, p.payloadEnd)
      const app = buildAppPayload(
        data.portnum,
        dataBytes,
        data.payloadStart - p.payloadStart,
        data.payloadEnd - p.payloadStart,
        false,
      )
      if (!app) return payloadFailure(h, data)
      return finish(h, rebase(data, p.payloadStart), dataBytes, app, undefined, undefined)
    }
    if (p.variant !== 5 || p.payloadEnd === p.payloadStart) {
      derive(h, false)
      return fail('EMPTY_PACKET', 'the packet has neither a decoded nor an encrypted payload', h)
    }
    const ciphertext = buf.subarray(p.payloadStart, p.payloadEnd)
    if (p.pkiEncrypted || channelId === 'PKI') {
      derive(h, false)
      h.ciphertext = bytesToBase64(ciphertext)
      return fail(
        'PKI_ENCRYPTED',
        'a PKI-encrypted direct message: only the recipient’s private key opens it',
        h,
      )
    }
    const opened = ciphertext.length <= 256 ? open(p, buf, channelId) : undefined
    if (!opened) {
      derive(h, false)
      h.ciphertext = bytesToBase64(ciphertext)
      if (p.channel === 0 && !isBroadcast(p.to) && p.to !== 0) {
        return fail(
          'PKI_ENCRYPTED',
          'a direct message with channel hash 0 that no channel key opens: most likely PKI-encrypted (only the recipient’s private key opens it)',
          h,
        )
      }
      return fail(
        'NO_MATCHING_KEY',
        `no configured channel key decrypts this packet (channel hash ${p.channel}${
          channelId ? `, channel "${channelId}"` : ''
        }); add the channel's key, e.g. --key ${channelId || 'NAME'}=<base64 PSK>`,
        h,
      )
    }
    return finish(h, opened.data, opened.bytes, opened.app, opened.keyName, ciphertext)
  }

  function inspect(message: RawMessage): PacketView {
    const { payload } = message
    // JavaScript callers (and JSON inputs) may pass null or a non-string: treat it as no topic.
    const topic = typeof message.topic === 'string' ? message.topic : undefined
    let parsed: ParsedTopic | undefined
    let kind: PacketKind | undefined = message.kind
    if (topic !== undefined) {
      parsed = topicCache.get(topic)
      if (parsed === undefined && !topicCache.has(topic)) {
        parsed = parseTopic(topic)
        // Topics repeat (one per channel and gateway): remember a bounded number of them.
        if (topicCache.size >= 8192) topicCache.clear()
        topicCache.set(topic, parsed)
      }
      if (!parsed && kind === undefined) {
        return done(
          fail(
            'UNKNOWN_TOPIC',
            `"${topic.slice(0, 200)}" is not a Meshtastic uplink topic (<root>/2/e/<channel>/<gateway>, <root>/2/map/ or <root>/2/json/<channel>/<gateway>)`,
            { kind: 'envelope', topic },
          ),
        )
      }
      kind ??= parsed?.kind
    }
    kind ??= 'envelope'
    if (!(payload instanceof Uint8Array)) {
      return done(fail('INVALID_INPUT', 'the payload must be bytes (Uint8Array)', { kind }))
    }
    if (payload.length > maxBytes) {
      return done(
        fail(
          'PAYLOAD_TOO_LARGE',
          `${payload.length} bytes is more than any Meshtastic message (limit ${maxBytes}); not parsed`,
          { kind, ...(topic !== undefined ? { topic } : {}) },
        ),
      )
    }
    const channelFromTopic = parsed?.channelId ?? ''
    const gatewayFromTopic = parsed?.gatewayId ?? ''
    switch (kind) {
      case 'envelope':
      case 'mapreport': {
        const env = readEnvelope(payload, parsed?.channelId, parsed?.gatewayId)
        if (!env?.packet) {
          return done(
            fail(
              'MALFORMED_ENVELOPE',
              env ? 'the ServiceEnvelope has no packet' : 'not a valid ServiceEnvelope protobuf',
              {
                kind,
                ...(topic !== undefined ? { topic } : {}),
                ...(parsed ? { root: parsed.root } : {}),
              },
            ),
          )
        }
        return new View(
          kind,
          env.packet,
          payload,
          topic,
          parsed,
          env.channelId || channelFromTopic,
          env.gatewayId || gatewayFromTopic,
        )
      }
      case 'meshpacket': {
        const p = readMeshPacket(payload)
        if (!p) return done(fail('MALFORMED_ENVELOPE', 'not a valid MeshPacket protobuf', { kind }))
        return new View(kind, p, payload, topic, parsed, channelFromTopic, gatewayFromTopic)
      }
      case 'data': {
        const data = readData(payload, 0, payload.length, false)
        if (!data) return done(fail('MALFORMED_DATA', 'not a valid Data protobuf', { kind }))
        const p = blankPacket()
        const h = header(kind, p, payload, topic, parsed, channelFromTopic, gatewayFromTopic)
        const app = buildAppPayload(
          data.portnum,
          payload,
          data.payloadStart,
          data.payloadEnd,
          false,
        )
        if (!app) return done(payloadFailure(h, data))
        return done(finish(h, data, payload, app, undefined, undefined))
      }
      case 'json-uplink':
        return done(decodeJsonUplink(payload, topic, parsed, includeRaw))
      default:
        return done(fail('INVALID_INPUT', `unknown kind "${String(kind)}"`, { kind: 'envelope' }))
    }
  }

  function openView(v: PacketView): DecodeResult {
    if (v.result) return v.result
    if (!(v instanceof View)) {
      return fail('INVALID_INPUT', 'not a PacketView from this codec', { kind: 'envelope' })
    }
    return openPacket(v.header, v.p, v.buf, v.channelId)
  }

  function payloadFailure(h: PartialPacket & DecodedPacket, data: RawData): DecodeResult {
    derive(h, data.bitfield >= 0)
    h.portnum = data.portnum
    const name = portnumName(data.portnum)
    if (name !== undefined) h.portnumName = name
    return fail(
      'MALFORMED_PAYLOAD',
      `the ${name ?? `port ${data.portnum}`} payload does not parse as its message`,
      h,
    )
  }

  return {
    name: 'meshtastic',
    keyRing,
    inspect,
    open: openView,
    decode: (message) => openView(inspect(message)),
  }
}

function rebase(d: RawData, offset: number): RawData {
  return { ...d, payloadStart: d.payloadStart - offset, payloadEnd: d.payloadEnd - offset }
}

function blankPacket(): RawMeshPacket {
  const p = readMeshPacket(new Uint8Array(0)) as RawMeshPacket
  return p
}

/**
 * Fills `hopsAway` and `receptionClass`. `hopsAway` is only given where it is valid: `hopStart`
 * 1–7 (0 means "unknown" before firmware 2.5, unless `Data.bitfield` is present) and
 * `0 < hopLimit ≤ hopStart` — many brokers strip `hopLimit` to 0, so 0 is not trusted.
 */
export function derive(p: PartialPacket | DecodedPacket, hasBitfield: boolean): void {
  const hopsAway = hopsAwayOf(p.kind, p.hopStart ?? 0, p.hopLimit ?? 0, hasBitfield)
  if (hopsAway !== undefined) p.hopsAway = hopsAway
  else if (p.hopsAway !== undefined) delete p.hopsAway
  p.receptionClass = classOf(
    p.gatewayId !== undefined && p.gatewayId === p.fromId,
    p.gatewayId !== undefined,
    p.rxSnr,
    p.rxRssi,
    hopsAway,
  )
}

/** Hops between sender and gateway, where the hop fields make it knowable. */
function hopsAwayOf(
  kind: PacketKind | undefined,
  hopStart: number,
  hopLimit: number,
  hasBitfield: boolean,
): number | undefined {
  if (hopStart > 0 && hopStart <= 7 && hopLimit > 0 && hopLimit <= hopStart) {
    return hopStart - hopLimit
  }
  if (hopStart === 0 && hopLimit === 0 && hasBitfield && kind !== 'mapreport') return 0
  return undefined
}

/** How the gateway came by the packet. */
function classOf(
  self: boolean,
  hasGateway: boolean,
  rxSnr: number | undefined,
  rxRssi: number | undefined,
  hopsAway: number | undefined,
): ReceptionClass {
  if (self) return 'self'
  if (hasGateway && !rxSnr && !rxRssi) return 'injected'
  if (hopsAway === 0) return 'direct'
  if (hopsAway !== undefined) return 'relayed'
  return 'unknown'
}

/**
 * The reception a gateway copy of an already-known packet adds, read straight from a view's raw
 * header (no header object, no node-id strings): what `derive` then the ingest's reception would
 * give, for a fraction of the work. `undefined` when the view has no raw header (already decoded
 * or failed). @internal
 */
export function copyReception(
  view: PacketView,
  packetKey: string,
  receivedAt: number,
  source: string | undefined,
  hasBitfield: boolean,
): Reception | undefined {
  if (!(view instanceof View)) return undefined
  const p = view.p
  const gatewayId = view.gatewayId || undefined
  const hopsAway = hopsAwayOf(view.kind, p.hopStart, p.hopLimit, hasBitfield)
  const receptionClass = classOf(
    gatewayId !== undefined &&
      nodeNumFromId(gatewayId) === p.from &&
      gatewayId === nodeIdFromNum(p.from),
    gatewayId !== undefined,
    p.rxSnr,
    p.rxRssi,
    hopsAway,
  )
  const topic = view.topic
  const channelId = view.channelId
  let r: Reception
  if (gatewayId !== undefined && topic !== undefined && channelId) {
    // The usual copy: the fields every such copy has in one literal (same order as below).
    r =
      source !== undefined
        ? {
            packetKey,
            rxTime: p.rxTime,
            receivedAt,
            rxSnr: p.rxSnr,
            rxRssi: p.rxRssi,
            hopLimit: p.hopLimit,
            hopStart: p.hopStart,
            receptionClass,
            gatewayId,
            topic,
            source,
            channelId,
          }
        : {
            packetKey,
            rxTime: p.rxTime,
            receivedAt,
            rxSnr: p.rxSnr,
            rxRssi: p.rxRssi,
            hopLimit: p.hopLimit,
            hopStart: p.hopStart,
            receptionClass,
            gatewayId,
            topic,
            channelId,
          }
  } else {
    r = {
      packetKey,
      rxTime: p.rxTime,
      receivedAt,
      rxSnr: p.rxSnr,
      rxRssi: p.rxRssi,
      hopLimit: p.hopLimit,
      hopStart: p.hopStart,
      receptionClass,
    }
    if (gatewayId !== undefined) r.gatewayId = gatewayId
    if (topic !== undefined) r.topic = topic
    if (source !== undefined) r.source = source
    if (channelId) r.channelId = channelId
  }
  if (p.relayNode !== 0) r.relayNode = p.relayNode
  if (hopsAway !== undefined) r.hopsAway = hopsAway
  return r
}
