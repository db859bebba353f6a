import { type ChannelKey, createChannelKey, DEFAULT_KEY, encodeEnvelope, PortNum } from './deps.js'

/**
 * Where a message comes from:
 * - `default-key`: encrypted with the default LongFast key (the codec opens it);
 * - `plaintext`: a `decoded` envelope from a gateway with MQTT encryption off;
 * - `map-report`: a plaintext map report on `<root>/2/map/`;
 * - `private-key`: encrypted with a channel key the codec does not have;
 * - `pki`: a PKI direct message (random-looking ciphertext).
 */
export type Category = 'default-key' | 'plaintext' | 'map-report' | 'private-key' | 'pki'

export const CATEGORIES: readonly Category[] = [
  'default-key',
  'plaintext',
  'map-report',
  'private-key',
  'pki',
]

/** One MQTT message of the mix. */
export interface MixMessage {
  topic: string
  payload: Uint8Array
  category: Category
  /** What the payload is (`position`, `nodeinfo`, `telemetry-device`, …). */
  app: string
}

export interface CodecMix {
  messages: MixMessage[]
  byCategory: Map<Category, number>
  byApp: Map<string, number>
  avgBytes: number
  senders: number
  gateways: number
  /** The channel the `private-key` messages use (the codec is not given it). */
  privateChannel: ChannelKey
}

/** mulberry32: a small, fast, seedable PRNG (deterministic mixes across runs). */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Node {
  num: number
  id: string
  longName: string
  shortName: string
  hwModel: string
  role: string | undefined
  publicKey: string
  lat: number
  lon: number
  alt: number
  root: string
}

const HW_MODELS: [string, number][] = [
  ['HELTEC_V3', 30],
  ['RAK4631', 20],
  ['T_ECHO', 8],
  ['TBEAM', 10],
  ['HELTEC_WIRELESS_TRACKER', 6],
  ['STATION_G2', 3],
  ['SEEED_XIAO_S3', 4],
  ['TRACKER_T1000_E', 6],
  ['T_DECK', 4],
  ['HELTEC_WSL_V3', 2],
  ['PORTDUINO', 2],
]
const ROLES: [string | undefined, number][] = [
  [undefined, 80], // CLIENT, the zero value: omitted
  ['CLIENT_MUTE', 8],
  ['ROUTER', 5],
  ['ROUTER_LATE', 3],
  ['TRACKER', 2],
  ['CLIENT_BASE', 2],
]
const ROOTS: [string, number][] = [
  ['msh/US', 70],
  ['msh/US/CA', 12],
  ['msh/US/TX', 6],
  ['msh/US/NY/nyc', 6],
  ['msh/US/bayarea', 6],
]
const NAME_WORDS = [
  'Ridge',
  'Base',
  'Mobile',
  'Relay',
  'Hilltop',
  'Van',
  'Attic',
  'Solar',
  'Repeater',
  'Pocket',
  'Tower',
  'Garden',
  'Camp',
  'Truck',
  'Kitchen',
  'Node',
]
const NAME_PREFIXES = ['', '', '', 'KD9', 'W6', 'N0', '🌲 ', '📡 ', 'Café ', 'Zürich ']
const TEXTS = [
  'Hello mesh!',
  'Anyone copy? Testing from the ridge',
  'ack',
  'Good morning everyone ☀️',
  'Net check-in tonight at 8pm on LongFast',
  'Signal report please',
  'Heard you 3 hops away, SNR -7',
  'Is the repeater on the water tower back up?',
  'Thanks!',
  '👍',
  'Wie ist der Empfang bei euch?',
  'Driving north on I-5, will check in later',
  'Power is out here, running on battery 🔋',
  'Test 1 2 3',
  'Can anyone relay to the valley?',
]

export interface MixOptions {
  count?: number
  seed?: number
}

/**
 * Builds a realistic, deterministic mix of Meshtastic MQTT messages with meshtap's encoder: about
 * 75 % default-key traffic (positions, node infos, telemetry, text, ACKs, a few traceroutes and
 * neighbour infos), 10 % plaintext envelopes, 5 % map reports, 10 % undecryptable (a private
 * channel, and a few PKI direct messages). ~2 000 senders heard through ~100 gateways.
 */
export function buildCodecMix(options: MixOptions = {}): CodecMix {
  const count = options.count ?? 20_000
  const rand = prng(options.seed ?? 0x6d657368)
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1))
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!
  const weighted = <T>(pairs: readonly [T, number][]): T => {
    let total = 0
    for (const [, w] of pairs) total += w
    let r = rand() * total
    for (const [v, w] of pairs) {
      r -= w
      if (r < 0) return v
    }
    return pairs[pairs.length - 1]![0]
  }
  const bytes = (n: number) => {
    const b = new Uint8Array(n)
    for (let i = 0; i < n; i++) b[i] = int(0, 255)
    return b
  }
  const base64 = (b: Uint8Array) => Buffer.from(b).toString('base64')
  const u32 = () => int(1, 0xfffffffe)

  // Nodes: ~2 000 senders; the first 100 are also gateways.
  const nodes: Node[] = []
  const seen = new Set<number>()
  while (nodes.length < 2000) {
    const num = int(0x10000000, 0xfffffffe)
    if (seen.has(num)) continue
    seen.add(num)
    const id = `!${num.toString(16).padStart(8, '0')}`
    const word = pick(NAME_WORDS)
    nodes.push({
      num,
      id,
      longName: `${pick(NAME_PREFIXES)}${word} ${id.slice(5)}`,
      shortName: rand() < 0.1 ? pick(['🐸', '🚐', '⛰️', '📻']) : id.slice(5).toUpperCase(),
      hwModel: weighted(HW_MODELS),
      role: weighted(ROLES),
      publicKey: base64(bytes(32)),
      lat: Math.round((25 + rand() * 23) * 1e7),
      lon: Math.round((-123 + rand() * 53) * 1e7),
      alt: int(-10, 2500),
      root: weighted(ROOTS),
    })
  }
  const gateways = nodes.slice(0, 100)

  const privateChannel = (() => {
    // A private channel key whose hash differs from LongFast's (8) and whose key XOR differs from
    // the default key's, so neither chain can pick the default key for it by hash.
    const defaultXor = DEFAULT_KEY.reduce((h, b) => h ^ b, 0)
    for (;;) {
      const ch = createChannelKey({ name: 'Secret', psk: bytes(16) })
      if (ch.hash !== 8 && ch.hash !== 0 && ch.keyXor !== defaultXor) return ch
    }
  })()
  const pkiChannel = createChannelKey({ name: 'PKI', psk: bytes(32) })

  const T0 = 1_767_225_600 // 2026-01-01T00:00:00Z

  const mask = (v: number, precision: number) =>
    precision >= 32 ? v : ((v & (0xffffffff << (32 - precision))) + (1 << (31 - precision))) | 0

  type App = { portnum: number; payload: Record<string, unknown> | string; app: string }
  type Extra = {
    to?: number
    requestId?: number
    wantResponse?: boolean
    wantAck?: boolean
    priority?: number
  }

  function appFor(node: Node, time: number): App & Extra {
    const kind = weighted<string>([
      ['position', 34],
      ['nodeinfo', 14],
      ['telemetry-device', 20],
      ['telemetry-environment', 8],
      ['text', 8],
      ['routing', 10],
      ['traceroute', 3],
      ['neighborinfo', 2],
      ['waypoint', 1],
    ])
    switch (kind) {
      case 'position': {
        const precision = weighted([
          [13, 25],
          [14, 10],
          [15, 10],
          [16, 25],
          [32, 30],
        ])
        const lat = node.lat + int(-20_000, 20_000)
        const lon = node.lon + int(-20_000, 20_000)
        const payload: Record<string, unknown> = {
          latitudeI: mask(lat, precision),
          longitudeI: mask(lon, precision),
          altitude: node.alt + int(-5, 5),
          time,
          locationSource: 'LOC_INTERNAL',
          precisionBits: precision,
        }
        if (precision === 32) {
          payload.PDOP = int(80, 400)
          payload.groundSpeed = int(0, 30)
          payload.groundTrack = int(0, 359) * 100_000
          payload.satsInView = int(4, 16)
        }
        return { portnum: PortNum.POSITION_APP, payload, app: kind }
      }
      case 'nodeinfo':
        return {
          portnum: PortNum.NODEINFO_APP,
          app: kind,
          payload: {
            id: node.id,
            longName: node.longName,
            shortName: node.shortName,
            hwModel: node.hwModel,
            ...(node.role ? { role: node.role } : {}),
            publicKey: node.publicKey,
          },
        }
      case 'telemetry-device':
        return {
          portnum: PortNum.TELEMETRY_APP,
          app: kind,
          payload: {
            time,
            deviceMetrics: {
              batteryLevel: int(5, 101),
              voltage: int(3300, 4200) / 1000,
              channelUtilization: int(0, 4000) / 100,
              airUtilTx: int(0, 500) / 100,
              uptimeSeconds: int(60, 3_000_000),
            },
          },
        }
      case 'telemetry-environment':
        return {
          portnum: PortNum.TELEMETRY_APP,
          app: kind,
          payload: {
            time,
            environmentMetrics: {
              temperature: int(-150, 400) / 10,
              relativeHumidity: int(100, 990) / 10,
              barometricPressure: int(9600, 10400) / 10,
              ...(rand() < 0.3 ? { gasResistance: int(1000, 90000) / 100 } : {}),
              ...(rand() < 0.2 ? { iaq: int(10, 300) } : {}),
            },
          },
        }
      case 'text': {
        const dm = rand() < 0.15
        return {
          portnum: PortNum.TEXT_MESSAGE_APP,
          app: kind,
          payload: pick(TEXTS),
          ...(dm ? { to: pick(nodes).num, wantAck: true } : {}),
        }
      }
      case 'routing': {
        const reason = weighted([
          ['NONE', 85],
          ['MAX_RETRANSMIT', 8],
          ['NO_RESPONSE', 5],
          ['NO_CHANNEL', 2],
        ])
        return {
          portnum: PortNum.ROUTING_APP,
          app: kind,
          payload: { errorReason: reason },
          to: pick(nodes).num,
          requestId: u32(),
          priority: 120, // ACK
        }
      }
      case 'traceroute': {
        const hops = int(0, 4)
        const route: number[] = []
        const snrTowards: number[] = []
        for (let h = 0; h < hops; h++) {
          route.push(rand() < 0.1 ? 0xffffffff : pick(nodes).num)
          snrTowards.push(rand() < 0.1 ? -128 : int(-80, 40))
        }
        snrTowards.push(int(-80, 40))
        const reply = rand() < 0.5
        const payload: Record<string, unknown> = { route, snrTowards }
        if (reply) {
          payload.routeBack = route.slice().reverse()
          payload.snrBack = snrTowards.map(() => int(-80, 40))
        }
        return {
          portnum: PortNum.TRACEROUTE_APP,
          app: kind,
          payload,
          to: pick(nodes).num,
          ...(reply ? { requestId: u32() } : { wantResponse: true }),
        }
      }
      case 'neighborinfo': {
        const neighbors = []
        for (let k = int(1, 6); k > 0; k--) {
          neighbors.push({ nodeId: pick(nodes).num, snr: int(-80, 48) / 4 })
        }
        return {
          portnum: PortNum.NEIGHBORINFO_APP,
          app: kind,
          payload: {
            nodeId: node.num,
            lastSentById: node.num,
            nodeBroadcastIntervalSecs: 14_400,
            neighbors,
          },
        }
      }
      default:
        return {
          portnum: PortNum.WAYPOINT_APP,
          app: 'waypoint',
          payload: {
            id: u32(),
            latitudeI: node.lat,
            longitudeI: node.lon,
            expire: time + 86_400,
            name: pick(['Trailhead', 'Camp 2', 'Water', 'Meet here']),
            description: 'Bring a radio',
            icon: 0x1f4cd,
          },
        }
    }
  }

  const messages: MixMessage[] = []
  const byCategory = new Map<Category, number>()
  const byApp = new Map<string, number>()
  let totalBytes = 0
  const senders = new Set<number>()
  const usedGateways = new Set<number>()

  for (let i = 0; i < count; i++) {
    const r = rand()
    const category: Category =
      r < 0.75
        ? 'default-key'
        : r < 0.85
          ? 'plaintext'
          : r < 0.9
            ? 'map-report'
            : r < 0.995
              ? 'private-key'
              : 'pki'
    const gw = pick(gateways)
    const rxTime = T0 + Math.floor(i / 20) + int(0, 2)
    const time = rxTime - int(0, 30)
    let topic: string
    let payload: Uint8Array
    let app: string
    if (category === 'map-report') {
      const precision = int(13, 15)
      topic = `${gw.root}/2/map/`
      app = 'mapreport'
      payload = encodeEnvelope({
        from: gw.num,
        id: 0,
        portnum: PortNum.MAP_REPORT_APP,
        encrypt: false,
        payload: {
          longName: gw.longName,
          shortName: gw.shortName,
          ...(gw.role ? { role: gw.role } : {}),
          hwModel: gw.hwModel,
          firmwareVersion: pick(['2.6.11.60ec05e', '2.7.15.567b8ea', '2.5.20.4c97351']),
          region: 'US',
          modemPreset: 'LONG_FAST',
          hasDefaultChannel: true,
          latitudeI: mask(gw.lat, precision),
          longitudeI: mask(gw.lon, precision),
          altitude: gw.alt,
          positionPrecision: precision,
          numOnlineLocalNodes: int(1, 120),
          hasOptedReportLocation: true,
        },
        channelId: 'LongFast',
        gatewayId: gw.id,
      })
      senders.add(gw.num)
    } else {
      // 4 % are the gateway's own packets: no radio metadata, hop limit untouched.
      const self = rand() < 0.04
      const node = self ? gw : pick(nodes)
      const hopStart = weighted([
        [3, 60],
        [4, 8],
        [5, 15],
        [6, 5],
        [7, 12],
      ])
      const hopsAway = self
        ? 0
        : Math.min(
            hopStart,
            weighted([
              [0, 35],
              [1, 30],
              [2, 20],
              [3, 10],
              [4, 5],
            ]),
          )
      const radio = self
        ? {}
        : {
            rxSnr: int(-80, 48) / 4,
            rxRssi: int(-130, -40),
            relayNode: hopsAway === 0 ? node.num & 0xff : int(1, 255),
          }
      const header = {
        from: node.num,
        id: u32(),
        hopStart,
        hopLimit: hopStart - hopsAway,
        rxTime,
        bitfield: 1,
        gatewayId: gw.id,
        ...radio,
      }
      if (category === 'pki') {
        app = 'pki'
        topic = `${gw.root}/2/e/PKI/${gw.id}`
        payload = encodeEnvelope({
          ...header,
          to: pick(nodes).num,
          portnum: PortNum.TEXT_MESSAGE_APP,
          payload: bytes(int(28, 80)),
          channel: pkiChannel,
          channelField: 0,
          channelId: 'PKI',
          pkiEncrypted: true,
          wantAck: true,
        })
      } else {
        const a = appFor(node, time)
        app = a.app
        const channel = category === 'private-key' ? privateChannel : undefined
        topic = `${gw.root}/2/e/${category === 'private-key' ? 'Secret' : 'LongFast'}/${gw.id}`
        payload = encodeEnvelope({
          ...header,
          portnum: a.portnum,
          payload: a.payload,
          ...(a.to !== undefined ? { to: a.to } : {}),
          ...(a.requestId !== undefined ? { requestId: a.requestId } : {}),
          ...(a.wantResponse ? { wantResponse: true } : {}),
          ...(a.wantAck ? { wantAck: true } : {}),
          ...(a.priority !== undefined ? { priority: a.priority } : {}),
          ...(channel ? { channel } : {}),
          ...(category === 'plaintext' ? { encrypt: false } : {}),
        })
      }
      senders.add(node.num)
    }
    usedGateways.add(gw.num)
    messages.push({ topic, payload, category, app })
    byCategory.set(category, (byCategory.get(category) ?? 0) + 1)
    byApp.set(app, (byApp.get(app) ?? 0) + 1)
    totalBytes += payload.length
  }
  return {
    messages,
    byCategory,
    byApp,
    avgBytes: totalBytes / count,
    senders: senders.size,
    gateways: usedGateways.size,
    privateChannel,
  }
}
