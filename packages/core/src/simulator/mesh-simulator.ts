import { create, toBinary } from '@bufbuild/protobuf'
import {
  BROADCAST_NUM,
  bytesToBase64,
  nodeIdFromNum,
  PortNum,
  portnumName,
  type RawMessage,
} from '@meshtap/protocol'
import { Mesh, Mqtt } from '@meshtastic/protobufs'
import { type DataFields, encodeAppPayload, encodeData, encodeEnvelope } from '../codec/encode.js'
import {
  type ChannelKey,
  type ChannelKeyInput,
  createChannelKey,
  DEFAULT_CHANNEL_NAME,
  DEFAULT_KEY,
} from '../codec/keyring.js'
import { createPrng, type Prng } from './prng.js'
import { dmText, nodeNames, openerText, reaction, replyText, truncateUtf8 } from './words.js'

/**
 * What a simulated logical packet is. `pki` is a PKI-encrypted direct message (its real port is
 * hidden from listeners); the others name the app traffic.
 *
 * @example
 * const traceroutes = sim.take(1000).filter((m) => m.packetType === 'traceroute')
 */
export type SimPacketType =
  | 'position'
  | 'nodeinfo'
  | 'deviceTelemetry'
  | 'environmentTelemetry'
  | 'text'
  | 'traceroute'
  | 'neighborinfo'
  | 'mapreport'
  | 'routing'
  | 'pki'

/**
 * Relative weights of the kinds of logical packets the simulated nodes send (any non-negative
 * numbers; they need not add up to anything). Kinds left out keep their default weight; set a
 * weight to 0 to switch a kind off.
 *
 * @example
 * createMeshSimulator({ mix: { text: 50, position: 10 } }) // a chatty mesh
 */
export interface MeshSimulatorMix {
  /** POSITION_APP broadcasts (trackers send four times as many). @default 28 */
  position?: number
  /** NODEINFO_APP broadcasts (`User` with names, hardware, role, public key). @default 12 */
  nodeinfo?: number
  /** TELEMETRY_APP device metrics (battery, voltage, channel utilisation, uptime). @default 25 */
  deviceTelemetry?: number
  /** TELEMETRY_APP environment metrics, from nodes with a sensor. @default 8 */
  environmentTelemetry?: number
  /** TEXT_MESSAGE_APP channel messages; about a third are replies or tapback reactions. @default 12 */
  text?: number
  /** TRACEROUTE_APP requests and replies; every gateway's copy differs. @default 3 */
  traceroute?: number
  /** NEIGHBORINFO_APP reports. @default 4 */
  neighborinfo?: number
  /**
   * Extra MAP_REPORT_APP reports from random gateways, on top of the hourly schedule
   * (see {@link MeshSimulatorOptions.mapReportIntervalSecs}).
   * @default 0
   */
  mapreport?: number
  /** ROUTING_APP ACKs of direct messages. @default 5 */
  routing?: number
}

/**
 * Options of {@link createMeshSimulator}. All are optional.
 *
 * @example
 * const options: MeshSimulatorOptions = {
 *   seed: 7,
 *   nodes: 200,
 *   gateways: 12,
 *   channels: [{ name: 'LongFast', psk: 'AQ==' }, { name: 'Private', psk: 'q2J5c2VjcmV0a2V5MTIzNA==' }],
 * }
 */
export interface MeshSimulatorOptions {
  /** Seed of the pseudo-random generator: same seed and options ⇒ byte-identical output. @default 1 */
  seed?: number
  /** Number of nodes in the mesh (gateways included). @default 50 */
  nodes?: number
  /** How many of the nodes are MQTT gateways (1 … `nodes`). @default 5 */
  gateways?: number
  /** Topic root, before `/2/e/…` and `/2/map/`. @default 'msh/US' */
  root?: string
  /**
   * The channels the nodes use; each node is assigned one (the first channel gets the most nodes).
   * Gateways know all of them, so everything sent is uplinked. A PSK of `''` or `AA==` is an
   * unencrypted channel.
   * @default [{ name: 'LongFast', psk: 'AQ==' }]
   */
  channels?: readonly ChannelKeyInput[]
  /**
   * Average number of gateways that publish each packet (1 … `gateways`): each packet gets
   * `1 + Poisson(λ)` copies, capped at `gateways`, with λ chosen so that the mean is this value.
   * @default 3 (or `gateways` when there are fewer)
   */
  meanCopies?: number
  /** Virtual time of the start, Unix milliseconds. @default Date.UTC(2026, 0, 1) (2026-01-01T00:00:00Z) */
  startTime?: number
  /**
   * Logical packets per second of virtual time (gaps between packets are exponential). Only the
   * timestamps depend on it; `next()` produces packets as fast as it is called.
   * @default 10
   */
  virtualRate?: number
  /**
   * Expected fraction of gateways with MQTT encryption off, which publish `decoded` packets (the
   * count, `gateways × plaintextShare`, is rounded up or down at random).
   * @default 0.05
   */
  plaintextShare?: number
  /**
   * Fraction of logical packets that are PKI direct messages: channel id `PKI`, channel 0,
   * `pkiEncrypted`, random ciphertext that no channel key opens.
   * @default 0.02
   */
  pkiShare?: number
  /** Weights of the packet kinds. */
  mix?: MeshSimulatorMix
  /**
   * Interval of each gateway's map report in virtual seconds (firmware default and minimum 3600).
   * Each gateway's first report comes early (gateway k at about 5 + 20k s), so short runs see
   * some. 0 turns the schedule off.
   * @default 3600
   */
  mapReportIntervalSecs?: number
}

/**
 * A simulated node: its stable identity and configuration.
 *
 * @example
 * const gateways = sim.nodes.filter((n) => n.isGateway).map((n) => n.id) // ['!3e119613', …]
 */
export interface SimNode {
  /** Node number (uint32). */
  readonly num: number
  /** `!xxxxxxxx` */
  readonly id: string
  readonly longName: string
  /** At most 4 UTF-8 bytes. */
  readonly shortName: string
  /** `HardwareModel` enum name, e.g. `HELTEC_V3`. */
  readonly hwModel: string
  /** `Config.DeviceConfig.Role` enum name: `CLIENT`, `CLIENT_MUTE`, `ROUTER` or `TRACKER`. */
  readonly role: string
  readonly isGateway: boolean
  /** Name of the channel the node sends on. */
  readonly channel: string
  /** Position precision it shares (32 = exact, 13–16 = an area). */
  readonly precisionBits: number
  /** Hop limit its packets start with: 3 or 7, or 0 for old firmware (< 2.3, no `hop_start`). */
  readonly hopStart: number
  /** Firmware version string, e.g. `2.6.11.60ec05e`. */
  readonly firmwareVersion: string
  /** X25519 public key (32 bytes); absent on firmware < 2.5. */
  readonly publicKey?: Uint8Array
  /** Home position, degrees × 1e7 (the node wanders around it). */
  readonly latitudeI: number
  readonly longitudeI: number
  /** Metres above sea level. */
  readonly altitude: number
  /** Whether it sends environment telemetry. */
  readonly environmentSensor: boolean
  /** Gateways: `false` when MQTT encryption is off (it publishes `decoded` packets). */
  readonly mqttEncryption?: boolean
  /** Gateways: precision of its map reports (12–15 bits). */
  readonly mapReportPrecisionBits?: number
}

/**
 * One envelope as a gateway publishes it: the topic and bytes (a {@link RawMessage}), plus what the
 * simulator knows about it, so tests can check what a decoder makes of it.
 *
 * @example
 * for (const m of sim.take(100)) {
 *   const result = codec.decode(m) // a SimulatedMessage is a RawMessage
 *   if (m.pki) assert(!result.ok) // PKI_ENCRYPTED
 * }
 */
export interface SimulatedMessage extends RawMessage {
  topic: string
  payload: Uint8Array
  /** Virtual arrival time, Unix milliseconds (never decreases along the stream). */
  receivedAt: number
  /** `${from}:${id}`; map reports (id 0) use `${from}:0:${receivedAt in seconds}`. */
  packetKey: string
  /** 0 for the first copy of a logical packet, 1 for the second… (arrival order). */
  copy: number
  /** The app port (for PKI messages the port inside, which listeners cannot see). */
  portnum: number
  /** Whether the envelope carries `encrypted` (PKI included) rather than `decoded`. */
  encrypted: boolean
  /** A PKI direct message (channel id `PKI`): only the recipient could open it. */
  pki: boolean
  /** Sender node number. */
  from: number
  /** Packet id (0 for map reports). */
  id: number
  /** The gateway that published this copy, `!xxxxxxxx`. */
  gatewayId: string
  /** What the logical packet is. */
  packetType: SimPacketType
}

/**
 * Counters of what a simulator produced so far.
 *
 * @example
 * sim.take(1000)
 * sim.stats() // { published: 1000, packets: 334, byPort: { POSITION_APP: 292, PKI: 25, … } }
 */
export interface MeshSimulatorStats {
  /** Envelopes (copies) produced. */
  published: number
  /** Logical packets produced (each has one or more copies). */
  packets: number
  /** Envelopes by port name (`POSITION_APP`, …); PKI direct messages count as `PKI`. */
  byPort: Record<string, number>
}

/**
 * A seeded, deterministic simulation of a Meshtastic mesh as seen through its MQTT gateways.
 * It is an infinite iterable of {@link SimulatedMessage}s.
 *
 * @example
 * const sim = createMeshSimulator()
 * const copies = sim.next() // one packet as 1…n gateways published it
 * for (const m of sim) if (m.packetType === 'mapreport') break
 */
export interface MeshSimulator extends Iterable<SimulatedMessage> {
  /** All nodes, gateways included, in a stable order. */
  readonly nodes: readonly SimNode[]
  /** The channels (name and PSK) the nodes use: pass them to `createCodec({ keys })`. */
  readonly channels: readonly ChannelKeyInput[]
  /** The next logical packet: its 1…n copies (envelopes), in arrival order. */
  next(): SimulatedMessage[]
  /** At least `envelopes` envelopes: whole packets, so possibly a few more. */
  take(envelopes: number): SimulatedMessage[]
  /** An endless iterator over the envelopes, packet after packet. */
  [Symbol.iterator](): Iterator<SimulatedMessage>
  /** What was produced so far. */
  stats(): MeshSimulatorStats
}

// ---------------------------------------------------------------------------------------------
// Static data

interface Site {
  lat: number
  lon: number
}

/** Towns of the San Francisco Bay Area, where ordinary nodes cluster. */
const TOWNS: readonly Site[] = [
  { lat: 37.7749, lon: -122.4194 }, // San Francisco
  { lat: 37.8044, lon: -122.2712 }, // Oakland
  { lat: 37.3382, lon: -121.8863 }, // San Jose
  { lat: 37.8715, lon: -122.273 }, // Berkeley
  { lat: 37.4419, lon: -122.143 }, // Palo Alto
  { lat: 37.5485, lon: -121.9886 }, // Fremont
  { lat: 37.563, lon: -122.3255 }, // San Mateo
  { lat: 37.9101, lon: -122.0652 }, // Walnut Creek
  { lat: 37.9735, lon: -122.5311 }, // San Rafael
  { lat: 37.6688, lon: -122.0808 }, // Hayward
  { lat: 37.3861, lon: -122.0839 }, // Mountain View
  { lat: 37.9358, lon: -122.3478 }, // Richmond
]

/** Hills and towers, where gateways sit. */
const HILLS: readonly Site[] = [
  { lat: 37.7552, lon: -122.4528 }, // Sutro Tower
  { lat: 37.8816, lon: -121.9142 }, // Mount Diablo
  { lat: 37.9235, lon: -122.5965 }, // Mount Tamalpais
  { lat: 37.6867, lon: -122.4347 }, // San Bruno Mountain
  { lat: 37.3414, lon: -121.6429 }, // Mount Hamilton
  { lat: 37.8827, lon: -122.234 }, // Grizzly Peak
  { lat: 37.5126, lon: -121.8805 }, // Mission Peak
  { lat: 37.3194, lon: -122.1467 }, // Black Mountain
]

const GATEWAY_MODELS = ['HELTEC_V3', 'STATION_G2', 'TBEAM', 'HELTEC_V4', 'T_DECK', 'RAK11200']
const GATEWAY_MODEL_WEIGHTS = [35, 20, 15, 15, 5, 10]
const NODE_MODELS = [
  'HELTEC_V3',
  'RAK4631',
  'T_ECHO',
  'TBEAM',
  'STATION_G2',
  'HELTEC_V4',
  'TRACKER_T1000_E',
  'T_DECK',
  'XIAO_NRF52_KIT',
  'HELTEC_WSL_V3',
]
const NODE_MODEL_WEIGHTS = [30, 22, 10, 10, 3, 8, 8, 4, 3, 2]

const MODERN_FIRMWARE = ['2.6.11.60ec05e', '2.7.15.567b8ea', '2.7.17.a1b2c3d', '2.6.10.9ce4455']
const V25_FIRMWARE = ['2.5.20.4c97351', '2.5.23.cf574c7']
const OLD_FIRMWARE = ['2.2.24.e6a2c06', '2.1.23.e7f1f3b']

const REGIONS = new Set([
  'US',
  'EU_433',
  'EU_868',
  'CN',
  'JP',
  'ANZ',
  'KR',
  'TW',
  'RU',
  'IN',
  'NZ_865',
  'TH',
  'LORA_24',
  'UA_433',
  'UA_868',
  'MY_433',
  'MY_919',
  'SG_923',
  'PH_433',
  'PH_868',
  'PH_915',
  'ANZ_433',
  'KZ_433',
  'KZ_863',
  'NP_865',
])

const DEFAULT_MIX: Required<MeshSimulatorMix> = {
  position: 28,
  nodeinfo: 12,
  deviceTelemetry: 25,
  environmentTelemetry: 8,
  text: 12,
  traceroute: 3,
  neighborinfo: 4,
  mapreport: 0,
  routing: 5,
}
type MixKind = keyof MeshSimulatorMix
const MIX_KINDS = Object.keys(DEFAULT_MIX) as MixKind[]

const PORTS: Record<SimPacketType, number> = {
  position: PortNum.POSITION_APP,
  nodeinfo: PortNum.NODEINFO_APP,
  deviceTelemetry: PortNum.TELEMETRY_APP,
  environmentTelemetry: PortNum.TELEMETRY_APP,
  text: PortNum.TEXT_MESSAGE_APP,
  traceroute: PortNum.TRACEROUTE_APP,
  neighborinfo: PortNum.NEIGHBORINFO_APP,
  mapreport: PortNum.MAP_REPORT_APP,
  routing: PortNum.ROUTING_APP,
  pki: PortNum.TEXT_MESSAGE_APP,
}

/** 2026-01-01T00:00:00Z */
const DEFAULT_START = Date.UTC(2026, 0, 1)
const ID_COUNTER_MASK = 0x3ff
const NEAR = 8

// ---------------------------------------------------------------------------------------------
// Internal state

type Firmware = 'old' | 'v25' | 'modern'

interface ChannelState {
  readonly input: ChannelKeyInput
  readonly key: ChannelKey
  readonly index: number
}

interface GatewayState {
  readonly node: NodeState
  readonly encrypt: boolean
  readonly mapPrecision: number
  nextMapAt: number
}

interface NodeState {
  readonly index: number
  readonly num: number
  readonly id: string
  readonly info: SimNode
  readonly firmware: Firmware
  readonly channel: ChannelState
  readonly okToMqtt: boolean
  readonly neighborInfo: boolean
  readonly homeLat: number
  readonly homeLon: number
  lat: number
  lon: number
  counter: number
  near?: readonly NodeState[]
  localNodes?: number
  gateway?: GatewayState
}

/** How one gateway came to hear one packet. */
interface CopyPlan {
  readonly gateway: GatewayState
  readonly self: boolean
  readonly hops: number
  /** Relaying nodes in order; the last one transmitted to the gateway. */
  readonly relayers: readonly NodeState[]
  /** SNR (dB × 4) at which each relayer heard the previous transmitter. */
  readonly relayerSnr4: readonly number[]
  readonly snr: number
  readonly rssi: number
  readonly delayMs: number
}

interface Planned {
  readonly type: SimPacketType
  readonly sender: NodeState
  readonly to: number
  readonly id: number
  readonly portnum: number
  readonly channel: ChannelState
  readonly wantAck: boolean
  readonly fields: DataFields
  /** Fixed payload bytes, or a builder for payloads that each gateway alters (traceroute). */
  readonly payload: Uint8Array | ((plan: CopyPlan) => Uint8Array)
  /** PKI: the ciphertext every gateway forwards. */
  readonly ciphertext?: Uint8Array
}

interface PendingRequest {
  readonly from: NodeState
  readonly to: NodeState
  readonly id: number
}

// ---------------------------------------------------------------------------------------------
// Helpers

function km(aLat: number, aLon: number, bLat: number, bLon: number): number {
  const dy = (bLat - aLat) * 110.57
  const dx = (bLon - aLon) * 111.32 * Math.cos(((aLat + bLat) / 2) * (Math.PI / 180))
  return Math.sqrt(dx * dx + dy * dy)
}

function nodeKm(a: NodeState, b: NodeState): number {
  return km(a.lat, a.lon, b.lat, b.lon)
}

/** Degrees → integer × 1e-7. */
function toI(deg: number): number {
  return Math.round(deg * 1e7)
}

/**
 * Truncates a coordinate (× 1e-7) to `bits` of precision and centres it in its cell, as firmware
 * does for shared positions and map reports. 0 and 32 (or more) leave it unchanged.
 *
 * @example
 * truncateCoordinate(406_716_416 + 12_345, 14) // 0x183e0000 = 406716416 (40.6716416°)
 */
export function truncateCoordinate(valueI: number, bits: number): number {
  if (bits <= 0 || bits >= 32) return valueI | 0
  return ((valueI & (-1 << (32 - bits))) + (1 << (31 - bits))) | 0
}

function clamp(v: number, min: number, max: number): number {
  return Math.min(Math.max(v, min), max)
}

/** The λ for which E[min(1 + Poisson(λ), cap)] = mean. */
function solveLambda(mean: number, cap: number): number {
  if (mean <= 1) return 0
  const expected = (lambda: number): number => {
    let p = Math.exp(-lambda)
    let cdf = 0
    let sum = 0
    for (let x = 0; x < cap - 1; x++) {
      sum += (1 + x) * p
      cdf += p
      p *= lambda / (x + 1)
    }
    return sum + cap * (1 - cdf)
  }
  let lo = 0
  let hi = mean * 4 + 10
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2
    if (expected(mid) < mean) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new RangeError(`createMeshSimulator: ${message}`)
}

function isDefaultChannel(ch: ChannelKey): boolean {
  if (ch.name !== DEFAULT_CHANNEL_NAME || ch.key.length !== DEFAULT_KEY.length) return false
  return ch.key.every((b, i) => b === DEFAULT_KEY[i])
}

// ---------------------------------------------------------------------------------------------

/**
 * Creates a seeded, deterministic simulation of a Meshtastic mesh as MQTT sees it: nodes with
 * stable identities send positions, node info, telemetry, channel text (with replies and
 * reactions), traceroutes, neighbour info and ACKs; each packet is published by 1…n gateways
 * chosen by distance, each copy with its own SNR/RSSI, hop limit, relay node and receive time, and
 * each gateway publishes its own map report. The envelopes are byte-for-byte what firmware
 * publishes, built with meshtap's encoder.
 *
 * What it models, from firmware behaviour:
 * - packet ids: a per-node 10-bit rolling counter in the low bits, 22 random bits above;
 * - a gateway that sends a packet publishes it itself, without radio metadata (`self` copy);
 * - `hopStart` 3 or 7 (0 on the ~5 % of nodes with firmware < 2.3), `hopLimit = hopStart − hops`;
 * - `relayNode` = last byte of the node that transmitted it to the gateway (the sender itself on
 *   direct copies), on firmware ≥ 2.6; `Data.bitfield` (OK-to-MQTT) on firmware ≥ 2.5;
 * - traceroutes: each gateway appends itself and its SNR (dB × 4) and re-encrypts, so copies differ;
 * - PKI direct messages on `<root>/2/e/PKI/<gateway>` with random ciphertext and `pkiEncrypted`,
 *   never published by gateways with MQTT encryption off;
 * - map reports on `<root>/2/map/`: plaintext, id 0, position truncated to 12–15 bits and centred;
 * - positions: 32 bits for some nodes, 13–16 for most, truncated and centred the same way.
 *
 * Nodes live around the San Francisco Bay whatever the root. The simulation never reads the real
 * clock or `Math.random`.
 *
 * @example
 * const sim = createMeshSimulator({ seed: 7, nodes: 100, gateways: 8 })
 * for (const message of sim.take(1000)) client.publish(message.topic, message.payload)
 * console.log(sim.stats()) // { published: 1005, packets: 338, byPort: { POSITION_APP: 332, … } }
 *
 * @example
 * // Decode what it produces
 * const codec = createCodec({ keys: sim.channels })
 * const [first] = sim.next()
 * codec.decode(first) // { ok: true, value: { fromId: '!…', app: { type: 'position', … } } }
 */
export function createMeshSimulator(options: MeshSimulatorOptions = {}): MeshSimulator {
  const seed = options.seed ?? 1
  const nodeCount = options.nodes ?? 50
  const gatewayCount = options.gateways ?? Math.min(5, nodeCount)
  const root = (options.root ?? 'msh/US').replace(/\/+$/, '')
  const channelInputs: readonly ChannelKeyInput[] = options.channels ?? [
    { name: DEFAULT_CHANNEL_NAME, psk: 'AQ==' },
  ]
  const meanCopies = options.meanCopies ?? Math.min(3, gatewayCount)
  const startTime = options.startTime ?? DEFAULT_START
  const virtualRate = options.virtualRate ?? 10
  const plaintextShare = options.plaintextShare ?? 0.05
  const pkiShare = options.pkiShare ?? 0.02
  const mapInterval = options.mapReportIntervalSecs ?? 3600
  const mix: Required<MeshSimulatorMix> = { ...DEFAULT_MIX }
  for (const k of MIX_KINDS) {
    const w = options.mix?.[k]
    if (w !== undefined) mix[k] = w
  }

  check(
    Number.isInteger(nodeCount) && nodeCount >= 1,
    `nodes must be an integer ≥ 1, got ${nodeCount}`,
  )
  check(
    Number.isInteger(gatewayCount) && gatewayCount >= 1 && gatewayCount <= nodeCount,
    `gateways must be an integer from 1 to nodes (${nodeCount}), got ${gatewayCount}`,
  )
  check(
    meanCopies >= 1 && meanCopies <= gatewayCount,
    `meanCopies must be from 1 to gateways (${gatewayCount}), got ${meanCopies}`,
  )
  check(Number.isFinite(startTime), `startTime must be Unix milliseconds, got ${startTime}`)
  check(
    virtualRate > 0 && Number.isFinite(virtualRate),
    `virtualRate must be > 0, got ${virtualRate}`,
  )
  check(plaintextShare >= 0 && plaintextShare <= 1, `plaintextShare must be from 0 to 1`)
  check(pkiShare >= 0 && pkiShare <= 1, `pkiShare must be from 0 to 1`)
  check(mapInterval >= 0 && Number.isFinite(mapInterval), `mapReportIntervalSecs must be ≥ 0`)
  check(
    root.length > 0 && !/[#+]/.test(root) && !root.startsWith('/'),
    `root must be a topic prefix like msh/US (no wildcards, no leading slash), got "${root}"`,
  )
  check(channelInputs.length > 0, 'channels must not be empty')
  for (const ch of channelInputs) {
    check(
      ch.name.length > 0 && !/[/#+]/.test(ch.name) && ch.name !== 'PKI',
      `channel name "${ch.name}" cannot be used in a topic`,
    )
  }
  check(
    MIX_KINDS.every((k) => mix[k] >= 0 && Number.isFinite(mix[k])),
    'mix weights must be finite numbers ≥ 0',
  )
  check(
    MIX_KINDS.some((k) => mix[k] > 0),
    'at least one mix weight must be > 0',
  )

  const rng: Prng = createPrng(seed)
  const channels: ChannelState[] = channelInputs.map((input, index) => ({
    input,
    key: createChannelKey(input),
    index,
  }))
  const regionSegment = root.split('/')[1] ?? ''
  const region = REGIONS.has(regionSegment) ? regionSegment : 'US'

  // --- nodes ---------------------------------------------------------------------------------
  const states: NodeState[] = []
  const usedNums = new Set<number>()
  const channelWeights = channels.map((_, i) => (i === 0 ? 3 : 1))
  const plaintextGateways =
    Math.floor(gatewayCount * plaintextShare) +
    (rng.chance((gatewayCount * plaintextShare) % 1) ? 1 : 0)
  for (let i = 0; i < nodeCount; i++) {
    let num = 0
    do num = rng.uint32()
    while (num < 0x01000000 || num === BROADCAST_NUM || usedNums.has(num))
    usedNums.add(num)
    const id = nodeIdFromNum(num)
    const isGateway = i < gatewayCount
    const site = isGateway && i < HILLS.length ? (HILLS[i] as Site) : rng.pick(TOWNS)
    const spreadKm = isGateway ? (i < HILLS.length ? 0.3 : 3) : 4
    const lat = site.lat + (rng.normal() * spreadKm) / 110.57
    const lon = site.lon + (rng.normal() * spreadKm) / 88.2
    const fw: Firmware = isGateway
      ? 'modern'
      : rng.chance(0.05)
        ? 'old'
        : rng.chance(0.16)
          ? 'v25'
          : 'modern'
    const role = isGateway
      ? rng.chance(0.3)
        ? 'ROUTER'
        : 'CLIENT'
      : ((['CLIENT', 'CLIENT_MUTE', 'TRACKER', 'ROUTER'] as const)[
          rng.weighted([70, 15, 10, 5])
        ] as string)
    const hwModel =
      role === 'TRACKER' && rng.chance(0.6)
        ? 'TRACKER_T1000_E'
        : isGateway
          ? (GATEWAY_MODELS[rng.weighted(GATEWAY_MODEL_WEIGHTS)] as string)
          : (NODE_MODELS[rng.weighted(NODE_MODEL_WEIGHTS)] as string)
    const names = nodeNames(rng, id.slice(-4))
    const precisionBits = rng.chance(role === 'TRACKER' ? 0.5 : 0.2)
      ? 32
      : rng.pick([13, 14, 14, 15, 16])
    const hopStart = fw === 'old' ? 0 : rng.chance(0.15) ? 7 : 3
    const firmwareVersion = rng.pick(
      fw === 'old' ? OLD_FIRMWARE : fw === 'v25' ? V25_FIRMWARE : MODERN_FIRMWARE,
    )
    const publicKey = fw === 'old' ? undefined : rng.bytes(32)
    const altitude = isGateway
      ? rng.intBetween(150, 1200)
      : Math.max(0, Math.round(30 + rng.normal() * 40))
    const environmentSensor = rng.chance(isGateway ? 0.4 : 0.2)
    const channel = channels[isGateway ? 0 : rng.weighted(channelWeights)] as ChannelState
    const okToMqtt = fw === 'old' || !rng.chance(0.03)
    const neighborInfo = fw !== 'old' && rng.chance(isGateway ? 0.5 : 0.25)
    let mqttEncryption: boolean | undefined
    let mapPrecision: number | undefined
    if (isGateway) {
      mqttEncryption = i >= plaintextGateways
      mapPrecision = [12, 13, 14, 14, 14, 15][rng.int(6)] as number
    }
    const info: SimNode = Object.freeze({
      num,
      id,
      longName: names.longName,
      shortName: names.shortName,
      hwModel,
      role,
      isGateway,
      channel: channel.input.name,
      precisionBits,
      hopStart,
      firmwareVersion,
      ...(publicKey ? { publicKey } : {}),
      latitudeI: toI(lat),
      longitudeI: toI(lon),
      altitude,
      environmentSensor,
      ...(mqttEncryption !== undefined ? { mqttEncryption } : {}),
      ...(mapPrecision !== undefined ? { mapReportPrecisionBits: mapPrecision } : {}),
    })
    const state: NodeState = {
      index: i,
      num,
      id,
      info,
      firmware: fw,
      channel,
      okToMqtt,
      neighborInfo,
      homeLat: lat,
      homeLon: lon,
      lat,
      lon,
      counter: rng.int(ID_COUNTER_MASK + 1),
    }
    if (isGateway) {
      state.gateway = {
        node: state,
        encrypt: mqttEncryption as boolean,
        mapPrecision: mapPrecision as number,
        nextMapAt:
          mapInterval > 0
            ? startTime +
              1000 *
                (20 * i < mapInterval ? 5 + 20 * i + rng.next() * 15 : rng.next() * mapInterval)
            : Number.POSITIVE_INFINITY,
      }
    }
    states.push(state)
  }
  const gateways = states.filter((s) => s.gateway).map((s) => s.gateway as GatewayState)
  const encryptingGateways = gateways.filter((g) => g.encrypt)
  const publicNodes: readonly SimNode[] = Object.freeze(states.map((s) => s.info))

  // Sender pools.
  const positionWeights = states.map((s) =>
    s.info.role === 'TRACKER' ? 4 : s.info.role === 'ROUTER' ? 0.5 : 1,
  )
  const texters = states.filter((s) => s.info.role === 'CLIENT' || s.info.role === 'CLIENT_MUTE')
  const sensors = states.filter((s) => s.info.environmentSensor)
  const neighborReporters = states.filter((s) => s.neighborInfo)
  const pkiCapable = states.filter((s) => s.firmware !== 'old')

  // --- copies ---------------------------------------------------------------------------------
  const lambda = solveLambda(meanCopies, gatewayCount)

  /** The `NEAR` nodes closest to a node's home (a linear scan: no sorting of the whole mesh). */
  function near(n: NodeState): readonly NodeState[] {
    if (!n.near) {
      const best: { o: NodeState; d: number }[] = []
      for (const o of states) {
        if (o === n) continue
        const d = km(n.homeLat, n.homeLon, o.homeLat, o.homeLon)
        if (best.length === NEAR && d >= (best[NEAR - 1] as { d: number }).d) continue
        let at = best.length
        while (at > 0 && (best[at - 1] as { d: number }).d > d) at--
        best.splice(at, 0, { o, d })
        if (best.length > NEAR) best.pop()
      }
      n.near = best.map((x) => x.o)
    }
    return n.near
  }

  function radio(distanceKm: number): { snr: number; rssi: number } {
    const rssi = clamp(
      Math.round(-50 - 25 * Math.log10(1 + distanceKm * 10) + 6 * rng.normal()),
      -130,
      -40,
    )
    const snr = clamp(Math.round(((rssi + 105) / 3 + 2 * rng.normal()) * 4) / 4, -20, 12)
    // `|| 0`: no negative zero (protobuf would carry it as a non-default float).
    return { snr: snr || 0, rssi }
  }

  function planCopies(sender: NodeState, eligible: readonly GatewayState[]): CopyPlan[] {
    const count = Math.min(1 + rng.poisson(lambda), gatewayCount, eligible.length)
    const plans: CopyPlan[] = []
    const maxHops = sender.info.hopStart || 3
    let remaining = count
    if (sender.gateway && eligible.includes(sender.gateway)) {
      plans.push({
        gateway: sender.gateway,
        self: true,
        hops: 0,
        relayers: [],
        relayerSnr4: [],
        snr: 0,
        rssi: 0,
        delayMs: rng.between(2, 25),
      })
      remaining--
    }
    const candidates = eligible.filter((g) => g.node !== sender)
    const weights = candidates.map((g) => 1 / (1 + (nodeKm(sender, g.node) / 12) ** 2))
    while (remaining > 0 && candidates.length > 0) {
      const k = rng.weighted(weights)
      const gateway = candidates[k] as GatewayState
      candidates.splice(k, 1)
      weights.splice(k, 1)
      remaining--
      const d = nodeKm(sender, gateway.node)
      let hops = Math.min(maxHops, Math.floor(d / 20 + rng.next() * 1.2))
      const relayers: NodeState[] = []
      const relayerSnr4: number[] = []
      if (hops > 0) {
        const exclude = new Set([sender, gateway.node])
        for (let h = 0; h < hops; h++) {
          const pool = (h === hops - 1 ? near(gateway.node) : near(sender)).filter(
            (o) => !exclude.has(o),
          )
          if (pool.length === 0) break
          const r = rng.pick(pool)
          exclude.add(r)
          relayers.push(r)
          relayerSnr4.push(Math.round(radio(rng.between(0.5, 12)).snr * 4) || 0)
        }
        hops = relayers.length
      }
      const last = relayers[relayers.length - 1]
      const { snr, rssi } = radio(last ? nodeKm(last, gateway.node) : d)
      plans.push({
        gateway,
        self: false,
        hops,
        relayers,
        relayerSnr4,
        snr,
        rssi,
        delayMs: 30 + rng.next() * 150 + hops * (50 + rng.next() * 250),
      })
    }
    return plans.sort((a, b) => a.delayMs - b.delayMs)
  }

  // --- clock, ids, stats ------------------------------------------------------------------------
  let nextPacketAt = startTime
  let lastReceivedAt = startTime
  let published = 0
  let packets = 0
  const byPort: Record<string, number> = {}
  const recentTexts: number[][] = channels.map(() => [])
  const pendingDms: PendingRequest[] = []
  const pendingTraceroutes: PendingRequest[] = []

  function nextId(n: NodeState): number {
    n.counter = (n.counter + 1) & ID_COUNTER_MASK
    for (;;) {
      const id = ((rng.uint32() & ~ID_COUNTER_MASK) | n.counter) >>> 0
      if (id !== 0) return id
    }
  }

  function bitfield(n: NodeState, wantResponse = false): DataFields {
    if (n.firmware === 'old') return wantResponse ? { wantResponse: true } : {}
    const b = (n.okToMqtt ? 1 : 0) | (wantResponse ? 2 : 0)
    return wantResponse ? { wantResponse: true, bitfield: b } : { bitfield: b }
  }

  /** A random node of `pool` other than `n`, or `undefined` when there is none. */
  function pickOther(n: NodeState, pool: readonly NodeState[] = states): NodeState | undefined {
    if (pool.length === 0 || (pool.length === 1 && pool[0] === n)) return undefined
    for (;;) {
      const o = rng.pick(pool)
      if (o !== n) return o
    }
  }

  // --- payloads ---------------------------------------------------------------------------------
  function move(n: NodeState): void {
    const tracker = n.info.role === 'TRACKER'
    const stepKm = tracker ? 0.4 : 0.005
    n.lat += (rng.normal() * stepKm) / 110.57 + (n.homeLat - n.lat) * (tracker ? 0.05 : 0.5)
    n.lon += (rng.normal() * stepKm) / 88.2 + (n.homeLon - n.lon) * (tracker ? 0.05 : 0.5)
  }

  function positionPacket(sender: NodeState, t: number): Planned {
    move(sender)
    const bits = sender.info.precisionBits
    const payload: Record<string, unknown> = {
      latitudeI: truncateCoordinate(toI(sender.lat), bits),
      longitudeI: truncateCoordinate(toI(sender.lon), bits),
      altitude: sender.info.altitude + Math.round(rng.normal() * 3),
      time: Math.floor(t / 1000),
      locationSource: 'LOC_INTERNAL',
      precisionBits: bits,
    }
    if (bits === 32) {
      payload.satsInView = rng.intBetween(4, 14)
      if (sender.info.role === 'TRACKER') {
        payload.groundSpeed = rng.intBetween(0, 25)
        payload.groundTrack = rng.int(360) * 100_000
      }
    }
    return broadcast('position', sender, encodeAppPayload(PortNum.POSITION_APP, payload))
  }

  function nodeinfoPacket(sender: NodeState): Planned {
    const i = sender.info
    const user: Record<string, unknown> = {
      id: i.id,
      longName: i.longName,
      shortName: i.shortName,
      hwModel: i.hwModel,
      role: i.role,
    }
    if (i.publicKey) user.publicKey = bytesToBase64(i.publicKey)
    return broadcast('nodeinfo', sender, encodeAppPayload(PortNum.NODEINFO_APP, user))
  }

  function deviceTelemetryPacket(sender: NodeState, t: number): Planned {
    const powered = sender.gateway !== undefined || rng.chance(0.25)
    const battery = powered ? 101 : clamp(Math.round(60 + rng.normal() * 25), 1, 100)
    const voltage = powered ? (rng.chance(0.5) ? 0 : 4.2) : 3.3 + (battery / 100) * 0.9
    const uptime = Math.floor((t - startTime) / 1000) + 3600 * (1 + sender.index)
    return broadcast(
      'deviceTelemetry',
      sender,
      encodeAppPayload(PortNum.TELEMETRY_APP, {
        time: Math.floor(t / 1000),
        deviceMetrics: {
          batteryLevel: battery,
          voltage: Math.round(voltage * 1000) / 1000,
          channelUtilization: Math.round(rng.between(2, 30) * 100) / 100,
          airUtilTx: Math.round(rng.between(0.1, 5) * 100) / 100,
          uptimeSeconds: uptime,
        },
      }),
    )
  }

  function environmentTelemetryPacket(sender: NodeState, t: number): Planned {
    const hours = ((t / 3_600_000) % 24) - 8 // Pacific time, roughly
    const temperature = 14 + 5 * Math.sin(((hours - 9) / 24) * 2 * Math.PI) + rng.normal()
    return broadcast(
      'environmentTelemetry',
      sender,
      encodeAppPayload(PortNum.TELEMETRY_APP, {
        time: Math.floor(t / 1000),
        environmentMetrics: {
          temperature: Math.round(temperature * 100) / 100,
          relativeHumidity: Math.round(clamp(70 + rng.normal() * 12, 10, 100) * 100) / 100,
          barometricPressure: Math.round((1013 + rng.normal() * 4) * 100) / 100,
        },
      }),
    )
  }

  function textPacket(sender: NodeState): Planned {
    const recent = recentTexts[sender.channel.index] as number[]
    const r = rng.next()
    let text: string
    const extra: DataFields = {}
    if (recent.length > 0 && r < 0.12) {
      const reacted = reaction(rng)
      text = reacted.text
      extra.replyId = rng.pick(recent)
      extra.emoji = reacted.codePoint
    } else if (recent.length > 0 && r < 0.35) {
      text = replyText(rng)
      extra.replyId = rng.pick(recent)
    } else {
      text = openerText(rng)
    }
    const planned = broadcast(
      'text',
      sender,
      encodeAppPayload(PortNum.TEXT_MESSAGE_APP, text),
      extra,
    )
    recent.push(planned.id)
    if (recent.length > 20) recent.shift()
    return planned
  }

  function snr4(plan: CopyPlan): number {
    return Math.round(plan.snr * 4) || 0
  }

  function traceroutePacket(sender: NodeState): Planned | undefined {
    const reply = pendingTraceroutes.length > 0 && rng.chance(0.4)
    if (reply) {
      const req = pendingTraceroutes.shift() as PendingRequest
      // The destination answers: the forward route is complete, the way back grows per hop.
      const responder = req.to
      const forward = near(req.from)
        .filter((o) => o !== responder)
        .slice(0, rng.int(3))
      const snrTowards = [...forward, responder].map(
        () => Math.round(radio(rng.between(1, 15)).snr * 4) || 0,
      )
      const route = forward.map((o) => o.num)
      return {
        type: 'traceroute',
        sender: responder,
        to: req.from.num,
        id: nextId(responder),
        portnum: PortNum.TRACEROUTE_APP,
        channel: responder.channel,
        wantAck: false,
        fields: { ...bitfield(responder), requestId: req.id },
        payload: (plan) => {
          const routeBack = plan.relayers.map((o) => o.num)
          const snrBack = [...plan.relayerSnr4]
          if (!plan.self && plan.gateway.node !== req.from) routeBack.push(plan.gateway.node.num)
          if (!plan.self) snrBack.push(snr4(plan))
          return encodeAppPayload(PortNum.TRACEROUTE_APP, {
            route,
            snrTowards,
            routeBack,
            snrBack,
          })
        },
      }
    }
    const target = pickOther(sender)
    if (!target) return undefined
    const id = nextId(sender)
    pendingTraceroutes.push({ from: sender, to: target, id })
    if (pendingTraceroutes.length > 50) pendingTraceroutes.shift()
    return {
      type: 'traceroute',
      sender,
      to: target.num,
      id,
      portnum: PortNum.TRACEROUTE_APP,
      channel: sender.channel,
      wantAck: false,
      fields: bitfield(sender, true),
      payload: (plan) => {
        const route = plan.relayers.map((o) => o.num)
        const snrTowards = [...plan.relayerSnr4]
        // A gateway that relays it adds itself and the SNR it heard; the destination adds only the SNR.
        if (!plan.self && plan.gateway.node !== target) route.push(plan.gateway.node.num)
        if (!plan.self) snrTowards.push(snr4(plan))
        return encodeAppPayload(PortNum.TRACEROUTE_APP, { route, snrTowards })
      },
    }
  }

  function neighborinfoPacket(sender: NodeState, t: number): Planned {
    const neighbors = near(sender)
      .slice(0, rng.intBetween(1, 6))
      .map((o) => ({
        nodeId: o.num,
        snr: radio(nodeKm(sender, o)).snr,
        lastRxTime: Math.floor(t / 1000) - rng.int(900),
        nodeBroadcastIntervalSecs: 14_400,
      }))
    return broadcast(
      'neighborinfo',
      sender,
      encodeAppPayload(PortNum.NEIGHBORINFO_APP, {
        nodeId: sender.num,
        lastSentById: sender.num,
        nodeBroadcastIntervalSecs: 14_400,
        neighbors,
      }),
    )
  }

  function routingPacket(): Planned | undefined {
    let dm = pendingDms.shift()
    if (!dm) {
      // The ACK of a direct message that no gateway heard.
      const from = rng.pick(states)
      const to = pickOther(from)
      if (!to) return undefined
      dm = { from, to, id: nextId(from) }
    }
    const acker = dm.to
    return {
      type: 'routing',
      sender: acker,
      to: dm.from.num,
      id: nextId(acker),
      portnum: PortNum.ROUTING_APP,
      channel: acker.channel,
      wantAck: false,
      fields: { ...bitfield(acker), requestId: dm.id },
      payload: encodeAppPayload(PortNum.ROUTING_APP, { errorReason: 'NONE' }),
    }
  }

  function pkiPacket(): Planned | undefined {
    if (pkiCapable.length < 2 || encryptingGateways.length === 0) return undefined
    const sender = rng.pick(pkiCapable)
    const to = pickOther(sender, pkiCapable) as NodeState
    const id = nextId(sender)
    const data = encodeData(PortNum.TEXT_MESSAGE_APP, dmText(rng), bitfield(sender))
    pendingDms.push({ from: sender, to, id })
    if (pendingDms.length > 50) pendingDms.shift()
    return {
      type: 'pki',
      sender,
      to: to.num,
      id,
      portnum: PortNum.TEXT_MESSAGE_APP,
      channel: sender.channel,
      wantAck: true,
      fields: {},
      payload: new Uint8Array(0),
      // ciphertext ‖ 8-byte tag ‖ 4-byte extra nonce
      ciphertext: rng.bytes(data.length + 12),
    }
  }

  function broadcast(
    type: SimPacketType,
    sender: NodeState,
    payload: Uint8Array,
    extra: DataFields = {},
  ): Planned {
    return {
      type,
      sender,
      to: BROADCAST_NUM,
      id: nextId(sender),
      portnum: PORTS[type],
      channel: sender.channel,
      wantAck: false,
      fields: { ...bitfield(sender), ...extra },
      payload,
    }
  }

  function plan(t: number): Planned | 'mapreport' | undefined {
    if (pkiShare > 0 && rng.chance(pkiShare)) {
      const p = pkiPacket()
      if (p) return p
    }
    const kind = MIX_KINDS[rng.weighted(MIX_KINDS.map((k) => mix[k]))] as MixKind
    switch (kind) {
      case 'position':
        return positionPacket(states[rng.weighted(positionWeights)] as NodeState, t)
      case 'nodeinfo':
        return nodeinfoPacket(rng.pick(states))
      case 'deviceTelemetry':
        return deviceTelemetryPacket(rng.pick(states), t)
      case 'environmentTelemetry':
        return sensors.length > 0
          ? environmentTelemetryPacket(rng.pick(sensors), t)
          : deviceTelemetryPacket(rng.pick(states), t)
      case 'text':
        return textPacket(rng.pick(texters.length > 0 ? texters : states))
      case 'traceroute':
        return traceroutePacket(rng.pick(states))
      case 'neighborinfo':
        return neighborinfoPacket(
          rng.pick(neighborReporters.length > 0 ? neighborReporters : states),
          t,
        )
      case 'routing':
        return routingPacket()
      case 'mapreport':
        return 'mapreport'
    }
  }

  // --- envelopes --------------------------------------------------------------------------------
  function count(portKey: string, n: number): void {
    byPort[portKey] = (byPort[portKey] ?? 0) + n
  }

  function arrival(t: number, delayMs: number): number {
    const at = Math.max(lastReceivedAt, Math.round(t + delayMs))
    lastReceivedAt = at
    return at
  }

  function emit(p: Planned, t: number): SimulatedMessage[] {
    const pki = p.type === 'pki'
    const eligible = pki ? encryptingGateways : gateways
    const plans = planCopies(p.sender, eligible)
    const hopBase = p.sender.info.hopStart || 3
    const out: SimulatedMessage[] = []
    for (const c of plans) {
      const receivedAt = arrival(t, c.delayMs)
      const gw = c.gateway
      const last = c.relayers[c.relayers.length - 1]
      const relayer = c.self || !last ? p.sender : last
      const relayNode = relayer.firmware === 'modern' ? relayer.num & 0xff : 0
      const header = {
        from: p.sender.num,
        to: p.to,
        id: p.id,
        hopStart: p.sender.info.hopStart,
        hopLimit: hopBase - c.hops,
        wantAck: p.wantAck,
        rxTime: Math.floor(receivedAt / 1000),
        rxSnr: c.snr,
        rxRssi: c.rssi,
        relayNode,
      }
      let payload: Uint8Array
      let topic: string
      if (pki) {
        topic = `${root}/2/e/PKI/${gw.node.id}`
        payload = toBinary(
          Mqtt.ServiceEnvelopeSchema,
          create(Mqtt.ServiceEnvelopeSchema, {
            packet: create(Mesh.MeshPacketSchema, {
              ...header,
              channel: 0,
              pkiEncrypted: true,
              payloadVariant: { case: 'encrypted', value: p.ciphertext as Uint8Array },
            }),
            channelId: 'PKI',
            gatewayId: gw.node.id,
          }),
        )
      } else {
        topic = `${root}/2/e/${p.channel.key.name}/${gw.node.id}`
        payload = encodeEnvelope({
          ...header,
          ...p.fields,
          portnum: p.portnum,
          payload: typeof p.payload === 'function' ? p.payload(c) : p.payload,
          channel: p.channel.key,
          encrypt: gw.encrypt,
          ...(gw.encrypt ? {} : { channelField: p.channel.index }),
          gatewayId: gw.node.id,
        })
      }
      out.push({
        topic,
        payload,
        receivedAt,
        packetKey: `${p.sender.num}:${p.id}`,
        copy: out.length,
        portnum: p.portnum,
        encrypted: pki || gw.encrypt,
        pki,
        from: p.sender.num,
        id: p.id,
        gatewayId: gw.node.id,
        packetType: p.type,
      })
    }
    if (out.length > 0)
      count(pki ? 'PKI' : (portnumName(p.portnum) ?? String(p.portnum)), out.length)
    return out
  }

  function localNodes(n: NodeState): number {
    if (n.localNodes === undefined) {
      let c = 0
      for (const o of states) {
        if (o !== n && km(n.homeLat, n.homeLon, o.homeLat, o.homeLon) < 25) c++
      }
      n.localNodes = c
    }
    return n.localNodes
  }

  function mapReport(gw: GatewayState, t: number): SimulatedMessage[] {
    const n = gw.node
    const i = n.info
    const bits = gw.mapPrecision
    const payload = encodeAppPayload(PortNum.MAP_REPORT_APP, {
      longName: truncateUtf8(i.longName, 24),
      shortName: i.shortName,
      role: i.role,
      hwModel: i.hwModel,
      firmwareVersion: i.firmwareVersion,
      region,
      modemPreset: 'LONG_FAST',
      hasDefaultChannel: isDefaultChannel(n.channel.key),
      latitudeI: truncateCoordinate(toI(n.lat), bits),
      longitudeI: truncateCoordinate(toI(n.lon), bits),
      altitude: i.altitude,
      positionPrecision: bits,
      numOnlineLocalNodes: localNodes(n),
      hasOptedReportLocation: true,
    })
    const receivedAt = arrival(t, rng.between(5, 60))
    const bytes = encodeEnvelope({
      from: n.num,
      id: 0,
      portnum: PortNum.MAP_REPORT_APP,
      payload,
      channel: n.channel.key,
      encrypt: false,
      channelField: 0,
      gatewayId: n.id,
    })
    count('MAP_REPORT_APP', 1)
    return [
      {
        topic: `${root}/2/map/`,
        payload: bytes,
        receivedAt,
        packetKey: `${n.num}:0:${Math.floor(receivedAt / 1000)}`,
        copy: 0,
        portnum: PortNum.MAP_REPORT_APP,
        encrypted: false,
        pki: false,
        from: n.num,
        id: 0,
        gatewayId: n.id,
        packetType: 'mapreport',
      },
    ]
  }

  function next(): SimulatedMessage[] {
    for (;;) {
      let due: GatewayState | undefined
      for (const g of gateways) if (!due || g.nextMapAt < due.nextMapAt) due = g
      let out: SimulatedMessage[]
      if (due && due.nextMapAt <= nextPacketAt) {
        const t = due.nextMapAt
        due.nextMapAt = t + 1000 * (mapInterval + rng.between(-30, 30))
        out = mapReport(due, t)
      } else {
        const t = nextPacketAt
        nextPacketAt += rng.exponential(virtualRate) * 1000
        const p = plan(t)
        if (p === 'mapreport') out = mapReport(rng.pick(gateways), t)
        else out = p ? emit(p, t) : []
      }
      if (out.length > 0) {
        packets++
        published += out.length
        return out
      }
    }
  }

  return {
    nodes: publicNodes,
    channels: Object.freeze(channels.map((c) => c.input)),
    next,
    take(envelopes) {
      const out: SimulatedMessage[] = []
      while (out.length < envelopes) for (const m of next()) out.push(m)
      return out
    },
    *[Symbol.iterator]() {
      for (;;) yield* next()
    },
    stats: () => ({ published, packets, byPort: { ...byPort } }),
  }
}
