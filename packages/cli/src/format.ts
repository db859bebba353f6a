import type { DecodeResult } from '@meshtap/core'
import {
  type AppPayload,
  base64ToBytes,
  bytesToHex,
  type DecodedPacket,
  nodeIdFromNum,
  type PartialPacket,
} from '@meshtap/protocol'

/** One output line of `meshtap decode`. */
export type DecodeLine =
  | { ok: true; packet: Record<string, unknown> }
  | { ok: false; error: { code: string; message: string }; packet: Record<string, unknown> }

const HEADER_KEYS = [
  'kind',
  'topic',
  'root',
  'channelId',
  'gatewayId',
  'from',
  'to',
  'id',
  'fromId',
  'toId',
  'channel',
  'hopLimit',
  'hopStart',
  'wantAck',
  'viaMqtt',
  'rxTime',
  'rxSnr',
  'rxRssi',
  'priority',
  'nextHop',
  'relayNode',
  'pkiEncrypted',
  'publicKey',
  'transportMechanism',
  'encrypted',
] as const

const DATA_KEYS = [
  'keyName',
  'portnum',
  'portnumName',
  'wantResponse',
  'dest',
  'source',
  'requestId',
  'replyId',
  'emoji',
  'bitfield',
  'okToMqtt',
  'hopsAway',
  'receptionClass',
] as const

function copy(out: Record<string, unknown>, src: object, keys: readonly string[]): void {
  const s = src as Record<string, unknown>
  for (const k of keys) if (s[k] !== undefined) out[k] = s[k]
}

function withDegrees(msg: Record<string, unknown>): Record<string, unknown> {
  if (msg.latitudeI === undefined && msg.longitudeI === undefined) return msg
  return {
    ...msg,
    latitude: ((msg.latitudeI as number | undefined) ?? 0) / 1e7,
    longitude: ((msg.longitudeI as number | undefined) ?? 0) / 1e7,
  }
}

/**
 * The app payload in protobuf's canonical JSON form, plus the helpers the decode contract adds:
 * `latitude`/`longitude` in degrees wherever there are `latitudeI`/`longitudeI`, `{ text }` for text
 * ports, `routeIds`/`snrTowardsDb` for traceroutes and `nodeIdHex` for neighbour info.
 */
export function canonicalPayload(app: AppPayload): Record<string, unknown> {
  switch (app.type) {
    case 'text':
    case 'alert':
    case 'detection':
    case 'rangetest':
    case 'reply':
      return { text: app.text }
    case 'position':
      return withDegrees(app.position)
    case 'nodeinfo':
      return app.user
    case 'routing':
      return app.routing
    case 'telemetry':
      return app.telemetry
    case 'traceroute': {
      const out: Record<string, unknown> = {
        ...app.routeDiscovery,
        routeIds: app.route.map((h) => h.id),
      }
      if (app.routeDiscovery.snrTowards !== undefined) out.snrTowardsDb = app.snrTowardsDb
      return out
    }
    case 'neighborinfo': {
      const ni = app.neighborInfo
      const out: Record<string, unknown> = { ...ni }
      if (Array.isArray(ni.neighbors)) {
        out.neighbors = ni.neighbors.map((n) =>
          n.nodeId !== undefined ? { ...n, nodeIdHex: nodeIdFromNum(n.nodeId) } : n,
        )
      }
      if (ni.nodeId !== undefined) out.nodeIdHex = nodeIdFromNum(ni.nodeId)
      return out
    }
    case 'mapreport':
      return withDegrees(app.mapReport)
    case 'waypoint':
      return withDegrees(app.waypoint)
    case 'storeforward':
      return app.storeForward
    case 'paxcounter':
      return app.paxcount
    case 'opaque':
      return app.message ?? (app.bytes ? { bytes: app.bytes } : {})
  }
}

function hexOf(base64: string | undefined): string | undefined {
  if (base64 === undefined) return undefined
  const b = base64ToBytes(base64)
  return b ? bytesToHex(b) : undefined
}

function packetJson(p: DecodedPacket): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  copy(out, p, HEADER_KEYS)
  if (p.raw?.ciphertext !== undefined) {
    out.encryptedLen = (base64ToBytes(p.raw.ciphertext) as Uint8Array).length
    out.decryptable = true
  }
  if (p.encrypted && p.raw?.data !== undefined) out.decryptedDataHex = hexOf(p.raw.data)
  copy(out, p, DATA_KEYS)
  const uplink = p.raw?.uplink
  if (p.kind === 'json-uplink' && uplink) {
    for (const k of ['type', 'sender', 'timestamp', 'rssi', 'snr'] as const) {
      if (uplink[k] !== undefined) out[k] = uplink[k]
    }
    if (p.app.type === 'position' && p.app.latitude !== undefined) {
      out.latitude = p.app.latitude
      out.longitude = p.app.longitude
    }
    if (p.app.type === 'nodeinfo') {
      const { hwModel, ...rest } = p.app.user
      out.normalized = {
        ...rest,
        ...(hwModel !== undefined
          ? typeof hwModel === 'string'
            ? { hwModel: (uplink.payload as { hardware?: number }).hardware, hwModelName: hwModel }
            : { hwModel }
          : {}),
      }
    }
    out.payload = uplink.payload ?? {}
    return out
  }
  out.payloadHex = hexOf(p.payload) ?? ''
  out.payload = canonicalPayload(p.app)
  return out
}

function partialJson(p: PartialPacket): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  copy(out, p, HEADER_KEYS)
  if (p.ciphertext !== undefined) {
    out.encryptedLen = (base64ToBytes(p.ciphertext) as Uint8Array).length
    out.decryptable = false
    out.ciphertext = p.ciphertext
  }
  copy(out, p, DATA_KEYS)
  return out
}

/** Formats a decode result as the `meshtap decode` contract's output object. */
export function toDecodeLine(result: DecodeResult): DecodeLine {
  if (result.ok) return { ok: true, packet: packetJson(result.value) }
  return {
    ok: false,
    error: { code: result.error.error.code, message: result.error.error.message },
    packet: partialJson(result.error.packet),
  }
}
