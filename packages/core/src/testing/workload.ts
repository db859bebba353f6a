/**
 * A deterministic, public-broker-like stream of packets and receptions for store tests and
 * benchmarks (the same records for every store).
 * @module
 */

import {
  type DecodedPacket,
  PortNum,
  type RawMessage,
  type Reception,
  type StoredPacket,
  type UndecodedPacket,
  type WriteBatch,
} from '@meshtap/protocol'
import { createCodec } from '../codec/decode.js'
import { encodeEnvelope } from '../codec/encode.js'
import { packetKeyOf } from '../pipeline/ingest.js'

/** Shape of a synthetic public-broker-like stream. */
export interface WorkloadOptions {
  /** Logical packets to generate. */
  packets: number
  /** @default 3000 */
  nodes?: number
  /** @default 150 */
  gateways?: number
  /** Mean gateway copies per packet (1 + geometric). @default 3 */
  copies?: number
  /** @default 1 */
  seed?: number
  /** Unix ms of the first packet. @default 1764288000000 */
  startMs?: number
  /** Time the stream spans. @default 3 days */
  spanMs?: number
  /** Share of packets on a channel whose key the codec lacks (kept as undecoded). @default 0 */
  secretShare?: number
  /**
   * Encode every copy as an MQTT message (for pipeline tests). Without it only the first copy is
   * encoded and decoded; the other receptions are derived from it (much faster).
   * @default true
   */
  messages?: boolean
}

/** One logical packet and every gateway copy, as the pipeline would produce them. */
export interface WorkloadRecord {
  packet?: StoredPacket
  undecoded?: UndecodedPacket
  receptions: Reception[]
  /** The copies as MQTT messages (topic + envelope), in arrival order. */
  messages: RawMessage[]
}

/** The channel of the `secretShare` packets (the codec in tests adds it to recover them). */
export const SECRET_CHANNEL = { name: 'Secret', psk: 'c2VjcmV0LXNlY3JldC1rZXk=' }

function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const id = (n: number) => `!${(n >>> 0).toString(16).padStart(8, '0')}`

/**
 * A deterministic stream resembling the public broker: nodes in a few clusters, each heard by a
 * handful of nearby gateways, a port mix dominated by positions, telemetry and node info.
 */
export function* workload(options: WorkloadOptions): Generator<WorkloadRecord> {
  const rnd = prng(options.seed ?? 1)
  const nNodes = options.nodes ?? 3000
  const nGateways = Math.min(options.gateways ?? 150, nNodes)
  const meanCopies = options.copies ?? 3
  const start = options.startMs ?? 1_764_288_000_000
  const span = options.spanMs ?? 3 * 86_400_000
  const secretShare = options.secretShare ?? 0
  const codec = createCodec({ keys: [] })
  const nodes = Array.from({ length: nNodes }, (_, i) => {
    const cluster = i % 7
    return {
      num: (0x10000000 + i * 7919) >>> 0,
      lat: 37 + cluster * 1.5 + rnd() * 0.8,
      lon: -122 + cluster * 2 + rnd() * 0.8,
      nextId: Math.floor(rnd() * 0x7fffffff) + 1,
      battery: 50 + Math.floor(rnd() * 50),
      gateways: [] as number[],
      hopStart: 3 + Math.floor(rnd() * 2),
    }
  })
  const gateways = nodes.slice(0, nGateways).map((n) => n.num)
  for (const n of nodes) {
    const k = 2 + Math.floor(rnd() * 5)
    for (let j = 0; j < k; j++) n.gateways.push(gateways[Math.floor(rnd() * nGateways)] as number)
  }
  const lastText = new Map<number, number>()
  for (let i = 0; i < options.packets; i++) {
    const node = nodes[Math.floor(rnd() * nNodes)] as (typeof nodes)[number]
    const t0 = start + Math.floor((i / options.packets) * span)
    const pid = node.nextId++ >>> 0
    const r = rnd()
    let portnum: number
    let payload: string | Record<string, unknown>
    let to: number | undefined
    let replyId: number | undefined
    let emoji: number | undefined
    if (r < 0.3) {
      portnum = PortNum.POSITION_APP
      payload = {
        latitudeI: Math.round((node.lat + (rnd() - 0.5) * 0.01) * 1e7),
        longitudeI: Math.round((node.lon + (rnd() - 0.5) * 0.01) * 1e7),
        altitude: Math.floor(rnd() * 300),
        time: Math.floor(t0 / 1000),
        precisionBits: rnd() < 0.5 ? 32 : 13,
        satsInView: Math.floor(rnd() * 12),
      }
    } else if (r < 0.5) {
      portnum = PortNum.TELEMETRY_APP
      payload = {
        time: Math.floor(t0 / 1000),
        deviceMetrics: {
          batteryLevel: node.battery,
          voltage: 3.5 + rnd() * 0.7,
          channelUtilization: rnd() * 30,
          airUtilTx: rnd() * 5,
          uptimeSeconds: Math.floor(t0 / 1000) % 100000,
        },
      }
    } else if (r < 0.58) {
      portnum = PortNum.TELEMETRY_APP
      payload = {
        time: Math.floor(t0 / 1000),
        environmentMetrics: {
          temperature: 10 + rnd() * 20,
          relativeHumidity: 30 + rnd() * 60,
          barometricPressure: 990 + rnd() * 40,
        },
      }
    } else if (r < 0.72) {
      portnum = PortNum.NODEINFO_APP
      payload = {
        id: id(node.num),
        longName: `Node ${node.num.toString(36)}`,
        shortName: node.num.toString(36).slice(-4),
        hwModel: 'RAK4631',
      }
    } else if (r < 0.8) {
      portnum = PortNum.TEXT_MESSAGE_APP
      payload = `hello from ${id(node.num)} #${i}`
      const prev = lastText.get(node.num)
      if (prev !== undefined && rnd() < 0.2) {
        replyId = prev
        if (rnd() < 0.5) {
          emoji = 0x1f44d
          payload = '👍'
        }
      }
      if (rnd() < 0.1) to = (nodes[Math.floor(rnd() * nNodes)] as (typeof nodes)[number]).num
      lastText.set(node.num, pid)
    } else if (r < 0.9) {
      portnum = PortNum.ROUTING_APP
      payload = { errorReason: 'NONE' }
      to = (nodes[Math.floor(rnd() * nNodes)] as (typeof nodes)[number]).num
    } else if (r < 0.93) {
      portnum = PortNum.TRACEROUTE_APP
      payload = {
        route: [(nodes[Math.floor(rnd() * nNodes)] as (typeof nodes)[number]).num],
        snrTowards: [Math.floor(rnd() * 40) - 20, Math.floor(rnd() * 40) - 20],
      }
      to = (nodes[Math.floor(rnd() * nNodes)] as (typeof nodes)[number]).num
    } else if (r < 0.95) {
      portnum = PortNum.NEIGHBORINFO_APP
      payload = {
        nodeId: node.num,
        nodeBroadcastIntervalSecs: 900,
        neighbors: node.gateways.slice(0, 3).map((g) => ({ nodeId: g, snr: rnd() * 10 })),
      }
    } else {
      portnum = PortNum.MAP_REPORT_APP
      payload = {
        longName: `GW ${node.num.toString(36)}`,
        shortName: 'GW',
        firmwareVersion: '2.6.11',
        latitudeI: Math.round(node.lat * 1e7),
        longitudeI: Math.round(node.lon * 1e7),
        positionPrecision: 14,
      }
    }
    const isMap = portnum === PortNum.MAP_REPORT_APP
    const secret = !isMap && rnd() < secretShare
    const nCopies = isMap ? 1 : Math.min(node.gateways.length, 1 + geometric(rnd, meanCopies - 1))
    const record: WorkloadRecord = { receptions: [], messages: [] }
    const seen = new Set<number>()
    const withMessages = options.messages ?? true
    let first: ReturnType<typeof codec.decode> | undefined
    for (let c = 0; c < nCopies; c++) {
      const gw = isMap ? node.num : (node.gateways[c] as number)
      if (seen.has(gw)) continue
      seen.add(gw)
      const receivedAt = t0 + c * 37 + Math.floor(rnd() * 20)
      const hopLimit =
        gw === node.num ? node.hopStart : Math.max(0, node.hopStart - Math.floor(rnd() * 3))
      const rxSnr = gw === node.num ? 0 : Math.round((rnd() * 20 - 10) * 4) / 4
      const rxRssi = gw === node.num ? 0 : -60 - Math.floor(rnd() * 70)
      const topic = isMap
        ? 'msh/US/2/map/'
        : `msh/US/2/e/${secret ? 'Secret' : 'LongFast'}/${id(gw)}`
      const key = packetKeyOf(node.num, isMap ? 0 : pid, t0)
      let res = first
      if (c === 0 || withMessages) {
        const bytes = encodeEnvelope({
          from: node.num,
          id: isMap ? 0 : pid,
          portnum,
          payload,
          gatewayId: id(gw),
          hopStart: node.hopStart,
          hopLimit,
          rxTime: Math.floor(receivedAt / 1000),
          rxSnr,
          rxRssi,
          bitfield: 1,
          ...(to !== undefined ? { to } : {}),
          ...(replyId !== undefined ? { replyId } : {}),
          ...(emoji !== undefined ? { emoji } : {}),
          ...(isMap ? { encrypt: false } : {}),
          ...(secret ? { channel: SECRET_CHANNEL } : {}),
        })
        const message: RawMessage = { topic, payload: bytes, receivedAt }
        if (withMessages) record.messages.push(message)
        res = codec.decode(message)
        if (c === 0) {
          first = res
          if (res.ok) record.packet = { key, packet: res.value as DecodedPacket, receivedAt }
          else record.undecoded = { key, failure: res.error, receivedAt }
        }
      }
      const hopsAway = node.hopStart - hopLimit
      const receptionClass =
        gw === node.num
          ? 'self'
          : hopsAway === 0
            ? 'direct'
            : hopLimit === 0
              ? 'unknown'
              : 'relayed'
      const reception: Reception = {
        packetKey: key,
        rxTime: Math.floor(receivedAt / 1000),
        receivedAt,
        rxSnr,
        rxRssi,
        hopLimit,
        hopStart: node.hopStart,
        receptionClass,
        gatewayId: id(gw),
        topic,
        channelId: secret ? 'Secret' : 'LongFast',
      }
      if (hopLimit > 0) reception.hopsAway = hopsAway
      if (c > 0 && res?.ok && res.value.app.type === 'traceroute') reception.app = res.value.app
      record.receptions.push(reception)
    }
    yield record
  }
}

function geometric(rnd: () => number, mean: number): number {
  if (mean <= 0) return 0
  const p = 1 / (mean + 1)
  return Math.floor(Math.log(1 - rnd()) / Math.log(1 - p))
}

/** Groups records into write batches of about `maxRecords` receptions (the pipeline's unit). */
export function* batches(
  records: Iterable<WorkloadRecord>,
  maxRecords: number,
): Generator<WriteBatch> {
  let batch: { packets: StoredPacket[]; receptions: Reception[]; undecoded: UndecodedPacket[] } = {
    packets: [],
    receptions: [],
    undecoded: [],
  }
  for (const r of records) {
    if (r.packet) batch.packets.push(r.packet)
    if (r.undecoded) batch.undecoded.push(r.undecoded)
    batch.receptions.push(...r.receptions)
    if (batch.receptions.length >= maxRecords) {
      yield batch
      batch = { packets: [], receptions: [], undecoded: [] }
    }
  }
  if (batch.receptions.length > 0) yield batch
}
