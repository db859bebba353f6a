/** A node's state changes gathered from the records of one or more batches. @internal */
export interface NodeAgg {
  num: number
  firstSeen: number
  lastHeard: number
  packets: number
  isGateway: number
  user?: { longName: string | null; shortName: string | null; json: string; at: number }
  position?: {
    lat: number
    lon: number
    alt: number | null
    bits: number | null
    radius: number | null
    at: number
    /** 0: a position packet; 1: a map report (coarser, never replaces a position packet's fix). */
    src: 0 | 1
  }
  device?: { json: string; at: number }
  map?: {
    fw: string | null
    region: string | number | null
    preset: string | number | null
    json: string
    at: number
  }
  reception?: {
    gw: number | null
    snr: number
    rssi: number
    cls: number
    hops: number | null
    at: number
  }
}

/** @internal */
export interface TelemetryAgg {
  num: number
  variant: string
  at: number
  json: string
}

/** @internal */
export interface LinkAgg {
  node: number
  gw: number
  first: number
  last: number
  count: number
  snr: number
  rssi: number
}

/** @internal */
export interface NeighborAgg {
  node: number
  neighbor: number
  first: number
  last: number
  count: number
  snr: number | null
}

/** @internal */
export interface GatewayAgg {
  first: number
  last: number
  receptions: number
  direct: number
}

type Pos = NonNullable<NodeAgg['position']>

/** Gateway row ids below this make a link key one number (node + gw × 2^32 stays exact). */
const NUMERIC_GW = 2 ** 21

/**
 * The key of a link: one number when node is a uint32 and gw a small row id (no string to build and
 * hash per copy), else `node|gw`. Either way one key per pair.
 */
function linkKey(node: number, gw: number): number | string {
  return node >>> 0 === node && gw >>> 0 === gw && gw < NUMERIC_GW
    ? gw * 4294967296 + node
    : `${node}|${gw}`
}

function betterPosition(cur: Pos | undefined, cand: Pos): boolean {
  if (!cur) return true
  if (cand.src === 0) return cand.at >= cur.at || cur.src === 1
  return cur.src === 1 && cand.at >= cur.at
}

/**
 * Per-node, per-link, per-gateway and latest-telemetry state derived from newly stored rows, kept
 * in memory and written as one upsert per key. Merging is commutative for the counters and keeps
 * the latest value (by receive time) for everything else, so state gathered over several batches
 * writes the same rows as state written batch by batch. @internal
 */
export class Aggregates {
  readonly nodes = new Map<number, NodeAgg>()
  readonly telemetry = new Map<string, TelemetryAgg>()
  /** By node and gateway (keys are opaque: numbers or strings). */
  readonly links = new Map<number | string, LinkAgg>()
  readonly gateways = new Map<number, GatewayAgg>()
  readonly neighbors = new Map<string, NeighborAgg>()

  get empty(): boolean {
    return (
      this.nodes.size === 0 &&
      this.telemetry.size === 0 &&
      this.links.size === 0 &&
      this.gateways.size === 0 &&
      this.neighbors.size === 0
    )
  }

  clear(): void {
    this.nodes.clear()
    this.telemetry.clear()
    this.links.clear()
    this.gateways.clear()
    this.neighbors.clear()
  }

  neighbor(
    node: number,
    neighbor: number,
    at: number,
    snr: number | null,
    count = 1,
    first = at,
  ): void {
    const k = `${node}|${neighbor}`
    const n = this.neighbors.get(k)
    if (!n) {
      this.neighbors.set(k, { node, neighbor, first, last: at, count, snr })
      return
    }
    n.count += count
    if (first < n.first) n.first = first
    if (at >= n.last) {
      n.last = at
      n.snr = snr
    }
  }

  node(num: number, first: number, last = first): NodeAgg {
    let n = this.nodes.get(num)
    if (!n) {
      n = { num, firstSeen: first, lastHeard: last, packets: 0, isGateway: 0 }
      this.nodes.set(num, n)
    } else {
      if (first < n.firstSeen) n.firstSeen = first
      if (last > n.lastHeard) n.lastHeard = last
    }
    return n
  }

  setUser(n: NodeAgg, user: NonNullable<NodeAgg['user']>): void {
    if (!n.user || user.at >= n.user.at) n.user = user
  }

  setPosition(n: NodeAgg, pos: Pos): void {
    if (betterPosition(n.position, pos)) n.position = pos
  }

  setDevice(n: NodeAgg, device: NonNullable<NodeAgg['device']>): void {
    if (!n.device || device.at >= n.device.at) n.device = device
  }

  setMap(n: NodeAgg, map: NonNullable<NodeAgg['map']>): void {
    if (!n.map || map.at >= n.map.at) n.map = map
  }

  setReception(n: NodeAgg, reception: NonNullable<NodeAgg['reception']>): void {
    if (!n.reception || reception.at >= n.reception.at) n.reception = reception
  }

  setTelemetry(t: TelemetryAgg): void {
    const k = `${t.num}|${t.variant}`
    const prev = this.telemetry.get(k)
    if (!prev || t.at >= prev.at) this.telemetry.set(k, t)
  }

  link(
    node: number,
    gw: number,
    at: number,
    snr: number,
    rssi: number,
    count = 1,
    first = at,
  ): void {
    const k = linkKey(node, gw)
    const l = this.links.get(k)
    if (!l) {
      this.links.set(k, { node, gw, first, last: at, count, snr, rssi })
      return
    }
    l.count += count
    if (first < l.first) l.first = first
    if (at >= l.last) {
      l.last = at
      l.snr = snr
      l.rssi = rssi
    }
  }

  gateway(gw: number, first: number, last: number, receptions: number, direct: number): void {
    const g = this.gateways.get(gw)
    if (!g) {
      this.gateways.set(gw, { first, last, receptions, direct })
      return
    }
    if (first < g.first) g.first = first
    if (last > g.last) g.last = last
    g.receptions += receptions
    g.direct += direct
  }

  /** Adds everything of `o` to this. */
  mergeFrom(o: Aggregates): void {
    for (const src of o.nodes.values()) {
      const n = this.node(src.num, src.firstSeen, src.lastHeard)
      n.packets += src.packets
      if (src.isGateway > n.isGateway) n.isGateway = src.isGateway
      if (src.user) this.setUser(n, src.user)
      if (src.position) this.setPosition(n, src.position)
      if (src.device) this.setDevice(n, src.device)
      if (src.map) this.setMap(n, src.map)
      if (src.reception) this.setReception(n, src.reception)
    }
    for (const t of o.telemetry.values()) this.setTelemetry(t)
    for (const l of o.links.values())
      this.link(l.node, l.gw, l.last, l.snr, l.rssi, l.count, l.first)
    for (const [id, g] of o.gateways) this.gateway(id, g.first, g.last, g.receptions, g.direct)
    for (const n of o.neighbors.values()) {
      this.neighbor(n.node, n.neighbor, n.last, n.snr, n.count, n.first)
    }
  }
}
