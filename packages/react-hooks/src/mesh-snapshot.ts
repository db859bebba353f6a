import type {
  MetricsMessage,
  NodeState,
  PacketKey,
  SourceStatus,
  TelemetryVariant,
  TextPayload,
  TracerouteHop,
} from '@meshtap/protocol'
import type { MeshtapClientError } from './errors.js'

/**
 * The state of the connection to the server:
 * - `connecting`: the first attempt (after `connect()`) is under way;
 * - `open`: connected (see `synced` for whether the data is complete);
 * - `reconnecting`: the connection was lost or could not be made; waiting for the next attempt
 *   (`nextRetryAt`) or making it;
 * - `closed`: not connected and not trying (before `connect()`, after `close()`, or after an
 *   error retrying cannot fix).
 *
 * @example
 * const label: Record<ConnectionState, string> = {
 *   connecting: 'Connecting…', open: 'Live', reconnecting: 'Reconnecting…', closed: 'Offline',
 * }
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed'

/**
 * Where the client stands. A new object whenever something in it changes.
 *
 * @example
 * const { state, error, retries, nextRetryAt } = client.getStatus()
 */
export interface ConnectionStatus {
  state: ConnectionState
  /** Whether the data is complete: subscribed, and the snapshot received or the resume honoured. */
  synced: boolean
  /** The latest error (kept after recovering, until the next one), if any. */
  error?: MeshtapClientError
  /** Failed attempts in a row (0 once a subscription succeeds). */
  retries: number
  /** When the next attempt starts (Unix ms), while waiting for it. */
  nextRetryAt?: number
  /** When the current connection opened (Unix ms). */
  connectedAt?: number
  /** The server instance (changes when it restarts). */
  epoch?: string
}

/**
 * A position report (POSITION_APP, or a gateway's map report).
 *
 * @example
 * const line = positions.map((p): [number, number] => [p.latitude, p.longitude])
 */
export interface PositionSample {
  /** The packet it came in. */
  key: PacketKey
  num: number
  /** `!xxxxxxxx` */
  id: string
  latitude: number
  longitude: number
  /** Metres above mean sea level. */
  altitude?: number
  /** 32 = exact; fewer bits = the node shares an area of `radiusM`. */
  precisionBits?: number
  radiusM?: number
  /** When meshtap received it, Unix ms. */
  at: number
  /** The node's own timestamp, Unix seconds, when it sent one. */
  time?: number
  source: 'position' | 'mapreport'
  /** Channel name from the envelope. */
  channel?: string
}

/**
 * One telemetry report of one kind.
 *
 * @example
 * const volts = samples.map((s) => s.metrics.voltage as number | undefined)
 */
export interface TelemetrySample {
  key: PacketKey
  num: number
  id: string
  variant: TelemetryVariant
  /** The metrics (`batteryLevel`, `voltage`, `temperature`, …, as the firmware names them). */
  metrics: MetricsMessage
  /** When meshtap received it, Unix ms. */
  at: number
  /** The node's own timestamp, Unix seconds, when it sent one. */
  time?: number
  /** Channel name from the envelope. */
  channel?: string
}

/**
 * The telemetry buffers of one node, by kind.
 *
 * @example
 * const device = snapshot.telemetry.get(num)?.device ?? []
 */
export type NodeTelemetry = Readonly<Partial<Record<TelemetryVariant, readonly TelemetrySample[]>>>

/**
 * A text message (text, alert, detection sensor, range test, reply).
 *
 * @example
 * messages.map((m) => `${m.fromId}: ${m.text}`)
 */
export interface MeshMessage {
  key: PacketKey
  from: number
  fromId: string
  to: number
  toId: string
  /** Whether it was sent to one node (`to` is not broadcast). */
  direct: boolean
  /** Channel name from the envelope (`LongFast`, …). */
  channel?: string
  type: TextPayload['type']
  text: string
  /** A tapback reaction to `replyId`. */
  isReaction: boolean
  replyId?: number
  /** The packet id (replies and reactions refer to it). */
  packetId: number
  /** When meshtap received it, Unix ms. */
  at: number
  /** The first gateway that published it. */
  gatewayId?: string
  hopsAway?: number
}

/**
 * A traceroute request or reply, with the path it describes.
 *
 * @example
 * const path = [t.origin, ...t.route.map((h) => h.num), t.destination]
 */
export interface TracerouteSample {
  key: PacketKey
  from: number
  to: number
  /** Who asked (the request's sender; the reply's destination). */
  origin: number
  /** Who was asked. */
  destination: number
  isReply: boolean
  /** Hops towards the destination. */
  route: readonly TracerouteHop[]
  /** SNR (dB) of each hop towards the destination; `null` = unknown. */
  snrTowardsDb: readonly (number | null)[]
  /** Hops on the way back (replies, firmware ≥ 2.5). */
  routeBack: readonly TracerouteHop[]
  snrBackDb: readonly (number | null)[]
  /** When meshtap received it, Unix ms. */
  at: number
  gatewayId?: string
  /** Channel name from the envelope. */
  channel?: string
}

/**
 * What a link was learnt from: `direct` = a gateway heard the sender at hop 0, `neighborinfo` = a
 * node reported hearing a neighbour (the two sources of the stores' `LinkSource`), and
 * `traceroute` = a hop of a traceroute.
 *
 * @example
 * const dashed = link.source === 'traceroute'
 */
export type MeshLinkSource = 'direct' | 'neighborinfo' | 'traceroute'

/**
 * A radio link seen in this session: `to` heard `from` (directed), with the latest SNR. The same
 * fields as the stores' `LinkRow`, plus `key`.
 *
 * @example
 * links.map((l) => [nodes.get(l.from)?.position, nodes.get(l.to)?.position])
 */
export interface MeshLink {
  /** `"<from>><to>"` */
  key: string
  /** The transmitter. */
  from: number
  fromId: string
  /** The receiver (the gateway, the reporting node, the next traceroute hop). */
  to: number
  toId: string
  /** What it was last learnt from. */
  source: MeshLinkSource
  /** Times it was seen. */
  count: number
  /** When it was first and last seen, Unix ms. */
  firstSeen: number
  lastSeen: number
  /** Latest SNR in dB, when known. */
  snr?: number
}

/**
 * A gateway (a node that publishes to MQTT), as seen in this session.
 *
 * @example
 * gateways.filter((g) => Date.now() - g.lastHeard < 600_000).length
 */
export interface GatewayInfo {
  /** `!xxxxxxxx` */
  id: string
  num: number
  /** Latest copy it published (or, for gateways known only from a snapshot, its node's last heard), Unix ms. */
  lastHeard: number
  /** Copies it published. */
  copies: number
  /** Packets whose first copy it published. */
  firstCopies: number
}

/**
 * Counters of what the client received and how the connection went.
 *
 * @example
 * const { packets, receptions, reconnects } = useStats()
 */
export interface MeshStats {
  /** Batches applied. */
  batches: number
  /** Events applied (every kind). */
  events: number
  packets: number
  receptions: number
  undecoded: number
  nodeEvents: number
  /** Records the server reported as not kept (`drop` events, when subscribed to them). */
  drops: number
  /** Store commits (`flush` events, when subscribed to them). */
  flushes: number
  /** Packets by port name (`POSITION_APP`, …; the number for unnamed ports). */
  byPort: Readonly<Record<string, number>>
  /** Nodes known now. */
  nodes: number
  /** Snapshots received. */
  snapshots: number
  /** Reconnects the server resumed without loss. */
  resumes: number
  /** Reconnects the server could not resume (a snapshot followed). */
  resumesRefused: number
  /** Times the server dropped batches for a slow client (a snapshot followed). */
  lagged: number
  /** Batches or events received twice and ignored (0 unless something is wrong). */
  duplicates: number
  /** Connections after the first. */
  reconnects: number
  /** The last batch sequence number applied. */
  seq: number
  /** The server instance. */
  epoch?: string
  /** When the last event arrived, Unix ms. */
  lastEventAt?: number
  /** The server's sources (brokers) by name, from `status` events (when subscribed to them). */
  sources: Readonly<Record<string, SourceStatus>>
}

/**
 * Everything the client knows, as one immutable value: a new object on every update (at most once
 * per animation frame), sharing every part that did not change with the previous one, so
 * selectors can compare by identity.
 *
 * @example
 * const unsubscribe = client.subscribe(() => {
 *   const s = client.getSnapshot()
 *   console.log(s.nodes.size, 'nodes', s.connection.state)
 * })
 */
export interface MeshSnapshot {
  /** Increases with every update. */
  version: number
  /** When this snapshot was made, Unix ms; time windows are measured back from it. */
  at: number
  connection: ConnectionStatus
  /** Nodes by number. */
  nodes: ReadonlyMap<number, NodeState>
  positions: {
    /** The latest positions of every node, oldest first. */
    all: readonly PositionSample[]
    /** By node number, oldest first. */
    byNode: ReadonlyMap<number, readonly PositionSample[]>
    /** By channel name, oldest first. */
    byChannel: ReadonlyMap<string, readonly PositionSample[]>
  }
  telemetry: {
    /** By node number, then kind. */
    byNode: ReadonlyMap<number, NodeTelemetry>
    /** By channel name (every kind), oldest first. */
    byChannel: ReadonlyMap<string, readonly TelemetrySample[]>
  }
  messages: {
    all: readonly MeshMessage[]
    /** By channel name. */
    byChannel: ReadonlyMap<string, readonly MeshMessage[]>
    /** By node number: messages from it and direct messages to it. */
    byNode: ReadonlyMap<number, readonly MeshMessage[]>
  }
  traceroutes: {
    all: readonly TracerouteSample[]
    /** By origin and by destination. */
    byNode: ReadonlyMap<number, readonly TracerouteSample[]>
    /** By channel name. */
    byChannel: ReadonlyMap<string, readonly TracerouteSample[]>
  }
  links: readonly MeshLink[]
  /** Sorted by id. */
  gateways: readonly GatewayInfo[]
  stats: MeshStats
}
