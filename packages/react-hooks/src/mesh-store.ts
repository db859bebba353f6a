import {
  applyNodeEvent,
  isBroadcast,
  isPlausibleFix,
  type NodeState,
  nodeIdFromNum,
  nodeNumFromId,
  type Reception,
  type SourceStatus,
  type StoredPacket,
  type TelemetryVariant,
  type TracerouteHop,
  type WireEvent,
} from '@meshtap/protocol'
import { animationFrameScheduler, type UpdateScheduler } from './frame-scheduler.js'
import type {
  ConnectionStatus,
  GatewayInfo,
  MeshLink,
  MeshLinkSource,
  MeshMessage,
  MeshSnapshot,
  MeshStats,
  NodeTelemetry,
  PositionSample,
  TelemetrySample,
  TracerouteSample,
} from './mesh-snapshot.js'
import { KeyedRings, RingBuffer } from './ring-buffer.js'

/**
 * Bounds of everything the client keeps. Every buffer drops its oldest entries first; every map
 * drops the entry updated least recently.
 *
 * @example
 * createMeshtapClient({ url, limits: { positionsPerNode: 500, maxBufferedNodes: 200 } })
 */
export interface MeshBufferLimits {
  /**
   * Nodes kept (snapshot and updates).
   * @default 20000
   */
  maxNodes?: number
  /**
   * Nodes that have per-node buffers (positions, telemetry, messages, traceroutes), each.
   * @default 2000
   */
  maxBufferedNodes?: number
  /**
   * Positions per node.
   * @default 50
   */
  positionsPerNode?: number
  /**
   * Positions of all nodes together (for bounding-box queries).
   * @default 5000
   */
  positions?: number
  /**
   * Telemetry samples per node and kind.
   * @default 60
   */
  telemetryPerNode?: number
  /**
   * Messages of all channels together.
   * @default 1000
   */
  messages?: number
  /**
   * Messages per channel.
   * @default 200
   */
  messagesPerChannel?: number
  /**
   * Channels with buffers (positions, telemetry, messages, traceroutes), each.
   * @default 64
   */
  maxChannels?: number
  /**
   * Positions, telemetry samples and traceroutes per channel, each.
   * @default 500
   */
  perChannel?: number
  /**
   * Messages per node.
   * @default 50
   */
  messagesPerNode?: number
  /**
   * Traceroutes of all nodes together.
   * @default 500
   */
  traceroutes?: number
  /**
   * Traceroutes per node.
   * @default 20
   */
  traceroutesPerNode?: number
  /**
   * Links.
   * @default 5000
   */
  maxLinks?: number
  /**
   * Gateways.
   * @default 2000
   */
  maxGateways?: number
}

/** The defaults of {@link MeshBufferLimits}. */
export const DEFAULT_LIMITS: Required<MeshBufferLimits> = {
  maxNodes: 20_000,
  maxBufferedNodes: 2000,
  positionsPerNode: 50,
  positions: 5000,
  telemetryPerNode: 60,
  messages: 1000,
  messagesPerChannel: 200,
  maxChannels: 64,
  perChannel: 500,
  messagesPerNode: 50,
  traceroutes: 500,
  traceroutesPerNode: 20,
  maxLinks: 5000,
  maxGateways: 2000,
}

/** Resolves and checks limits; returns the message of the first bad one. */
export function resolveLimits(
  limits: MeshBufferLimits | undefined,
): Required<MeshBufferLimits> | string {
  const out = { ...DEFAULT_LIMITS }
  for (const [k, v] of Object.entries(limits ?? {})) {
    if (!(k in DEFAULT_LIMITS)) return `unknown limit "${k}"`
    if (v === undefined) continue
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      return `limits.${k} must be a positive integer (got ${String(v)})`
    }
    out[k as keyof MeshBufferLimits] = v
  }
  return out
}

type CountedStat =
  | 'snapshots'
  | 'resumes'
  | 'resumesRefused'
  | 'lagged'
  | 'duplicates'
  | 'reconnects'
  | 'batches'

interface MutableStats extends Omit<MeshStats, 'byPort' | 'sources'> {
  byPort: Record<string, number>
  sources: Record<string, SourceStatus>
}

interface LinkRecord {
  from: number
  to: number
  snr: number | undefined
  firstSeen: number
  lastSeen: number
  source: MeshLinkSource
  count: number
}

interface GatewayRecord {
  num: number
  id: string
  lastHeard: number
  copies: number
  firstCopies: number
}

const EMPTY_MAP: ReadonlyMap<never, never> = new Map<never, never>()
const EMPTY: readonly never[] = Object.freeze([])

function emptyStats(): MutableStats {
  return {
    batches: 0,
    events: 0,
    packets: 0,
    receptions: 0,
    undecoded: 0,
    nodeEvents: 0,
    drops: 0,
    flushes: 0,
    byPort: {},
    nodes: 0,
    snapshots: 0,
    resumes: 0,
    resumesRefused: 0,
    lagged: 0,
    duplicates: 0,
    reconnects: 0,
    seq: 0,
    sources: {},
  }
}

/** The snapshot of a client that has nothing yet (also the server snapshot, for SSR). */
export function emptySnapshot(connection: ConnectionStatus): MeshSnapshot {
  return Object.freeze({
    version: 0,
    at: 0,
    connection,
    nodes: EMPTY_MAP,
    positions: { all: EMPTY, byNode: EMPTY_MAP, byChannel: EMPTY_MAP },
    telemetry: { byNode: EMPTY_MAP, byChannel: EMPTY_MAP },
    messages: { all: EMPTY, byChannel: EMPTY_MAP, byNode: EMPTY_MAP },
    traceroutes: { all: EMPTY, byNode: EMPTY_MAP, byChannel: EMPTY_MAP },
    links: EMPTY,
    gateways: EMPTY,
    stats: Object.freeze({ ...emptyStats(), byPort: {}, sources: {} }),
  })
}

function senderOfKey(key: string): number | undefined {
  const i = key.indexOf(':')
  const n = Number(i < 0 ? key : key.slice(0, i))
  return Number.isInteger(n) && n >= 0 ? n : undefined
}

function gatewayNum(id: string | undefined): number | undefined {
  return id === undefined ? undefined : nodeNumFromId(id)
}

/**
 * The client's live state: wire events and snapshots go in, immutable {@link MeshSnapshot}s come
 * out, at most once per scheduled update.
 *
 * @internal
 */
export class MeshStore {
  private readonly limits: Required<MeshBufferLimits>
  private readonly schedule: UpdateScheduler
  private readonly listeners = new Set<() => void>()
  private cancelUpdate: (() => void) | undefined
  private snapshot: MeshSnapshot
  readonly serverSnapshot: MeshSnapshot

  private connection: ConnectionStatus
  private connectionDirty = false
  private readonly nodes = new Map<number, NodeState>()
  private nodesDirty = false
  private readonly positionsAll: RingBuffer<PositionSample>
  private readonly positionsByNode: KeyedRings<number, PositionSample>
  private readonly positionsByChannel: KeyedRings<string, PositionSample>
  private readonly telemetryByChannel: KeyedRings<string, TelemetrySample>
  private readonly telemetry = new Map<number, Map<TelemetryVariant, RingBuffer<TelemetrySample>>>()
  private readonly telemetryDirty = new Set<number>()
  private readonly messagesAll: RingBuffer<MeshMessage>
  private readonly messagesByChannel: KeyedRings<string, MeshMessage>
  private readonly messagesByNode: KeyedRings<number, MeshMessage>
  private readonly traceroutesAll: RingBuffer<TracerouteSample>
  private readonly traceroutesByNode: KeyedRings<number, TracerouteSample>
  private readonly traceroutesByChannel: KeyedRings<string, TracerouteSample>
  private bufferDirty = { positions: false, messages: false, traceroutes: false }
  private readonly links = new Map<string, LinkRecord>()
  private readonly publishedLinks = new Map<string, MeshLink>()
  private readonly linksDirty = new Set<string>()
  private readonly gateways = new Map<string, GatewayRecord>()
  private readonly publishedGateways = new Map<string, GatewayInfo>()
  private readonly gatewaysDirty = new Set<string>()
  private stats = emptyStats()
  private statsDirty = false

  constructor(
    connection: ConnectionStatus,
    limits: Required<MeshBufferLimits>,
    schedule: UpdateScheduler = animationFrameScheduler,
  ) {
    this.limits = limits
    this.schedule = schedule
    this.connection = connection
    this.serverSnapshot = emptySnapshot(connection)
    this.snapshot = this.serverSnapshot
    this.positionsAll = new RingBuffer(limits.positions)
    this.positionsByNode = new KeyedRings(limits.maxBufferedNodes, limits.positionsPerNode)
    this.positionsByChannel = new KeyedRings(limits.maxChannels, limits.perChannel)
    this.telemetryByChannel = new KeyedRings(limits.maxChannels, limits.perChannel)
    this.messagesAll = new RingBuffer(limits.messages)
    this.messagesByChannel = new KeyedRings(limits.maxChannels, limits.messagesPerChannel)
    this.messagesByNode = new KeyedRings(limits.maxBufferedNodes, limits.messagesPerNode)
    this.traceroutesAll = new RingBuffer(limits.traceroutes)
    this.traceroutesByNode = new KeyedRings(limits.maxBufferedNodes, limits.traceroutesPerNode)
    this.traceroutesByChannel = new KeyedRings(limits.maxChannels, limits.perChannel)
  }

  // ---- reading -------------------------------------------------------------------------------

  getSnapshot = (): MeshSnapshot => this.snapshot

  subscribe = (listener: () => void): (() => void) => {
    const wrapped = () => listener()
    this.listeners.add(wrapped)
    return () => {
      this.listeners.delete(wrapped)
    }
  }

  get listenerCount(): number {
    return this.listeners.size
  }

  /** Publishes pending changes now (instead of at the next scheduled update). */
  flush = (): void => {
    this.cancelUpdate?.()
    this.cancelUpdate = undefined
    if (!this.publish()) return
    for (const l of [...this.listeners]) {
      try {
        l()
      } catch (e) {
        // One failing listener must not starve the others; surface it asynchronously.
        setTimeout(() => {
          throw e
        }, 0)
      }
    }
  }

  private changed(): void {
    if (this.cancelUpdate) return
    this.cancelUpdate = this.schedule(() => {
      this.cancelUpdate = undefined
      this.flush()
    })
  }

  // ---- writing -------------------------------------------------------------------------------

  setConnection(status: ConnectionStatus): void {
    if (status === this.connection) return
    this.connection = status
    this.connectionDirty = true
    this.changed()
  }

  /** Records the stream position (the last batch applied). */
  setSeq(seq: number, epoch: string | undefined): void {
    if (this.stats.seq === seq && this.stats.epoch === epoch) return
    this.stats.seq = seq
    if (epoch !== undefined) this.stats.epoch = epoch
    this.statsDirty = true
    this.changed()
  }

  count(stat: CountedStat, by = 1): void {
    this.stats[stat] += by
    this.statsDirty = true
    this.changed()
  }

  /** Replaces every node with a snapshot's. */
  replaceNodes(nodes: readonly NodeState[]): void {
    this.nodes.clear()
    for (const n of nodes) this.putNode(n)
    this.nodesDirty = true
    this.stats.nodes = this.nodes.size
    this.statsDirty = true
    this.changed()
  }

  /** Forgets everything but the connection (a new filter). */
  clear(): void {
    this.nodes.clear()
    this.nodesDirty = true
    for (const k of this.telemetry.keys()) this.telemetryDirty.add(k)
    this.telemetry.clear()
    for (const r of [this.positionsAll, this.messagesAll, this.traceroutesAll]) r.clear()
    for (const k of [
      this.positionsByNode,
      this.positionsByChannel,
      this.telemetryByChannel,
      this.messagesByChannel,
      this.messagesByNode,
      this.traceroutesByNode,
      this.traceroutesByChannel,
    ]) {
      k.clear()
    }
    this.bufferDirty = { positions: true, messages: true, traceroutes: true }
    for (const k of this.links.keys()) this.linksDirty.add(k)
    this.links.clear()
    for (const k of this.gateways.keys()) this.gatewaysDirty.add(k)
    this.gateways.clear()
    const { seq, epoch, reconnects, snapshots, resumes, resumesRefused, lagged } = this.stats
    this.stats = { ...emptyStats(), seq, reconnects, snapshots, resumes, resumesRefused, lagged }
    if (epoch !== undefined) this.stats.epoch = epoch
    this.statsDirty = true
    this.changed()
  }

  /** Applies the events of one batch. */
  applyEvents(events: readonly WireEvent[]): void {
    const s = this.stats
    s.batches++
    this.statsDirty = true
    if (events.length > 0) s.lastEventAt = Date.now()
    for (const e of events) {
      s.events++
      switch (e.kind) {
        case 'packet':
          this.onPacket(e.packet)
          break
        case 'reception':
          this.onReception(e.reception)
          break
        case 'undecoded':
          s.undecoded++
          break
        case 'node': {
          s.nodeEvents++
          const next = applyNodeEvent(this.nodes.get(e.num), e)
          if (next) {
            this.nodes.delete(e.num)
            this.putNode(next)
          } else this.nodes.delete(e.num)
          this.nodesDirty = true
          break
        }
        case 'drop':
          s.drops += e.drop.count
          break
        case 'flush':
          s.flushes++
          break
        case 'status':
          s.sources = { ...s.sources, [e.status.source]: e.status }
          break
      }
    }
    s.nodes = this.nodes.size
    this.changed()
  }

  private putNode(n: NodeState): void {
    this.nodes.set(n.num, n)
    if (this.nodes.size > this.limits.maxNodes) {
      this.nodes.delete(this.nodes.keys().next().value as number)
    }
    if (n.isGateway && !this.gateways.has(n.id)) {
      this.touchGateway(n.id, n.num, n.lastHeard, 0, 0)
    }
  }

  private touchGateway(
    id: string,
    num: number,
    at: number,
    copies: number,
    firstCopies: number,
  ): void {
    let g = this.gateways.get(id)
    if (g) this.gateways.delete(id)
    else g = { id, num, lastHeard: 0, copies: 0, firstCopies: 0 }
    this.gateways.set(id, g)
    g.lastHeard = Math.max(g.lastHeard, at)
    g.copies += copies
    g.firstCopies += firstCopies
    this.gatewaysDirty.add(id)
    if (this.gateways.size > this.limits.maxGateways) {
      const oldest = this.gateways.keys().next().value as string
      this.gateways.delete(oldest)
      this.gatewaysDirty.add(oldest)
    }
  }

  private link(
    from: number,
    to: number,
    snr: number | null | undefined,
    at: number,
    source: MeshLinkSource,
  ): void {
    from >>>= 0
    to >>>= 0
    if (from === to || isBroadcast(from) || isBroadcast(to)) return
    const key = `${from}>${to}`
    let l = this.links.get(key)
    if (l) this.links.delete(key)
    else l = { from, to, snr: undefined, firstSeen: at, lastSeen: 0, source, count: 0 }
    this.links.set(key, l)
    if (snr !== null && snr !== undefined && Number.isFinite(snr)) l.snr = snr
    l.lastSeen = Math.max(l.lastSeen, at)
    l.firstSeen = Math.min(l.firstSeen, at)
    l.source = source
    l.count++
    this.linksDirty.add(key)
    if (this.links.size > this.limits.maxLinks) {
      const oldest = this.links.keys().next().value as string
      this.links.delete(oldest)
      this.linksDirty.add(oldest)
    }
  }

  private chain(nodes: readonly number[], snrs: readonly (number | null)[], at: number): void {
    for (let i = 0; i + 1 < nodes.length; i++) {
      this.link(nodes[i] as number, nodes[i + 1] as number, snrs[i], at, 'traceroute')
    }
  }

  private onReception(r: Reception): void {
    this.stats.receptions++
    const gw = gatewayNum(r.gatewayId)
    if (r.gatewayId !== undefined && gw !== undefined) {
      this.touchGateway(r.gatewayId.toLowerCase(), gw, r.receivedAt, 1, 0)
      const from = senderOfKey(r.packetKey)
      if (r.receptionClass === 'direct' && from !== undefined) {
        this.link(from, gw, r.rxSnr, r.receivedAt, 'direct')
      }
    }
  }

  private onPacket(sp: StoredPacket): void {
    const s = this.stats
    const p = sp.packet
    const at = sp.receivedAt
    s.packets++
    const port = p.portnumName ?? String(p.portnum)
    s.byPort[port] = (s.byPort[port] ?? 0) + 1
    const gw = gatewayNum(p.gatewayId)
    if (p.gatewayId !== undefined && gw !== undefined) {
      this.touchGateway(p.gatewayId.toLowerCase(), gw, at, 1, 1)
      if (p.receptionClass === 'direct') this.link(p.from, gw, p.rxSnr, at, 'direct')
    }
    const app = p.app
    switch (app.type) {
      case 'position':
      case 'mapreport': {
        const { latitude, longitude } = app
        if (latitude === undefined || longitude === undefined) break
        if (!isPlausibleFix(latitude, longitude)) break
        const sample: PositionSample = {
          key: sp.key,
          num: p.from,
          id: p.fromId,
          latitude,
          longitude,
          at,
          source: app.type,
        }
        if (app.type === 'position') {
          if (app.altitude !== undefined) sample.altitude = app.altitude
          if (app.precisionBits !== undefined) sample.precisionBits = app.precisionBits
          if (app.position.time) sample.time = app.position.time
        } else if (app.mapReport.altitude !== undefined) {
          sample.altitude = app.mapReport.altitude
        }
        if (app.radiusM !== undefined) sample.radiusM = app.radiusM
        if (p.channelId !== undefined) {
          sample.channel = p.channelId
          this.positionsByChannel.push(p.channelId, sample)
        }
        this.positionsAll.push(sample)
        this.positionsByNode.push(p.from, sample)
        this.bufferDirty.positions = true
        break
      }
      case 'telemetry': {
        const sample: TelemetrySample = {
          key: sp.key,
          num: p.from,
          id: p.fromId,
          variant: app.variant,
          metrics: app.metrics,
          at,
        }
        if (app.telemetry.time) sample.time = app.telemetry.time
        if (p.channelId !== undefined) {
          sample.channel = p.channelId
          this.telemetryByChannel.push(p.channelId, sample)
        }
        let byKind = this.telemetry.get(p.from)
        if (byKind) this.telemetry.delete(p.from)
        else byKind = new Map()
        this.telemetry.set(p.from, byKind)
        let ring = byKind.get(app.variant)
        if (!ring) {
          ring = new RingBuffer(this.limits.telemetryPerNode)
          byKind.set(app.variant, ring)
        }
        ring.push(sample)
        this.telemetryDirty.add(p.from)
        if (this.telemetry.size > this.limits.maxBufferedNodes) {
          const oldest = this.telemetry.keys().next().value as number
          this.telemetry.delete(oldest)
          this.telemetryDirty.add(oldest)
        }
        break
      }
      case 'text':
      case 'alert':
      case 'detection':
      case 'rangetest':
      case 'reply': {
        const m: MeshMessage = {
          key: sp.key,
          from: p.from,
          fromId: p.fromId,
          to: p.to,
          toId: p.toId,
          direct: !isBroadcast(p.to),
          type: app.type,
          text: app.text,
          isReaction: app.isReaction,
          packetId: p.id,
          at,
        }
        if (p.channelId !== undefined) m.channel = p.channelId
        if (app.replyId !== undefined) m.replyId = app.replyId
        if (p.gatewayId !== undefined) m.gatewayId = p.gatewayId
        if (p.hopsAway !== undefined) m.hopsAway = p.hopsAway
        this.messagesAll.push(m)
        if (m.channel !== undefined) this.messagesByChannel.push(m.channel, m)
        this.messagesByNode.push(p.from, m)
        if (m.direct && p.to !== p.from) this.messagesByNode.push(p.to, m)
        this.bufferDirty.messages = true
        break
      }
      case 'traceroute': {
        const isReply = p.requestId !== undefined && p.requestId !== 0
        const origin = isReply ? p.to : p.from
        const destination = isReply ? p.from : p.to
        const t: TracerouteSample = {
          key: sp.key,
          from: p.from,
          to: p.to,
          origin,
          destination,
          isReply,
          route: app.route,
          snrTowardsDb: app.snrTowardsDb,
          routeBack: app.routeBack,
          snrBackDb: app.snrBackDb,
          at,
        }
        if (p.gatewayId !== undefined) t.gatewayId = p.gatewayId
        if (p.channelId !== undefined) {
          t.channel = p.channelId
          this.traceroutesByChannel.push(p.channelId, t)
        }
        this.traceroutesAll.push(t)
        this.traceroutesByNode.push(origin, t)
        if (destination !== origin && !isBroadcast(destination)) {
          this.traceroutesByNode.push(destination, t)
        }
        this.bufferDirty.traceroutes = true
        const known = (hops: readonly TracerouteHop[]) => hops.map((h) => h.num)
        if (isReply) {
          this.chain([origin, ...known(app.route), destination], app.snrTowardsDb, at)
          const back = [destination, ...known(app.routeBack)]
          if (app.snrBackDb.length > app.routeBack.length) back.push(origin)
          this.chain(back, app.snrBackDb, at)
        } else {
          this.chain([origin, ...known(app.route)], app.snrTowardsDb, at)
        }
        break
      }
      case 'neighborinfo':
        for (const n of app.neighborInfo.neighbors ?? []) {
          if (n.nodeId !== undefined) this.link(n.nodeId, p.from, n.snr, at, 'neighborinfo')
        }
        break
    }
  }

  // ---- publishing ----------------------------------------------------------------------------

  /** Makes the next snapshot from what changed; false when nothing did. */
  private publish(): boolean {
    const prev = this.snapshot
    const dirty =
      this.connectionDirty ||
      this.nodesDirty ||
      this.statsDirty ||
      this.telemetryDirty.size > 0 ||
      this.linksDirty.size > 0 ||
      this.gatewaysDirty.size > 0 ||
      this.bufferDirty.positions ||
      this.bufferDirty.messages ||
      this.bufferDirty.traceroutes
    if (!dirty) return false

    let { positions, messages, traceroutes, telemetry, links, gateways, stats } = prev
    if (this.bufferDirty.positions) {
      positions = {
        all: this.positionsAll.toArray(),
        byNode: this.positionsByNode.publish(positions.byNode),
        byChannel: this.positionsByChannel.publish(positions.byChannel),
      }
    }
    if (this.bufferDirty.messages) {
      messages = {
        all: this.messagesAll.toArray(),
        byChannel: this.messagesByChannel.publish(messages.byChannel),
        byNode: this.messagesByNode.publish(messages.byNode),
      }
    }
    if (this.bufferDirty.traceroutes) {
      traceroutes = {
        all: this.traceroutesAll.toArray(),
        byNode: this.traceroutesByNode.publish(traceroutes.byNode),
        byChannel: this.traceroutesByChannel.publish(traceroutes.byChannel),
      }
    }
    this.bufferDirty = { positions: false, messages: false, traceroutes: false }
    if (this.telemetryDirty.size > 0 || this.telemetryByChannel.changed) {
      let byNode = telemetry.byNode
      if (this.telemetryDirty.size > 0) {
        const next = new Map(byNode)
        for (const num of this.telemetryDirty) {
          const byKind = this.telemetry.get(num)
          if (!byKind) {
            next.delete(num)
            continue
          }
          const record: Partial<Record<TelemetryVariant, readonly TelemetrySample[]>> = {}
          for (const [kind, ring] of byKind) record[kind] = ring.toArray()
          next.set(num, Object.freeze(record) as NodeTelemetry)
        }
        this.telemetryDirty.clear()
        byNode = next
      }
      telemetry = { byNode, byChannel: this.telemetryByChannel.publish(telemetry.byChannel) }
    }
    if (this.linksDirty.size > 0) {
      for (const key of this.linksDirty) {
        const l = this.links.get(key)
        if (!l) {
          this.publishedLinks.delete(key)
          continue
        }
        const link: MeshLink = {
          key,
          from: l.from,
          to: l.to,
          fromId: nodeIdFromNum(l.from),
          toId: nodeIdFromNum(l.to),
          source: l.source,
          count: l.count,
          firstSeen: l.firstSeen,
          lastSeen: l.lastSeen,
        }
        if (l.snr !== undefined) link.snr = l.snr
        this.publishedLinks.set(key, Object.freeze(link))
      }
      this.linksDirty.clear()
      links = Object.freeze([...this.publishedLinks.values()])
    }
    if (this.gatewaysDirty.size > 0) {
      for (const id of this.gatewaysDirty) {
        const g = this.gateways.get(id)
        if (g) this.publishedGateways.set(id, Object.freeze({ ...g }))
        else this.publishedGateways.delete(id)
      }
      this.gatewaysDirty.clear()
      gateways = Object.freeze(
        [...this.publishedGateways.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
      )
    }
    if (this.statsDirty) {
      const s = this.stats
      stats = Object.freeze({
        ...s,
        byPort: Object.freeze({ ...s.byPort }),
        sources: Object.freeze({ ...s.sources }),
      })
      this.statsDirty = false
    }
    const nodes: ReadonlyMap<number, NodeState> = this.nodesDirty ? new Map(this.nodes) : prev.nodes
    this.nodesDirty = false
    this.connectionDirty = false
    this.snapshot = Object.freeze({
      version: prev.version + 1,
      at: Date.now(),
      connection: this.connection,
      nodes,
      positions,
      telemetry,
      messages,
      traceroutes,
      links,
      gateways,
      stats,
    })
    return true
  }
}
