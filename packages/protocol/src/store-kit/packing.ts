import {
  type AppPayload,
  type DecodedPacket,
  isPlausibleFix,
  nodeIdFromNum,
  portnumName,
  precisionRadiusM,
} from '../index.js'
import { VARIANT_GROUP } from './extract.js'

/**
 * The fields of a {@link DecodedPacket} stored by position (no key names). Order is part of the
 * stored format: append only.
 */
const FIELDS = [
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

/** Whether a key is one of {@link FIELDS} (a prototype-less object: faster to ask than a Map). */
const IS_FIELD: Readonly<Record<string, true | undefined>> = Object.assign(
  Object.create(null) as Record<string, true>,
  Object.fromEntries(FIELDS.map((f) => [f, true])),
)
const TOPIC_AT = FIELDS.indexOf('topic') + 2
const KEY_NAME_AT = FIELDS.indexOf('keyName') + 2
const APP_AT = FIELDS.indexOf('app') + 2

const FROM_ID = 1
const TO_ID = 2
const PORT_NAME = 4
const TOPIC = 8
const KEY_NAME = 16
const POSITION_DEGREES = 32
const TELEMETRY_METRICS = 64

/** What the codec derives from a `Position` message (`latitude`, `longitude`, … in degrees). */
function positionDegrees(position: Record<string, unknown>): Record<string, number> {
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

/**
 * Whether the degrees of a position payload are exactly what {@link positionDegrees} derives from
 * its `position` (the same test as comparing with a derived object, without building one).
 */
function positionIsDerived(a: Record<string, unknown>, position: Record<string, unknown>): boolean {
  const lat = typeof position.latitudeI === 'number' ? position.latitudeI / 1e7 : 0
  const lon = typeof position.longitudeI === 'number' ? position.longitudeI / 1e7 : 0
  const fix = isPlausibleFix(lat, lon)
  const bits = position.precisionBits as number | undefined
  const alt = position.altitude
  const radius = precisionRadiusM(bits)
  return (
    a.latitude === (fix ? lat : undefined) &&
    a.longitude === (fix ? lon : undefined) &&
    a.altitude === (typeof alt === 'number' ? alt : undefined) &&
    a.precisionBits === (typeof bits === 'number' ? bits : undefined) &&
    a.radiusM === (fix ? radius : undefined)
  )
}

/**
 * True when `a` and `b` certainly serialise to the same JSON: the same value, or plain objects and
 * arrays with the same keys in the same order and such values. False means "not certain" (the
 * caller compares the JSON then): other numbers (`NaN` and `null` both write `null`), class
 * instances, `toJSON`, keys with `undefined` values on one side only, more than `depth` levels.
 */
function surelySameJson(a: unknown, b: unknown, depth: number): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || depth === 0) {
    return false
  }
  const proto = Object.getPrototypeOf(a)
  if (proto !== Object.getPrototypeOf(b)) return false
  const x = a as Record<string, unknown>
  const y = b as Record<string, unknown>
  if (x.toJSON !== undefined || y.toJSON !== undefined) return false
  if (proto === Array.prototype) {
    const xs = a as unknown[]
    const ys = b as unknown[]
    if (xs.length !== ys.length) return false
    for (let i = 0; i < xs.length; i++) {
      if (!surelySameJson(xs[i], ys[i], depth - 1)) return false
    }
    return true
  }
  if (proto !== Object.prototype && proto !== null) return false
  const keys = Object.keys(x)
  const other = Object.keys(y)
  if (keys.length !== other.length) return false
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string
    if (k !== other[i] || !surelySameJson(x[k], y[k], depth - 1)) return false
  }
  return true
}

/** The app payload without what can be derived again, and the flag that says so. */
function packApp(app: AppPayload): [unknown, number] {
  const a = app as unknown as Record<string, unknown>
  if (app.type === 'position' && app.position && typeof app.position === 'object') {
    if (positionIsDerived(a, app.position as unknown as Record<string, unknown>)) {
      const { latitude, longitude, altitude, precisionBits, radiusM, ...rest } = app
      return [rest, POSITION_DEGREES]
    }
  }
  if (app.type === 'telemetry' && app.telemetry && typeof app.telemetry === 'object') {
    const group =
      app.telemetry[VARIANT_GROUP[app.variant]] ?? (app.variant === 'unknown' ? {} : undefined)
    if (
      group !== undefined &&
      (surelySameJson(group, app.metrics, 16) ||
        JSON.stringify(group) === JSON.stringify(app.metrics))
    ) {
      const { metrics, ...rest } = app
      return [rest, TELEMETRY_METRICS]
    }
  }
  return [app, 0]
}

function unpackApp(app: Record<string, unknown>, flags: number): AppPayload {
  if (flags & POSITION_DEGREES) {
    Object.assign(app, positionDegrees(app.position as Record<string, unknown>))
  }
  if (flags & TELEMETRY_METRICS) {
    const telemetry = app.telemetry as Record<string, unknown>
    const group = VARIANT_GROUP[app.variant as keyof typeof VARIANT_GROUP]
    app.metrics = group ? structuredClone(telemetry[group]) : {}
  }
  return app as unknown as AppPayload
}

function envelopeTopic(p: Record<string, unknown>): string | undefined {
  const { root, channelId, gatewayId } = p
  return typeof root === 'string' && typeof channelId === 'string' && typeof gatewayId === 'string'
    ? `${root}/2/e/${channelId}/${gatewayId}`
    : undefined
}

/** Character code → hex digit value for `0`–`9` and `a`–`f` (what {@link nodeIdFromNum} writes), else -1. */
const LOWER_HEX = (() => {
  const t = new Int8Array(128).fill(-1)
  for (let i = 0; i < 10; i++) t[48 + i] = i
  for (let i = 0; i < 6; i++) t[97 + i] = 10 + i
  return t
})()

/** Whether `id === nodeIdFromNum(num)`, read from `id` instead of formatting `num`. */
function isNodeIdOf(id: unknown, num: number): boolean {
  if (typeof id !== 'string' || id.length !== 9 || id.charCodeAt(0) !== 33) return false
  let n = 0
  for (let i = 1; i < 9; i++) {
    const c = id.charCodeAt(i)
    const d = c < 128 ? (LOWER_HEX[c] as number) : -1
    if (d < 0) return false
    n = n * 16 + d
  }
  return n === num >>> 0
}

/** Whether `topic === envelopeTopic(p)`, compared piece by piece instead of building the topic. */
function isEnvelopeTopic(topic: unknown, root: unknown, channelId: unknown, gatewayId: unknown) {
  if (
    typeof topic !== 'string' ||
    typeof root !== 'string' ||
    typeof channelId !== 'string' ||
    typeof gatewayId !== 'string'
  ) {
    return false
  }
  const channelAt = root.length + 5
  const gatewayAt = channelAt + channelId.length + 1
  return (
    topic.length === gatewayAt + gatewayId.length &&
    topic.startsWith(root) &&
    topic.startsWith('/2/e/', root.length) &&
    topic.startsWith(channelId, channelAt) &&
    topic.charCodeAt(gatewayAt - 1) === 47 &&
    topic.endsWith(gatewayId)
  )
}

/** Set by {@link slot} when a field was `null` (kept in the trailing object to tell it apart). */
let sawNull = false

/** A field's value in the positional array: `null` for undefined; notes a real `null`. */
function slot(v: unknown): unknown {
  if (v === undefined) return null
  if (v === null) sawNull = true
  return v
}

/**
 * Serialises a decoded packet losslessly but compactly: known fields by position, the fields
 * derivable from others (`fromId`, `toId`, `portnumName`, an envelope topic) left out when they
 * equal their derivation, anything else in a trailing object. About half the size of plain JSON.
 * @internal
 */
export function packPacket(packet: DecodedPacket): string {
  const p = packet as unknown as Record<string, unknown>
  let flags = 0
  let rest: Record<string, unknown> | undefined
  sawNull = false
  // Named reads in FIELDS order (a loop over FIELDS reads each key through a megamorphic lookup).
  const values: unknown[] = [
    1,
    0,
    slot(p.kind),
    slot(p.from),
    slot(p.to),
    slot(p.id),
    slot(p.channel),
    slot(p.hopLimit),
    slot(p.hopStart),
    slot(p.wantAck),
    slot(p.viaMqtt),
    slot(p.rxTime),
    slot(p.rxSnr),
    slot(p.rxRssi),
    slot(p.encrypted),
    slot(p.topic),
    slot(p.root),
    slot(p.channelId),
    slot(p.gatewayId),
    slot(p.portnum),
    slot(p.bitfield),
    slot(p.okToMqtt),
    slot(p.payload),
    slot(p.keyName),
    slot(p.hopsAway),
    slot(p.receptionClass),
    slot(p.app),
    slot(p.priority),
    slot(p.nextHop),
    slot(p.relayNode),
    slot(p.pkiEncrypted),
    slot(p.publicKey),
    slot(p.transportMechanism),
    slot(p.wantResponse),
    slot(p.dest),
    slot(p.source),
    slot(p.requestId),
    slot(p.replyId),
    slot(p.emoji),
  ]
  if (sawNull) {
    for (const k of FIELDS) {
      if (p[k] === null) {
        rest ??= {}
        rest[k] = null
      }
    }
  }
  if (typeof p.from === 'number' && isNodeIdOf(p.fromId, p.from)) flags |= FROM_ID
  if (typeof p.to === 'number' && isNodeIdOf(p.toId, p.to)) flags |= TO_ID
  if (
    p.portnumName !== undefined &&
    typeof p.portnum === 'number' &&
    p.portnumName === portnumName(p.portnum)
  ) {
    flags |= PORT_NAME
  }
  if (isEnvelopeTopic(p.topic, p.root, p.channelId, p.gatewayId)) {
    flags |= TOPIC
    values[TOPIC_AT] = null
  }
  if (p.keyName !== undefined && p.keyName === p.channelId) {
    flags |= KEY_NAME
    values[KEY_NAME_AT] = null
  }
  if (p.app !== null && typeof p.app === 'object') {
    const [app, appFlags] = packApp(p.app as AppPayload)
    flags |= appFlags
    values[APP_AT] = app
  }
  for (const k in p) {
    if (IS_FIELD[k] === true) continue
    const v = p[k]
    if (v === undefined) continue
    if (k === 'fromId' && flags & FROM_ID) continue
    if (k === 'toId' && flags & TO_ID) continue
    if (k === 'portnumName' && flags & PORT_NAME) continue
    rest ??= {}
    rest[k] = v
  }
  values[1] = flags
  while (values.length > 2 && values[values.length - 1] === null) values.pop()
  if (rest) {
    while (values.length < FIELDS.length + 2) values.push(null)
    values.push(rest)
  }
  return JSON.stringify(values)
}

/** Reads what {@link packPacket} wrote (or plain JSON). @internal */
export function unpackPacket(text: string): DecodedPacket {
  const parsed = JSON.parse(text) as unknown
  if (!Array.isArray(parsed)) return parsed as DecodedPacket
  const flags = parsed[1] as number
  const out: Record<string, unknown> = {}
  for (let i = 0; i < FIELDS.length; i++) {
    const v = parsed[i + 2]
    if (v !== null && v !== undefined) out[FIELDS[i] as string] = v
  }
  if (flags & FROM_ID) out.fromId = nodeIdFromNum(out.from as number)
  if (flags & TO_ID) out.toId = nodeIdFromNum(out.to as number)
  if (flags & PORT_NAME) out.portnumName = portnumName(out.portnum as number)
  if (flags & TOPIC) out.topic = envelopeTopic(out)
  if (flags & KEY_NAME) out.keyName = out.channelId
  if (flags & (POSITION_DEGREES | TELEMETRY_METRICS)) {
    out.app = unpackApp(out.app as Record<string, unknown>, flags)
  }
  const rest = parsed[FIELDS.length + 2] as Record<string, unknown> | undefined
  if (rest) Object.assign(out, rest)
  return out as unknown as DecodedPacket
}
