/**
 * The meshtap live wire protocol, version 1: JSON text frames over a WebSocket, between
 * `@meshtap/ws-server` and any viewer (browser, app, another language). The reference is
 * `docs/protocol/websocket.md`; this module holds the message types, a runtime validator for every
 * client → server message, and the merge-patch helpers node updates use.
 *
 * No runtime dependencies, no Node APIs.
 */
import type { DropEvent, FlushEvent } from './events.js'
import { nodeIdFromNum, nodeNumFromId } from './node-id.js'
import type { NodeState } from './node-state.js'
import { err, ok, type Result } from './result.js'
import type { SourceStatus } from './source.js'
import type { Reception, StoredPacket, UndecodedPacket } from './store.js'

// ---------------------------------------------------------------------------------------------
// Constants

/**
 * The protocol version this module describes. It changes only for incompatible changes; new
 * optional fields and new message types a client may ignore do not change it.
 *
 * @example
 * if (hello.protocol !== WIRE_PROTOCOL_VERSION) socket.close()
 */
export const WIRE_PROTOCOL_VERSION = 1

/**
 * The WebSocket subprotocol of version 1. Clients that offer subprotocols must offer this one (the
 * server selects it); offering none is fine too.
 *
 * @example
 * new WebSocket('wss://mesh.example/live', [WIRE_SUBPROTOCOL])
 */
export const WIRE_SUBPROTOCOL = 'meshtap.v1'

/**
 * Prefix of a subprotocol that carries an access token, for clients that cannot set headers
 * (browsers): offer `meshtap.token.<token>` next to {@link WIRE_SUBPROTOCOL}. The server never
 * selects it. The token must consist of subprotocol-safe characters (letters, digits, `-._~!#$&'*+^|`).
 *
 * @example
 * new WebSocket(url, [WIRE_SUBPROTOCOL, `${WIRE_TOKEN_PROTOCOL_PREFIX}${token}`])
 */
export const WIRE_TOKEN_PROTOCOL_PREFIX = 'meshtap.token.'

/**
 * Every kind of event a batch can carry:
 * - `packet`: a new logical packet (its first copy);
 * - `reception`: another gateway's copy of a known packet;
 * - `undecoded`: a packet kept without being decoded (no key, PKI);
 * - `node`: a node's state changed (sent as a difference), entered or left the filter;
 * - `drop`: something was not kept, and why;
 * - `flush`: a batch was committed to the store;
 * - `status`: a source's connection state changed.
 *
 * @example
 * const kinds: WireEventKind[] = WIRE_EVENT_KINDS.filter((k) => k !== 'flush')
 */
export const WIRE_EVENT_KINDS = [
  'packet',
  'reception',
  'undecoded',
  'node',
  'drop',
  'flush',
  'status',
] as const

/**
 * A kind of event; see {@link WIRE_EVENT_KINDS}.
 *
 * @example
 * const kind: WireEventKind = 'node'
 */
export type WireEventKind = (typeof WIRE_EVENT_KINDS)[number]

/**
 * The kinds a subscription gets when its filter names none: the mesh data, not the operational
 * events (`drop`, `flush`, `status`), which a client asks for by name.
 *
 * @example
 * const kinds = filter.kinds ?? DEFAULT_WIRE_EVENT_KINDS
 */
export const DEFAULT_WIRE_EVENT_KINDS: readonly WireEventKind[] = [
  'packet',
  'reception',
  'undecoded',
  'node',
]

/**
 * Error codes of {@link WireErrorMessage}:
 * - `BAD_JSON`: the text frame is not JSON;
 * - `BAD_MESSAGE`: JSON, but not a valid message (a field is missing or has the wrong type), or a binary frame;
 * - `UNKNOWN_TYPE`: the message's `type` is not one of this protocol's;
 * - `BAD_FILTER`: the subscription filter is invalid (unknown field or kind, out of range, too many values);
 * - `TOO_LARGE`: the message is over the server's `maxMessageBytes` (ignored; frames over
 *   `maxFrameBytes` close the connection with 1009 instead);
 * - `RATE_LIMITED`: more messages than the server's rate; the message was ignored;
 * - `UNSUPPORTED_PROTOCOL`: the client's `hello` names a version the server does not speak (then closed with 1002);
 * - `INTERNAL`: the server failed while handling the message (a bug; the connection stays open).
 *
 * @example
 * if (WIRE_ERROR_CODES.includes(message.code)) console.warn(message.code, message.message)
 */
export const WIRE_ERROR_CODES = [
  'BAD_JSON',
  'BAD_MESSAGE',
  'UNKNOWN_TYPE',
  'BAD_FILTER',
  'TOO_LARGE',
  'RATE_LIMITED',
  'UNSUPPORTED_PROTOCOL',
  'INTERNAL',
] as const

/**
 * An error code; see {@link WIRE_ERROR_CODES}.
 *
 * @example
 * const code: WireErrorCode = 'BAD_FILTER'
 */
export type WireErrorCode = (typeof WIRE_ERROR_CODES)[number]

/**
 * WebSocket close codes the server uses, and why:
 * - 1000 `NORMAL`: the client closed;
 * - 1001 `GOING_AWAY`: the server is shutting down (reconnect later, with `resume`);
 * - 1002 `PROTOCOL_ERROR`: the client speaks a protocol version the server does not;
 * - 1008 `POLICY_VIOLATION`: message flood (far over the rate limit);
 * - 1009 `MESSAGE_TOO_BIG`: a frame over `maxFrameBytes`;
 * - 1011 `INTERNAL_ERROR`: the server failed;
 * - 1013 `TRY_AGAIN_LATER`: the client read too slowly and fell behind (reconnect, with `resume`).
 *
 * @example
 * socket.onclose = (e) => { if (e.code === WIRE_CLOSE_CODES.TRY_AGAIN_LATER) reconnectSoon() }
 */
export const WIRE_CLOSE_CODES = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
} as const

/**
 * What a server may announce in its `hello`:
 * - `resume`: `subscribe` accepts `resume`;
 * - `snapshot`: `subscribe` sends a snapshot of the matching nodes;
 * - `store-snapshot`: snapshots also include nodes only the store remembers;
 * - `node-patch`: node changes are sent as merge patches (always, in version 1);
 * - `deflate`: this connection negotiated permessage-deflate (batches over the threshold are compressed).
 *
 * @example
 * const canResume = hello.capabilities.includes('resume')
 */
export type WireCapability = 'resume' | 'snapshot' | 'store-snapshot' | 'node-patch' | 'deflate'

/**
 * A request id a client may put on any message; the server copies it into its answer
 * (`subscribed`, `unsubscribed`, `pong`, or an `error` about that message). A string of at most
 * 64 characters or a safe integer.
 *
 * @example
 * const id: WireRequestId = 'sub-1'
 */
export type WireRequestId = string | number

// ---------------------------------------------------------------------------------------------
// Filters

/**
 * A latitude/longitude box in degrees: `south ≤ north`; `west > east` crosses the antimeridian.
 * (The same shape as the store queries' bounding box.)
 *
 * @example
 * const bayArea: WireBoundingBox = { south: 37.2, west: -122.6, north: 38.0, east: -121.7 }
 */
export interface WireBoundingBox {
  south: number
  west: number
  north: number
  east: number
}

/**
 * What a subscription receives. Every field is optional; the fields combine with AND, the values of
 * one field with OR. A field only restricts the kinds of events that carry what it tests (see the
 * table in `docs/protocol/websocket.md`): `channels` does not restrict `node` events, for example.
 * An event of a kind the field applies to, but which lacks the value (a packet without a channel
 * name), does not match.
 *
 * @example
 * const filter: WireFilter = {
 *   kinds: ['packet', 'node'],
 *   channels: ['LongFast'],
 *   bbox: { south: 37.2, west: -122.6, north: 38.0, east: -121.7 },
 * }
 */
export interface WireFilter {
  /**
   * Kinds of events.
   * @default DEFAULT_WIRE_EVENT_KINDS (packet, reception, undecoded, node)
   */
  kinds?: WireEventKind[]
  /** Nodes by number or `!xxxxxxxx` id: packets from or to them, copies of their packets, their node updates. */
  nodes?: (number | string)[]
  /** Channel names (`LongFast`, …), exact and case-sensitive. */
  channels?: string[]
  /**
   * Gateway ids (`!xxxxxxxx`, case-insensitive): copies they published, packets whose first copy
   * they published, nodes they heard and the gateways themselves.
   */
  gateways?: string[]
  /** Events located in the box: a position's own coordinates, else the sender's last known position. */
  bbox?: WireBoundingBox
  /** MQTT topic roots (`msh/US`, `msh/EU_868/DE`): topics equal to one or under it. */
  roots?: string[]
}

// ---------------------------------------------------------------------------------------------
// Client → server

/**
 * Optional first message of a client: the protocol version it speaks. A server that does not speak
 * it answers with an `UNSUPPORTED_PROTOCOL` error and closes with 1002.
 *
 * @example
 * socket.send(JSON.stringify({ type: 'hello', protocol: 1, client: 'my-map/2.0' }))
 */
export interface ClientHelloMessage {
  type: 'hello'
  id?: WireRequestId
  protocol: number
  /** Free text naming the client, for the server's logs (≤ 128 characters). */
  client?: string
}

/**
 * Where to resume after a reconnect: the server's `epoch` (from its `hello`) and the first
 * sequence number not received (the last batch's `seq` + 1).
 *
 * @example
 * const resume: WireResume = { epoch: hello.epoch, fromSeq: lastSeq + 1 }
 */
export interface WireResume {
  epoch: string
  fromSeq: number
}

/**
 * Starts (or replaces) the connection's subscription. The answer is `subscribed`, then:
 * with `resume` that the server can honour, the batches from `fromSeq` on; otherwise (when
 * `resume` was given, after a `snapshotNeeded`) a snapshot unless `snapshot` is `false`, then the
 * batches after it.
 *
 * @example
 * socket.send(JSON.stringify({ type: 'subscribe', id: 1, filter: { kinds: ['node'] } }))
 */
export interface SubscribeMessage {
  type: 'subscribe'
  id?: WireRequestId
  filter?: WireFilter
  /**
   * Send the matching nodes' current state first (when not resuming).
   * @default true
   */
  snapshot?: boolean
  resume?: WireResume
}

/**
 * Ends the subscription: no more batches until the next `subscribe`. Answered with `unsubscribed`.
 *
 * @example
 * socket.send(JSON.stringify({ type: 'unsubscribe' }))
 */
export interface UnsubscribeMessage {
  type: 'unsubscribe'
  id?: WireRequestId
}

/**
 * An application-level ping (browsers cannot see WebSocket pings); answered with `pong`.
 *
 * @example
 * socket.send(JSON.stringify({ type: 'ping', id: Date.now() }))
 */
export interface PingMessage {
  type: 'ping'
  id?: WireRequestId
}

/**
 * Every message a client may send.
 *
 * @example
 * const message: ClientMessage = { type: 'subscribe', filter: { nodes: ['!fa75f7c0'] } }
 */
export type ClientMessage = ClientHelloMessage | SubscribeMessage | UnsubscribeMessage | PingMessage

// ---------------------------------------------------------------------------------------------
// Server → client

/**
 * The server's limits, as announced in its `hello`.
 *
 * @example
 * if (JSON.stringify(message).length > hello.limits.maxMessageBytes) throw new Error('too long')
 */
export interface WireLimits {
  /** Longest client message the server reads (bytes); longer ones get a `TOO_LARGE` error. */
  maxMessageBytes: number
  /** Longest client frame the server accepts at all (bytes); longer ones close with 1009. */
  maxFrameBytes: number
  /** Sustained client messages per second. */
  messagesPerSecond: number
  /** Client messages allowed in a burst above the rate. */
  messageBurst: number
  /** Most values in one filter list. */
  maxFilterValues: number
  /** Most nodes in a snapshot. */
  maxSnapshotNodes: number
  /** How many recent batches the server keeps for `resume` (also bounded by bytes). */
  resumeBatches: number
  /** Interval of the server's WebSocket pings, ms (a client that does not answer for twice that is closed). */
  heartbeatMs: number
}

/**
 * The server's first message on every connection.
 *
 * @example
 * socket.onmessage = (e) => { const m = JSON.parse(e.data); if (m.type === 'hello') epoch = m.epoch }
 */
export interface ServerHelloMessage {
  type: 'hello'
  protocol: typeof WIRE_PROTOCOL_VERSION
  /** Server software, e.g. `@meshtap/ws-server`. */
  server: string
  /** Identifies this server instance: it changes on restart, and `resume` needs the same one. */
  epoch: string
  /** The latest batch's sequence number (0 before the first). */
  seq: number
  /** The oldest sequence number `resume` can still start from. */
  oldestSeq: number
  /** Batch interval, ms. */
  flushMs: number
  /** The event kinds this server carries. */
  kinds: WireEventKind[]
  capabilities: WireCapability[]
  limits: WireLimits
}

/**
 * Answer to `subscribe`.
 *
 * @example
 * if (m.type === 'subscribed' && !m.resumed) nodes.clear()
 */
export interface SubscribedMessage {
  type: 'subscribed'
  id?: WireRequestId
  epoch: string
  /** The latest sequence number when the subscription started. */
  seq: number
  /** The filter as the server applies it (defaults filled in, node ids as numbers). */
  filter: WireFilter
  /** Whether `resume` was honoured: the batches from `fromSeq` on follow, nothing was lost. */
  resumed: boolean
  /** Whether a snapshot follows. */
  snapshot: boolean
}

/**
 * Answer to `unsubscribe`.
 *
 * @example
 * if (m.type === 'unsubscribed') console.log('stopped')
 */
export interface UnsubscribedMessage {
  type: 'unsubscribed'
  id?: WireRequestId
}

/**
 * One part of a snapshot: the full state of the nodes that match the filter, as of batch `seq`
 * (or newer: applying the following batches to it is safe). A snapshot is one or more parts with
 * the same `seq`; part 0 starts it (drop what you knew), `done` ends it. Batches with a higher
 * `seq` follow.
 *
 * @example
 * if (m.type === 'snapshot') { if (m.part === 0) nodes.clear(); for (const n of m.nodes) nodes.set(n.num, n) }
 */
export interface SnapshotMessage {
  type: 'snapshot'
  seq: number
  part: number
  nodes: NodeState[]
  done: boolean
}

/**
 * The events of one time slice (every `flushMs`) that match the subscription. `seq` increases
 * with every batch the server makes (by one); a connection sees the batches that had something
 * for it, so its `seq`s may skip, and an empty batch is a checkpoint (nothing matched up to `seq`).
 *
 * @example
 * if (m.type === 'batch') { lastSeq = m.seq; for (const e of m.events) handle(e) }
 */
export interface BatchMessage {
  type: 'batch'
  seq: number
  events: WireEvent[]
}

/**
 * `resume` could not be honoured; a snapshot follows unless the subscription asked for none.
 * - `too-old`: `fromSeq` is older than the server keeps (`oldestSeq`);
 * - `epoch`: the server restarted (another epoch);
 * - `ahead`: `fromSeq` is after the latest batch + 1 (a client bug).
 *
 * @example
 * if (m.type === 'snapshotNeeded') nodes.clear()
 */
export interface SnapshotNeededMessage {
  type: 'snapshotNeeded'
  fromSeq: number
  oldestSeq: number
  seq: number
  reason: 'too-old' | 'epoch' | 'ahead'
}

/**
 * The client read too slowly: the batches from `fromSeq` to `seq` were dropped for it. A fresh
 * snapshot as of `seq` follows, then the batches after it.
 *
 * @example
 * if (m.type === 'lagged') showBanner('connection too slow, reloading the map')
 */
export interface LaggedMessage {
  type: 'lagged'
  fromSeq: number
  seq: number
}

/**
 * Answer to `ping`.
 *
 * @example
 * if (m.type === 'pong') rttMs = Date.now() - Number(m.id)
 */
export interface PongMessage {
  type: 'pong'
  id?: WireRequestId
  /** The latest sequence number. */
  seq: number
  /** Server clock, Unix ms. */
  time: number
}

/**
 * A client message was refused. The connection stays open unless a close follows.
 *
 * @example
 * if (m.type === 'error') console.warn(`${m.code}: ${m.message}`, m.path ?? '')
 */
export interface WireErrorMessage {
  type: 'error'
  code: WireErrorCode
  message: string
  /** The `id` of the refused message, when it had a readable one. */
  id?: WireRequestId
  /** Where in the message the problem is, e.g. `filter.bbox.south`. */
  path?: string
}

/**
 * Every message a server may send.
 *
 * @example
 * function handle(m: ServerMessage) { switch (m.type) { case 'batch': break } }
 */
export type ServerMessage =
  | ServerHelloMessage
  | SubscribedMessage
  | UnsubscribedMessage
  | SnapshotMessage
  | BatchMessage
  | SnapshotNeededMessage
  | LaggedMessage
  | PongMessage
  | WireErrorMessage

// ---------------------------------------------------------------------------------------------
// Events

/**
 * A new logical packet (its first copy, fully decoded). The first copy's reception is the packet's
 * own envelope and header fields; {@link firstReception} rebuilds it.
 *
 * @example
 * if (e.kind === 'packet') console.log(e.packet.packet.fromId, e.packet.packet.portnumName)
 */
export interface WirePacketEvent {
  /** Event id: unique per server epoch, increasing in send order. */
  id: number
  kind: 'packet'
  packet: StoredPacket
  /** The source (broker) the first copy came from, when known. */
  source?: string
}

/**
 * Another gateway's copy of a known packet.
 *
 * @example
 * if (e.kind === 'reception') heardBy(e.reception.packetKey, e.reception.gatewayId)
 */
export interface WireReceptionEvent {
  id: number
  kind: 'reception'
  reception: Reception
}

/**
 * A packet kept without being decoded.
 *
 * @example
 * if (e.kind === 'undecoded') console.log(e.undecoded.failure.error.code)
 */
export interface WireUndecodedEvent {
  id: number
  kind: 'undecoded'
  undecoded: UndecodedPacket
}

/**
 * A JSON merge patch (RFC 7386) of `T`: the fields that changed, recursively for objects; `null`
 * removes a field; arrays are replaced whole.
 *
 * @example
 * const p: MergePatch<{ a: { b: number; c?: string } }> = { a: { c: null } }
 */
export type MergePatch<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: MergePatch<T[K]> | null }
    : T

/**
 * The changed fields of a node, as a merge patch of its {@link NodeState} (without `num`/`id`).
 *
 * @example
 * const patch: NodePatch = { lastHeard: 1767225600364, gateways: { '!a0c0ffee': { rxSnr: 6.5, count: 4 } } }
 */
export type NodePatch = MergePatch<Omit<NodeState, 'num' | 'id'>>

/**
 * A node event: `full` (the node entered the filter, or is new: here is all of it), `patch` (it
 * changed: apply the merge patch to what you have), or `leave` (it no longer matches the filter,
 * e.g. it moved out of the box: forget it). {@link applyNodeEvent} applies one.
 *
 * @example
 * if (e.kind === 'node') nodes.set(e.num, applyNodeEvent(nodes.get(e.num), e)!)
 */
export type WireNodeEvent =
  | { id: number; kind: 'node'; num: number; op: 'full'; node: NodeState }
  | { id: number; kind: 'node'; num: number; op: 'patch'; patch: NodePatch }
  | { id: number; kind: 'node'; num: number; op: 'leave' }

/**
 * Something was not kept.
 *
 * @example
 * if (e.kind === 'drop') dropped[e.drop.reason] += e.drop.count
 */
export interface WireDropEvent {
  id: number
  kind: 'drop'
  drop: DropEvent
}

/**
 * A batch was committed to the store.
 *
 * @example
 * if (e.kind === 'flush') written += e.flush.packets
 */
export interface WireFlushEvent {
  id: number
  kind: 'flush'
  flush: FlushEvent
}

/**
 * A source's connection state changed.
 *
 * @example
 * if (e.kind === 'status') brokerState.set(e.status.source, e.status.state)
 */
export interface WireStatusEvent {
  id: number
  kind: 'status'
  status: SourceStatus
}

/**
 * Every event a batch may carry, discriminated by `kind`.
 *
 * @example
 * for (const e of batch.events) if (e.kind === 'packet') show(e.packet)
 */
export type WireEvent =
  | WirePacketEvent
  | WireReceptionEvent
  | WireUndecodedEvent
  | WireNodeEvent
  | WireDropEvent
  | WireFlushEvent
  | WireStatusEvent

// ---------------------------------------------------------------------------------------------
// Validation

/**
 * Bounds the validator checks, besides the message shapes.
 *
 * @example
 * parseClientMessage(text, { maxFilterValues: 100, kinds: ['packet', 'node'] })
 */
export interface WireValidationOptions {
  /**
   * Most values in one filter list.
   * @default 1000
   */
  maxFilterValues?: number
  /**
   * Longest string value (channel, gateway, root, epoch), in characters.
   * @default 256
   */
  maxStringLength?: number
  /**
   * The event kinds the server carries; a filter naming another is a `BAD_FILTER`.
   * @default WIRE_EVENT_KINDS
   */
  kinds?: readonly WireEventKind[]
}

/**
 * Why a client message was refused: the code and text of the `error` to send back.
 *
 * @example
 * const r = parseClientMessage(text)
 * if (!r.ok) send({ type: 'error', ...r.error })
 */
export interface WireValidationError {
  code: 'BAD_JSON' | 'BAD_MESSAGE' | 'UNKNOWN_TYPE' | 'BAD_FILTER' | 'UNSUPPORTED_PROTOCOL'
  message: string
  /** The message's `id`, when it had a valid one. */
  id?: WireRequestId
  /** The offending field, e.g. `filter.nodes[3]`. */
  path?: string
}

const FILTER_KEYS = new Set(['kinds', 'nodes', 'channels', 'gateways', 'bbox', 'roots'])
const BBOX_KEYS = ['south', 'west', 'north', 'east'] as const

class Invalid {
  constructor(
    readonly code: WireValidationError['code'],
    readonly message: string,
    readonly path?: string,
  ) {}
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function readId(v: unknown): WireRequestId | undefined {
  if (typeof v === 'string' && v.length <= 64) return v
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v
  return undefined
}

function checkString(v: unknown, path: string, max: number, code: Invalid['code']): string {
  if (typeof v !== 'string' || v.length === 0)
    throw new Invalid(code, 'expected a non-empty string', path)
  if (v.length > max) throw new Invalid(code, `expected at most ${max} characters`, path)
  return v
}

function checkList<T>(
  v: unknown,
  path: string,
  max: number,
  item: (x: unknown, path: string) => T,
): T[] {
  if (!Array.isArray(v)) throw new Invalid('BAD_FILTER', 'expected an array', path)
  if (v.length === 0)
    throw new Invalid(
      'BAD_FILTER',
      'expected a non-empty array (leave the field out for all)',
      path,
    )
  if (v.length > max) throw new Invalid('BAD_FILTER', `expected at most ${max} values`, path)
  return v.map((x, i) => item(x, `${path}[${i}]`))
}

function checkFilter(v: unknown, o: Required<WireValidationOptions>): WireFilter {
  if (!isObject(v)) throw new Invalid('BAD_FILTER', 'expected an object', 'filter')
  for (const k of Object.keys(v)) {
    if (!FILTER_KEYS.has(k))
      throw new Invalid('BAD_FILTER', `unknown filter field "${k.slice(0, 64)}"`, 'filter')
  }
  const f: WireFilter = {}
  const max = o.maxFilterValues
  const str = (x: unknown, p: string) => checkString(x, p, o.maxStringLength, 'BAD_FILTER')
  if (v.kinds !== undefined) {
    f.kinds = checkList(v.kinds, 'filter.kinds', WIRE_EVENT_KINDS.length, (x, p) => {
      if (!(o.kinds as readonly unknown[]).includes(x)) {
        throw new Invalid('BAD_FILTER', `expected one of ${o.kinds.join(', ')}`, p)
      }
      return x as WireEventKind
    })
  }
  if (v.nodes !== undefined) {
    f.nodes = checkList(v.nodes, 'filter.nodes', max, (x, p) => {
      if (typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff) return x
      if (typeof x === 'string' && x.startsWith('!') && nodeNumFromId(x) !== undefined) return x
      throw new Invalid('BAD_FILTER', 'expected a node number (uint32) or a "!xxxxxxxx" node id', p)
    })
  }
  if (v.channels !== undefined) f.channels = checkList(v.channels, 'filter.channels', max, str)
  if (v.gateways !== undefined) f.gateways = checkList(v.gateways, 'filter.gateways', max, str)
  if (v.roots !== undefined) {
    f.roots = checkList(v.roots, 'filter.roots', max, (x, p) => {
      const s = str(x, p)
      if (s.includes('#') || s.includes('+')) {
        throw new Invalid('BAD_FILTER', 'expected a topic prefix without MQTT wildcards', p)
      }
      return s.endsWith('/') ? s.slice(0, -1) : s
    })
  }
  if (v.bbox !== undefined) {
    const b = v.bbox
    if (!isObject(b)) throw new Invalid('BAD_FILTER', 'expected an object', 'filter.bbox')
    const box = {} as WireBoundingBox
    for (const k of BBOX_KEYS) {
      const x = b[k]
      const limit = k === 'south' || k === 'north' ? 90 : 180
      if (typeof x !== 'number' || !Number.isFinite(x) || Math.abs(x) > limit) {
        throw new Invalid(
          'BAD_FILTER',
          `expected a number of degrees in [-${limit}, ${limit}]`,
          `filter.bbox.${k}`,
        )
      }
      box[k] = x
    }
    if (box.south > box.north) {
      throw new Invalid('BAD_FILTER', 'south must not be greater than north', 'filter.bbox')
    }
    f.bbox = box
  }
  return f
}

function checkMessage(v: unknown, o: Required<WireValidationOptions>): ClientMessage {
  if (!isObject(v)) throw new Invalid('BAD_MESSAGE', 'expected a JSON object')
  if (typeof v.type !== 'string') throw new Invalid('BAD_MESSAGE', 'expected a string', 'type')
  if (v.id !== undefined && readId(v.id) === undefined) {
    throw new Invalid(
      'BAD_MESSAGE',
      'expected a string of at most 64 characters or a safe integer',
      'id',
    )
  }
  const id = readId(v.id)
  const withId = <T extends object>(m: T): T => (id === undefined ? m : { ...m, id })
  switch (v.type) {
    case 'hello': {
      if (typeof v.protocol !== 'number' || !Number.isInteger(v.protocol)) {
        throw new Invalid('BAD_MESSAGE', 'expected an integer', 'protocol')
      }
      if (v.protocol !== WIRE_PROTOCOL_VERSION) {
        throw new Invalid(
          'UNSUPPORTED_PROTOCOL',
          `protocol ${v.protocol} is not supported; this server speaks ${WIRE_PROTOCOL_VERSION}`,
        )
      }
      const m: ClientHelloMessage = { type: 'hello', protocol: v.protocol }
      if (v.client !== undefined) m.client = checkString(v.client, 'client', 128, 'BAD_MESSAGE')
      return withId(m)
    }
    case 'subscribe': {
      const m: SubscribeMessage = { type: 'subscribe' }
      if (v.filter !== undefined) m.filter = checkFilter(v.filter, o)
      if (v.snapshot !== undefined) {
        if (typeof v.snapshot !== 'boolean')
          throw new Invalid('BAD_MESSAGE', 'expected a boolean', 'snapshot')
        m.snapshot = v.snapshot
      }
      if (v.resume !== undefined) {
        const r = v.resume
        if (!isObject(r)) throw new Invalid('BAD_MESSAGE', 'expected an object', 'resume')
        const epoch = checkString(r.epoch, 'resume.epoch', o.maxStringLength, 'BAD_MESSAGE')
        if (typeof r.fromSeq !== 'number' || !Number.isSafeInteger(r.fromSeq) || r.fromSeq < 1) {
          throw new Invalid('BAD_MESSAGE', 'expected a positive integer', 'resume.fromSeq')
        }
        m.resume = { epoch, fromSeq: r.fromSeq }
      }
      return withId(m)
    }
    case 'unsubscribe':
      return withId<UnsubscribeMessage>({ type: 'unsubscribe' })
    case 'ping':
      return withId<PingMessage>({ type: 'ping' })
    default:
      throw new Invalid('UNKNOWN_TYPE', `unknown message type "${v.type.slice(0, 64)}"`, 'type')
  }
}

function resolveOptions(
  options: WireValidationOptions | undefined,
): Required<WireValidationOptions> {
  return {
    maxFilterValues: options?.maxFilterValues ?? 1000,
    maxStringLength: options?.maxStringLength ?? 256,
    kinds: options?.kinds ?? WIRE_EVENT_KINDS,
  }
}

/**
 * Checks that a parsed JSON value is a valid client message, and returns a clean copy of it (only
 * the fields this protocol defines; unknown top-level fields are ignored for forward compatibility,
 * unknown filter fields are refused, because ignoring them would deliver more than was asked).
 *
 * @example
 * const r = validateClientMessage({ type: 'subscribe', filter: { kinds: ['node'] } })
 * if (r.ok && r.value.type === 'subscribe') subscribe(r.value.filter)
 */
export function validateClientMessage(
  value: unknown,
  options?: WireValidationOptions,
): Result<ClientMessage, WireValidationError> {
  try {
    return ok(checkMessage(value, resolveOptions(options)))
  } catch (e) {
    if (!(e instanceof Invalid)) throw e
    const error: WireValidationError = {
      code: e.code,
      message: e.path ? `${e.path}: ${e.message}` : e.message,
    }
    if (e.path !== undefined) error.path = e.path
    const id = isObject(value) ? readId(value.id) : undefined
    if (id !== undefined) error.id = id
    return err(error)
  }
}

/**
 * Parses and validates one client text frame.
 *
 * @example
 * const r = parseClientMessage('{"type":"ping","id":7}')
 * // r.ok === true, r.value = { type: 'ping', id: 7 }
 */
export function parseClientMessage(
  text: string,
  options?: WireValidationOptions,
): Result<ClientMessage, WireValidationError> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return err({ code: 'BAD_JSON', message: `not JSON: ${(e as Error).message}` })
  }
  return validateClientMessage(value, options)
}

// ---------------------------------------------------------------------------------------------
// Merge patches and helpers

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A deep copy of a JSON value (plain objects, arrays, primitives); `undefined` fields are left out. */
function cloneJson<T>(v: T): T {
  if (typeof v !== 'object' || v === null) return v
  if (Array.isArray(v)) return v.map(cloneJson) as T
  const out: Record<string, unknown> = {}
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k]
    if (x !== undefined) out[k] = cloneJson(x)
  }
  return out as T
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    return typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b)
  }
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const ra = a as Record<string, unknown>
  const rb = b as Record<string, unknown>
  let na = 0
  for (const k in ra) {
    if (ra[k] === undefined) continue
    na++
    if (!jsonEqual(ra[k], rb[k])) return false
  }
  let nb = 0
  for (const k in rb) if (rb[k] !== undefined) nb++
  return na === nb
}

const UNCHANGED = Symbol('unchanged')

function diff(a: unknown, b: unknown): unknown {
  if (isPlain(a) && isPlain(b)) {
    const patch: Record<string, unknown> = {}
    let changed = false
    for (const k in b) {
      const vb = b[k]
      if (vb === undefined) continue
      const d = diff(a[k], vb)
      if (d !== UNCHANGED) {
        patch[k] = d
        changed = true
      }
    }
    for (const k in a) {
      if (a[k] !== undefined && b[k] === undefined) {
        patch[k] = null
        changed = true
      }
    }
    return changed ? patch : UNCHANGED
  }
  if (b === undefined) return a === undefined ? UNCHANGED : null
  return jsonEqual(a, b) ? UNCHANGED : cloneJson(b)
}

/**
 * The JSON merge patch (RFC 7386) that turns `from` into `to`, or `undefined` when they are equal.
 * The patch shares nothing with `to` (it is a deep copy), so `to` may change afterwards.
 * `applyMergePatch(from, createMergePatch(from, to))` deep-equals `to` for JSON values without
 * `null` fields (merge patches cannot set a field to `null`).
 *
 * @example
 * createMergePatch({ a: 1, b: { c: 2, d: 3 } }, { a: 1, b: { c: 2 } }) // { b: { d: null } }
 */
export function createMergePatch<T>(from: T | undefined, to: T): MergePatch<T> | undefined {
  const d = diff(from, to)
  return d === UNCHANGED ? undefined : (d as MergePatch<T>)
}

/**
 * Applies a JSON merge patch (RFC 7386) and returns the result; the target is not modified (parts
 * the patch does not touch are shared with it, so React sees new objects only where something changed).
 *
 * @example
 * applyMergePatch({ a: 1, b: { c: 2, d: 3 } }, { b: { d: null } }) // { a: 1, b: { c: 2 } }
 */
export function applyMergePatch<T>(
  target: T | undefined,
  patch: MergePatch<T> | null | undefined,
): T {
  if (!isPlain(patch)) return patch as T
  const out: Record<string, unknown> = isPlain(target) ? { ...target } : {}
  for (const k in patch) {
    const v = patch[k]
    if (v === null) delete out[k]
    else if (v !== undefined) out[k] = applyMergePatch(out[k], v as MergePatch<unknown>)
  }
  return out as T
}

/**
 * Applies a node event to what a client knows of that node: the new state, or `undefined` when
 * the node left the filter. A patch for a node the client does not know builds a partial node.
 *
 * @example
 * const next = applyNodeEvent(nodes.get(e.num), e)
 * if (next) nodes.set(e.num, next)
 * else nodes.delete(e.num)
 */
export function applyNodeEvent(
  node: NodeState | undefined,
  event: WireNodeEvent,
): NodeState | undefined {
  switch (event.op) {
    case 'full':
      return event.node
    case 'leave':
      return undefined
    case 'patch': {
      const base: NodeState = node ?? {
        num: event.num,
        id: nodeIdFromNum(event.num),
        telemetry: {},
        lastHeard: 0,
        packets: 0,
        gateways: {},
        isGateway: false,
      }
      return applyMergePatch<NodeState>(base, event.patch as MergePatch<NodeState>)
    }
  }
}

/**
 * The first copy's reception of a `packet` event (what `LiveEvents['packet'].reception` holds on
 * the server): the packet's own envelope and header fields.
 *
 * @example
 * const r = firstReception(e) // { packetKey, gatewayId, rxSnr, rxRssi, hopsAway, … }
 */
export function firstReception(event: Pick<WirePacketEvent, 'packet' | 'source'>): Reception {
  const { key, packet: p, receivedAt } = event.packet
  const r: Reception = {
    packetKey: key,
    rxTime: p.rxTime,
    receivedAt,
    rxSnr: p.rxSnr,
    rxRssi: p.rxRssi,
    hopLimit: p.hopLimit,
    hopStart: p.hopStart,
    receptionClass: p.receptionClass,
  }
  if (p.gatewayId !== undefined) r.gatewayId = p.gatewayId
  if (p.topic !== undefined) r.topic = p.topic
  if (event.source !== undefined) r.source = event.source
  if (p.channelId !== undefined) r.channelId = p.channelId
  if (p.relayNode !== undefined) r.relayNode = p.relayNode
  if (p.hopsAway !== undefined) r.hopsAway = p.hopsAway
  return r
}
