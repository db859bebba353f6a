import type { DecodeResult } from '@meshtap/core'
import { type AppPayload, isBroadcast } from '@meshtap/protocol'

function round(n: number, digits = 5): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** One short, human-readable phrase for an app payload. */
export function describeApp(app: AppPayload): string {
  switch (app.type) {
    case 'text':
    case 'alert':
    case 'detection':
    case 'rangetest':
    case 'reply':
      return `${app.isReaction ? 'reaction' : app.type} ${JSON.stringify(app.text)}`
    case 'position':
      return app.latitude === undefined
        ? 'position (no fix)'
        : `position ${round(app.latitude)}, ${round(app.longitude ?? 0)}${
            app.radiusM ? ` ±${Math.round(app.radiusM)} m` : ''
          }${app.altitude !== undefined ? ` alt ${app.altitude} m` : ''}`
    case 'nodeinfo':
      return `node info ${JSON.stringify(app.user.longName ?? '')} (${app.user.shortName ?? '?'}) ${
        app.user.hwModel ?? ''
      }`.trimEnd()
    case 'routing':
      return `routing ${app.errorReason ?? 'route discovery'}`
    case 'telemetry': {
      const parts = Object.entries(app.metrics)
        .slice(0, 4)
        .map(([k, v]) => `${k}=${typeof v === 'number' ? round(v, 2) : String(v)}`)
      return `${app.variant} telemetry ${parts.join(' ')}`.trimEnd()
    }
    case 'traceroute':
      return `traceroute via [${app.route.map((h) => (h.unknown ? '?' : h.id)).join(' ')}]`
    case 'neighborinfo':
      return `neighbour info, ${app.neighborInfo.neighbors?.length ?? 0} neighbours`
    case 'mapreport':
      return `map report ${JSON.stringify(app.mapReport.longName ?? '')}${
        app.latitude !== undefined ? ` at ${round(app.latitude)}, ${round(app.longitude ?? 0)}` : ''
      }`
    case 'waypoint':
      return `waypoint ${JSON.stringify(app.waypoint.name ?? '')}`
    case 'storeforward':
      return `store & forward ${String(app.storeForward.rr ?? '')}`.trimEnd()
    case 'paxcounter':
      return `paxcounter wifi=${app.paxcount.wifi ?? 0} ble=${app.paxcount.ble ?? 0}`
    case 'opaque':
      return `${app.bytes.length > 0 ? Math.floor((app.bytes.length * 3) / 4) : 0} bytes`
  }
}

/**
 * One line for a terminal: sender → destination, port and content, and how the gateway heard it.
 *
 * @example
 * describeResult(codec.decode(message))
 * // '✓ !1f2e3d4c → all  POSITION_APP  position 37.7749, -122.4194 ±1456 m  via !a0c0ffee snr 6.25 rssi -92 direct'
 */
export function describeResult(result: DecodeResult): string {
  if (!result.ok) {
    const { error, packet } = result.error
    const who = packet.fromId ? `${packet.fromId} ` : ''
    const via = packet.gatewayId ? ` via ${packet.gatewayId}` : ''
    return `✗ ${who}${error.code}: ${error.message}${via}`
  }
  const p = result.value
  const to = isBroadcast(p.to) ? 'all' : p.toId
  const radio =
    p.receptionClass === 'self' || p.receptionClass === 'injected'
      ? p.receptionClass
      : `snr ${p.rxSnr} rssi ${p.rxRssi} ${p.receptionClass}${p.hopsAway ? ` (${p.hopsAway} hops)` : ''}`
  const via = p.gatewayId ? `  via ${p.gatewayId} ${radio}` : ''
  return `✓ ${p.fromId} → ${to}  ${p.portnumName ?? `port ${p.portnum}`}  ${describeApp(p.app)}${via}`
}
