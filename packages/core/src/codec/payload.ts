import type { DescMessage } from '@bufbuild/protobuf'
import {
  type AppPayload,
  bytesToBase64,
  isPlausibleFix,
  type MetricsMessage,
  nodeIdFromNum,
  type OpenMessage,
  PortNum,
  precisionRadiusM,
  type TelemetryVariant,
  type TracerouteHop,
} from '@meshtap/protocol'
import {
  Admin,
  Mesh,
  Mqtt,
  PaxCount,
  RemoteHardware,
  StoreForward,
  Telemetry,
} from '@meshtastic/protobufs'
import { compileJsonDecoder, type JsonDecoder } from './proto-json.js'
import { decodeUtf8, decodeUtf8Strict } from './wire.js'

type Builder = (json: Record<string, unknown>, bytes: Uint8Array) => AppPayload

interface PortHandler {
  decoder: JsonDecoder
  build: Builder
}

const TEXT_TYPES = new Map<number, 'text' | 'alert' | 'detection' | 'rangetest' | 'reply'>([
  [PortNum.TEXT_MESSAGE_APP, 'text'],
  [PortNum.ALERT_APP, 'alert'],
  [PortNum.DETECTION_SENSOR_APP, 'detection'],
  [PortNum.RANGE_TEST_APP, 'rangetest'],
  [PortNum.REPLY_APP, 'reply'],
])

function degrees(v: unknown): number {
  return typeof v === 'number' ? v / 1e7 : 0
}

function hop(num: number): TracerouteHop {
  return { num, id: nodeIdFromNum(num), unknown: num >>> 0 === 0xffffffff }
}

function snrDb(values: unknown): (number | null)[] {
  return Array.isArray(values) ? values.map((v: number) => (v === -128 ? null : v / 4)) : []
}

const TELEMETRY_VARIANTS: [keyof typeof VARIANT_KEYS, TelemetryVariant][] = [
  ['deviceMetrics', 'device'],
  ['environmentMetrics', 'environment'],
  ['airQualityMetrics', 'airQuality'],
  ['powerMetrics', 'power'],
  ['localStats', 'localStats'],
  ['healthMetrics', 'health'],
  ['hostMetrics', 'host'],
]
const VARIANT_KEYS = {
  deviceMetrics: 1,
  environmentMetrics: 1,
  airQualityMetrics: 1,
  powerMetrics: 1,
  localStats: 1,
  healthMetrics: 1,
  hostMetrics: 1,
}

// Invalid UTF-8 in a name is decoded as U+FFFD rather than losing the packet: firmware truncates
// names at a byte limit (map reports: 24 bytes), which can cut a multi-byte character.
function handler(desc: DescMessage, build: Builder): PortHandler {
  return { decoder: compileJsonDecoder(desc, { invalidUtf8: 'replace' }), build }
}

const opaque: Builder = (json, bytes) => ({
  type: 'opaque',
  bytes: bytesToBase64(bytes),
  message: json as OpenMessage,
})

const HANDLERS = new Map<number, PortHandler>([
  [
    PortNum.POSITION_APP,
    handler(Mesh.PositionSchema, (json) => {
      const lat = degrees(json.latitudeI)
      const lon = degrees(json.longitudeI)
      const precisionBits = json.precisionBits as number | undefined
      const fix = isPlausibleFix(lat, lon)
      return {
        type: 'position',
        position: json,
        ...(fix ? { latitude: lat, longitude: lon } : {}),
        ...(json.altitude !== undefined ? { altitude: json.altitude as number } : {}),
        ...(precisionBits !== undefined ? { precisionBits } : {}),
        ...(fix && precisionRadiusM(precisionBits) !== undefined
          ? { radiusM: precisionRadiusM(precisionBits) as number }
          : {}),
      }
    }),
  ],
  [PortNum.NODEINFO_APP, handler(Mesh.UserSchema, (json) => ({ type: 'nodeinfo', user: json }))],
  [
    PortNum.ROUTING_APP,
    handler(Mesh.RoutingSchema, (json) => ({
      type: 'routing',
      routing: json,
      // An ACK is a Routing message with error_reason NONE, which canonical JSON omits.
      ...(json.routeRequest === undefined && json.routeReply === undefined
        ? { errorReason: (json.errorReason as string | undefined) ?? 'NONE' }
        : {}),
    })),
  ],
  [
    PortNum.TELEMETRY_APP,
    handler(Telemetry.TelemetrySchema, (json) => {
      for (const [key, variant] of TELEMETRY_VARIANTS) {
        const metrics = json[key]
        if (metrics !== undefined) {
          return { type: 'telemetry', telemetry: json, variant, metrics: metrics as MetricsMessage }
        }
      }
      return { type: 'telemetry', telemetry: json, variant: 'unknown', metrics: {} }
    }),
  ],
  [
    PortNum.TRACEROUTE_APP,
    handler(Mesh.RouteDiscoverySchema, (json) => ({
      type: 'traceroute',
      routeDiscovery: json,
      route: ((json.route as number[] | undefined) ?? []).map(hop),
      snrTowardsDb: snrDb(json.snrTowards),
      routeBack: ((json.routeBack as number[] | undefined) ?? []).map(hop),
      snrBackDb: snrDb(json.snrBack),
    })),
  ],
  [
    PortNum.NEIGHBORINFO_APP,
    handler(Mesh.NeighborInfoSchema, (json) => ({ type: 'neighborinfo', neighborInfo: json })),
  ],
  [
    PortNum.MAP_REPORT_APP,
    handler(Mqtt.MapReportSchema, (json) => {
      const lat = degrees(json.latitudeI)
      const lon = degrees(json.longitudeI)
      const fix = isPlausibleFix(lat, lon)
      const radiusM = precisionRadiusM(json.positionPrecision as number | undefined)
      return {
        type: 'mapreport',
        mapReport: json,
        ...(fix ? { latitude: lat, longitude: lon } : {}),
        ...(fix && radiusM !== undefined ? { radiusM } : {}),
      }
    }),
  ],
  [
    PortNum.WAYPOINT_APP,
    handler(Mesh.WaypointSchema, (json) => {
      const lat = degrees(json.latitudeI)
      const lon = degrees(json.longitudeI)
      return {
        type: 'waypoint',
        waypoint: json,
        ...(isPlausibleFix(lat, lon) ? { latitude: lat, longitude: lon } : {}),
      }
    }),
  ],
  [
    PortNum.STORE_FORWARD_APP,
    handler(StoreForward.StoreAndForwardSchema, (json) => ({
      type: 'storeforward',
      storeForward: json,
    })),
  ],
  [
    PortNum.PAXCOUNTER_APP,
    handler(PaxCount.PaxcountSchema, (json) => ({ type: 'paxcounter', paxcount: json })),
  ],
  [PortNum.ADMIN_APP, handler(Admin.AdminMessageSchema, opaque)],
  [PortNum.REMOTE_HARDWARE_APP, handler(RemoteHardware.HardwareMessageSchema, opaque)],
  [PortNum.KEY_VERIFICATION_APP, handler(Mesh.KeyVerificationSchema, opaque)],
  [PortNum.NODE_STATUS_APP, handler(Mesh.StatusMessageSchema, opaque)],
  [PortNum.STORE_FORWARD_PLUSPLUS_APP, handler(Mesh.StoreForwardPlusPlusSchema, opaque)],
])

/** The outcome of decoding an app payload: the typed payload, or `undefined` when malformed. @internal */
export type AppDecodeResult = AppPayload | undefined

/**
 * Decodes `Data.payload` for a port into its typed {@link AppPayload}. With `strict`, text must be
 * valid UTF-8 (used to reject wrong keys). Returns `undefined` when the bytes do not parse as the
 * port's message. @internal
 */
export function buildAppPayload(
  portnum: number,
  buf: Uint8Array,
  start: number,
  end: number,
  strict: boolean,
): AppDecodeResult {
  const textType = TEXT_TYPES.get(portnum)
  if (textType !== undefined) {
    const text = strict ? decodeUtf8Strict(buf.subarray(start, end)) : decodeUtf8(buf, start, end)
    if (text === undefined) return undefined
    const payload: AppPayload = { type: textType, text, isReaction: false }
    if (textType === 'rangetest') {
      const m = /^seq (\d+)/.exec(text)
      if (m) payload.seq = Number(m[1])
    }
    return payload
  }
  const h = HANDLERS.get(portnum)
  if (h === undefined) {
    return { type: 'opaque', bytes: bytesToBase64(buf.subarray(start, end)) }
  }
  const json = h.decoder(buf, start, end)
  if (json === undefined) return undefined
  return h.build(json, buf.subarray(start, end))
}

/** Whether meshtap decodes this port into a typed payload (rather than opaque bytes). */
export function hasPayloadSchema(portnum: number): boolean {
  return TEXT_TYPES.has(portnum) || HANDLERS.has(portnum)
}
