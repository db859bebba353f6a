import {
  type AppPayload,
  type DecodedPacket,
  isBroadcast,
  type MetricsMessage,
  type ReceptionClass,
  type TelemetryVariant,
} from '../index.js'

/** Reception classes as stored (one small integer each). @internal */
export const CLASSES: readonly ReceptionClass[] = [
  'unknown',
  'self',
  'injected',
  'direct',
  'relayed',
]
/** @internal */
export const CLASS_CODE: Readonly<Record<ReceptionClass, number>> = {
  unknown: 0,
  self: 1,
  injected: 2,
  direct: 3,
  relayed: 4,
}

/**
 * Telemetry metrics with a column of their own: `[column, metric name, variants]`. Every other
 * metric goes to the row's `extra` JSON, so the report stays lossless. @internal
 */
export const TELEMETRY_COLUMNS: readonly (readonly [
  string,
  string,
  readonly TelemetryVariant[],
])[] = [
  ['battery_level', 'batteryLevel', ['device']],
  ['voltage', 'voltage', ['device', 'environment']],
  ['channel_utilization', 'channelUtilization', ['device']],
  ['air_util_tx', 'airUtilTx', ['device']],
  ['uptime_seconds', 'uptimeSeconds', ['device']],
  ['temperature', 'temperature', ['environment']],
  ['relative_humidity', 'relativeHumidity', ['environment']],
  ['barometric_pressure', 'barometricPressure', ['environment']],
  ['gas_resistance', 'gasResistance', ['environment']],
  ['current', 'current', ['environment']],
  ['iaq', 'iaq', ['environment']],
  ['lux', 'lux', ['environment']],
  ['ch1_voltage', 'ch1Voltage', ['power']],
  ['ch1_current', 'ch1Current', ['power']],
  ['ch2_voltage', 'ch2Voltage', ['power']],
  ['ch2_current', 'ch2Current', ['power']],
  ['ch3_voltage', 'ch3Voltage', ['power']],
  ['ch3_current', 'ch3Current', ['power']],
  ['pm10_standard', 'pm10Standard', ['airQuality']],
  ['pm25_standard', 'pm25Standard', ['airQuality']],
  ['pm100_standard', 'pm100Standard', ['airQuality']],
  ['co2', 'co2', ['airQuality']],
]

/** Splits a metrics group into its typed columns (in {@link TELEMETRY_COLUMNS} order) and the rest. @internal */
export function splitMetrics(
  variant: TelemetryVariant,
  metrics: MetricsMessage,
): { columns: (number | null)[]; extra: string | null } {
  const columns: (number | null)[] = []
  const used = new Set<string>()
  for (const [, name, variants] of TELEMETRY_COLUMNS) {
    const v = metrics[name]
    if (typeof v === 'number' && variants.includes(variant)) {
      columns.push(v)
      used.add(name)
    } else columns.push(null)
  }
  let extra: Record<string, unknown> | undefined
  for (const k of Object.keys(metrics)) {
    if (used.has(k)) continue
    extra ??= {}
    extra[k] = metrics[k]
  }
  return { columns, extra: extra ? JSON.stringify(extra) : null }
}

/** Joins typed columns and `extra` back into the metrics object. @internal */
export function joinMetrics(
  variant: TelemetryVariant,
  row: Record<string, unknown>,
  extra: string | null,
): MetricsMessage {
  const out: Record<string, unknown> = {}
  for (const [column, name, variants] of TELEMETRY_COLUMNS) {
    const v = row[column]
    if (v !== null && v !== undefined && variants.includes(variant)) out[name] = v
  }
  if (extra) Object.assign(out, JSON.parse(extra) as Record<string, unknown>)
  return out
}

/** The telemetry metrics group key for each variant. @internal */
export const VARIANT_GROUP: Readonly<Record<TelemetryVariant, string>> = {
  device: 'deviceMetrics',
  environment: 'environmentMetrics',
  airQuality: 'airQualityMetrics',
  power: 'powerMetrics',
  localStats: 'localStats',
  health: 'healthMetrics',
  host: 'hostMetrics',
  unknown: '',
}

/** Whether a packet goes to the messages table. @internal */
export function isText(
  app: AppPayload,
): app is Extract<AppPayload, { type: 'text' | 'alert' | 'detection' | 'rangetest' | 'reply' }> {
  return (
    app.type === 'text' ||
    app.type === 'alert' ||
    app.type === 'detection' ||
    app.type === 'rangetest' ||
    app.type === 'reply'
  )
}

/** Whether a text packet was sent to one node rather than the channel. @internal */
export function isDirect(p: DecodedPacket): boolean {
  return !isBroadcast(p.to) && p.to !== 0
}

/** A `!xxxxxxxx` string's node number, or null. @internal */
export function nodeNumOf(id: string | undefined): number | null {
  if (id === undefined) return null
  const m = /^!([0-9a-fA-F]{8})$/.exec(id)
  return m ? Number.parseInt(m[1] as string, 16) >>> 0 : null
}

/** The sender number in a packet key (`from:id[:bucket]`), or null. @internal */
export function fromOfKey(key: string): number | null {
  const colon = key.indexOf(':')
  if (colon <= 0) return null
  const n = Number(key.slice(0, colon))
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : null
}

/** The packet id in a packet key, or null. @internal */
export function idOfKey(key: string): number | null {
  const parts = key.split(':')
  if (parts.length < 2) return null
  const n = Number(parts[1])
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : null
}

/** `undefined` for SQL NULL. @internal */
export function opt<T>(v: T | null | undefined): T | undefined {
  return v === null ? undefined : v
}

/** SQL NULL for `undefined`. @internal */
export function nul<T>(v: T | undefined): T | null {
  return v === undefined ? null : v
}

/**
 * The 1°×1° grid cell of a position (append-friendly spatial index: a box query reads the
 * cells it covers). @internal
 */
export function cellOf(latitude: number, longitude: number): number {
  const row = Math.min(179, Math.max(0, Math.floor(latitude + 90)))
  const col = ((Math.floor(longitude + 180) % 360) + 360) % 360
  return row * 360 + col
}

/** The cells a box covers, or undefined when there are more than `max`. @internal */
export function cellsOf(
  south: number,
  west: number,
  north: number,
  east: number,
  max: number,
): number[] | undefined {
  const r0 = Math.min(179, Math.max(0, Math.floor(Math.min(south, north) + 90)))
  const r1 = Math.min(179, Math.max(0, Math.floor(Math.max(south, north) + 90)))
  const c0 = ((Math.floor(west + 180) % 360) + 360) % 360
  const c1 = ((Math.floor(east + 180) % 360) + 360) % 360
  const cols: number[] = []
  if (west <= east && east - west >= 360) return undefined
  for (let c = c0; ; c = (c + 1) % 360) {
    cols.push(c)
    if (c === c1 || cols.length > 360) break
  }
  if ((r1 - r0 + 1) * cols.length > max) return undefined
  const out: number[] = []
  for (let r = r0; r <= r1; r++) for (const c of cols) out.push(r * 360 + c)
  return out
}
