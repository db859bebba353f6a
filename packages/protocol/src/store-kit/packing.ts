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

const INDEX = new Map<string, number>(FIELDS.map((f, i) => [f, i + 2]))
const TOPIC_AT = INDEX.get('topic') as number
const KEY_NAME_AT = INDEX.get('keyName') as number
const APP_AT = INDEX.get('app') as number

const FROM_ID = 1
const TO_ID = 2
const PORT_NAME = 4
const TOPIC = 8
const KEY_NAME = 16
const POSITION_DEGREES = 32
const TELEMETRY_METRICS = 64

const POSITION_DERIVED = ['latitude', 'longitude', 'altitude', 'precisionBits', 'radiusM'] as const

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

/** The app payload without what can be derived again, and the flag that says so. */
function packApp(app: AppPayload): [unknown, number] {
  const a = app as unknown as Record<string, unknown>
  if (app.type === 'position' && app.position && typeof app.position === 'object') {
    const derived = positionDegrees(app.position)
    if (POSITION_DERIVED.every((k) => a[k] === derived[k])) {
      const { latitude, longitude, altitude, precisionBits, radiusM, ...rest } = app
      return [rest, POSITION_DEGREES]
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
  const values: unknown[] = [1, 0]
  for (const k of FIELDS) {
    const v = p[k]
    if (v === undefined) values.push(null)
    else if (v === null) {
      values.push(null)
      rest ??= {}
      rest[k] = null
    } else values.push(v)
  }
  if (typeof p.from === 'number' && p.fromId === nodeIdFromNum(p.from)) flags |= FROM_ID
  if (typeof p.to === 'number' && p.toId === nodeIdFromNum(p.to)) flags |= TO_ID
  if (
    typeof p.portnum === 'number' &&
    p.portnumName !== undefined &&
    p.portnumName === portnumName(p.portnum)
  ) {
    flags |= PORT_NAME
  }
  if (p.topic !== undefined && p.topic === envelopeTopic(p)) {
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
    if (INDEX.has(k) || p[k] === undefined) continue
    if (k === 'fromId' && flags & FROM_ID) continue
    if (k === 'toId' && flags & TO_ID) continue
    if (k === 'portnumName' && flags & PORT_NAME) continue
    rest ??= {}
    rest[k] = p[k]
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
