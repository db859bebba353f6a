import {
  type AppPayload,
  type DecodedPacket,
  err,
  isPlausibleFix,
  type MetricsMessage,
  nodeIdFromNum,
  nodeNumFromId,
  type OpenMessage,
  ok,
  type PartialPacket,
  PortNum,
  portnumName,
  precisionRadiusM,
  type TelemetryVariant,
} from '@meshtap/protocol'
import { Config, Mesh } from '@meshtastic/protobufs'
import type { DecodeResult } from './decode.js'
import { derive } from './decode.js'
import type { ParsedTopic } from './topic.js'

const HW = Mesh.HardwareModel as unknown as Record<number, string>
const ROLE = Config.Config_DeviceConfig_Role as unknown as Record<number, string>

/** Firmware JSON `type` → port number. */
const TYPE_PORT: Record<string, number> = {
  text: PortNum.TEXT_MESSAGE_APP,
  position: PortNum.POSITION_APP,
  nodeinfo: PortNum.NODEINFO_APP,
  telemetry: PortNum.TELEMETRY_APP,
  neighborinfo: PortNum.NEIGHBORINFO_APP,
  traceroute: PortNum.TRACEROUTE_APP,
  waypoint: PortNum.WAYPOINT_APP,
  detection: PortNum.DETECTION_SENSOR_APP,
  paxcounter: PortNum.PAXCOUNTER_APP,
  gpios_changed: PortNum.REMOTE_HARDWARE_APP,
  gpios_read_reply: PortNum.REMOTE_HARDWARE_APP,
  mapreport: PortNum.MAP_REPORT_APP,
}

const DEVICE_KEYS = new Set([
  'battery_level',
  'channel_utilization',
  'air_util_tx',
  'uptime_seconds',
])
const AIR_KEYS = new Set(['pm10', 'pm25', 'pm100', 'co2', 'pm10_standard', 'pm25_standard'])
const POWER_KEYS = /^(voltage|current)_ch\d$/

function camel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())
}

function camelObject(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelObject)
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[camel(k)] = camelObject(v)
  return out
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}

function telemetryVariant(payload: Record<string, unknown>): TelemetryVariant {
  const keys = Object.keys(payload)
  if (keys.some((k) => DEVICE_KEYS.has(k))) return 'device'
  if (keys.some((k) => AIR_KEYS.has(k))) return 'airQuality'
  if (keys.some((k) => POWER_KEYS.test(k))) return 'power'
  return keys.length > 0 ? 'environment' : 'unknown'
}

const GROUP_KEY: Record<TelemetryVariant, string> = {
  device: 'deviceMetrics',
  environment: 'environmentMetrics',
  airQuality: 'airQualityMetrics',
  power: 'powerMetrics',
  localStats: 'localStats',
  health: 'healthMetrics',
  host: 'hostMetrics',
  unknown: 'metrics',
}

function appFromJson(type: string, payload: unknown): AppPayload {
  const obj =
    payload !== null && typeof payload === 'object' && !Array.isArray(payload)
      ? (payload as Record<string, unknown>)
      : {}
  switch (type) {
    case 'text':
    case 'detection': {
      const text =
        typeof payload === 'string'
          ? payload
          : typeof obj.text === 'string'
            ? obj.text
            : JSON.stringify(payload ?? '')
      return { type: type === 'text' ? 'text' : 'detection', text, isReaction: false }
    }
    case 'position': {
      const position = camelObject(obj) as Record<string, unknown>
      const lat = (num(obj.latitude_i) ?? 0) / 1e7
      const lon = (num(obj.longitude_i) ?? 0) / 1e7
      const precisionBits = num(obj.precision_bits)
      const fix = isPlausibleFix(lat, lon)
      const radiusM = precisionRadiusM(precisionBits)
      return {
        type: 'position',
        position,
        ...(fix ? { latitude: lat, longitude: lon } : {}),
        ...(num(obj.altitude) !== undefined ? { altitude: num(obj.altitude) as number } : {}),
        ...(precisionBits !== undefined ? { precisionBits } : {}),
        ...(fix && radiusM !== undefined ? { radiusM } : {}),
      }
    }
    case 'nodeinfo': {
      const user: Record<string, unknown> = {}
      if (typeof obj.id === 'string') user.id = obj.id
      if (typeof obj.longname === 'string') user.longName = obj.longname.replace(/[\0\s]+$/, '')
      if (typeof obj.shortname === 'string') user.shortName = obj.shortname.replace(/[\0\s]+$/, '')
      const hw = num(obj.hardware)
      if (hw !== undefined) user.hwModel = HW[hw] ?? hw
      const role = num(obj.role)
      if (role !== undefined) user.role = ROLE[role] ?? role
      return { type: 'nodeinfo', user }
    }
    case 'telemetry': {
      const variant = telemetryVariant(obj)
      const metrics = camelObject(obj) as MetricsMessage
      return {
        type: 'telemetry',
        telemetry: { [GROUP_KEY[variant]]: metrics },
        variant,
        metrics,
      }
    }
    case 'neighborinfo':
      return { type: 'neighborinfo', neighborInfo: camelObject(obj) as OpenMessage }
    case 'waypoint': {
      const waypoint = camelObject(obj) as Record<string, unknown>
      const lat = (num(obj.latitude_i) ?? 0) / 1e7
      const lon = (num(obj.longitude_i) ?? 0) / 1e7
      return {
        type: 'waypoint',
        waypoint,
        ...(isPlausibleFix(lat, lon) ? { latitude: lat, longitude: lon } : {}),
      }
    }
    case 'traceroute':
      // Firmware JSON names hops by long name (looked up in the gateway's NodeDB): no node numbers.
      return {
        type: 'traceroute',
        routeDiscovery: camelObject(obj) as OpenMessage,
        route: [],
        snrTowardsDb: [],
        routeBack: [],
        snrBackDb: [],
      }
    case 'paxcounter':
      return { type: 'paxcounter', paxcount: camelObject(obj) as OpenMessage }
    default:
      return { type: 'opaque', bytes: '', message: camelObject(obj) as OpenMessage }
  }
}

const utf8 = new TextDecoder('utf-8')

/**
 * Decodes a legacy firmware JSON uplink (`<root>/2/json/<channel>/<gateway>`, firmware ≤ 2.7) into
 * the same model as protobuf packets. `from`/`to`/`id` may be signed (firmware < 2.2 wrote `-1`) and
 * are normalised to uint32; `channel` is the gateway's local channel index; `sender` is the gateway.
 * @internal
 */
export function decodeJsonUplink(
  bytes: Uint8Array,
  topic: string | undefined,
  parsed: ParsedTopic | undefined,
  includeRaw: boolean,
): DecodeResult {
  const base: PartialPacket = {
    kind: 'json-uplink',
    ...(topic !== undefined ? { topic } : {}),
    ...(parsed ? { root: parsed.root } : {}),
    ...(parsed?.channelId ? { channelId: parsed.channelId } : {}),
    ...(parsed?.gatewayId ? { gatewayId: parsed.gatewayId } : {}),
  }
  let msg: unknown
  try {
    msg = JSON.parse(utf8.decode(bytes))
  } catch {
    return err({
      error: { code: 'MALFORMED_JSON', message: 'the JSON uplink is not valid JSON' },
      packet: base,
    })
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
    return err({
      error: { code: 'MALFORMED_JSON', message: 'the JSON uplink is not a JSON object' },
      packet: base,
    })
  }
  const m = msg as Record<string, unknown>
  const from = num(m.from)
  const id = num(m.id)
  if (from === undefined || id === undefined) {
    return err({
      error: {
        code: 'MALFORMED_JSON',
        message: 'the JSON uplink lacks a numeric "from" or "id"',
      },
      packet: base,
    })
  }
  const to = num(m.to) ?? 0xffffffff
  const type = typeof m.type === 'string' ? m.type : ''
  const portnum = TYPE_PORT[type] ?? 0
  const pkt = {
    ...base,
    from: from >>> 0,
    to: to >>> 0,
    id: id >>> 0,
    fromId: nodeIdFromNum(from),
    toId: nodeIdFromNum(to),
    channel: num(m.channel) ?? 0,
    hopLimit: 0,
    hopStart: num(m.hop_start) ?? 0,
    wantAck: false,
    viaMqtt: false,
    rxTime: num(m.timestamp) ?? 0,
    rxSnr: num(m.snr) ?? 0,
    rxRssi: num(m.rssi) ?? 0,
    encrypted: false,
    portnum,
    payload: '',
    app: appFromJson(type, m.payload),
  } as DecodedPacket
  if (typeof m.sender === 'string' && nodeNumFromId(m.sender) !== undefined) {
    pkt.gatewayId = m.sender
  }
  const name = portnumName(portnum)
  if (name !== undefined) pkt.portnumName = name
  derive(pkt, false)
  const hopsAway = num(m.hops_away)
  if (hopsAway !== undefined) {
    pkt.hopsAway = hopsAway
    if (pkt.receptionClass === 'unknown') pkt.receptionClass = hopsAway === 0 ? 'direct' : 'relayed'
  } else if (pkt.hopStart > 0 && pkt.receptionClass === 'unknown') {
    // Firmware 2.3.6 omitted hops_away when it was 0.
    pkt.hopsAway = 0
    pkt.receptionClass = 'direct'
  }
  if (includeRaw) pkt.raw = { uplink: m }
  return ok(pkt)
}
