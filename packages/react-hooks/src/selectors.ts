import {
  type NodeRef,
  type NodeState,
  nodeNumFromId,
  type TelemetryVariant,
  type WireBoundingBox,
} from '@meshtap/protocol'
import type {
  MeshLink,
  MeshLinkSource,
  MeshMessage,
  MeshSnapshot,
  PositionSample,
  TelemetrySample,
  TracerouteSample,
} from './mesh-snapshot.js'

/**
 * Which samples of a buffer: those of the last `ms` milliseconds (measured back from the
 * snapshot's time) and/or the last `count`. A number is short for `{ ms }`.
 *
 * @example
 * usePositions('!fa75f7c0', { ms: 3_600_000, count: 100 }) // the last hour, at most 100
 */
export type SampleWindow = number | { ms?: number; count?: number }

/**
 * Which nodes {@link useNodes} returns, and in what order.
 *
 * @example
 * const filter: NodeFilter = { heardWithinMs: 3_600_000, hasPosition: true, sort: 'name', limit: 50 }
 */
export interface NodeFilter {
  /** Only these nodes. */
  ids?: readonly NodeRef[]
  /** Only gateways (`true`) or only other nodes (`false`). */
  isGateway?: boolean
  /** Only nodes with (`true`) or without (`false`) a known position. */
  hasPosition?: boolean
  /** Only nodes whose position lies in the box (`west > east` crosses the antimeridian). */
  bbox?: WireBoundingBox
  /** Only nodes heard within this many ms before the snapshot. */
  heardWithinMs?: number
  /** Case-insensitive text to find in the long name, short name or id. */
  search?: string
  /** Any other condition. Keep it stable (module scope or `useCallback`): a new function re-selects. */
  where?: (node: NodeState) => boolean
  /**
   * Order: most recently heard first, by name, by node number, or a comparator.
   * @default 'lastHeard'
   */
  sort?: 'lastHeard' | 'name' | 'num' | ((a: NodeState, b: NodeState) => number)
  /** At most this many (after sorting). */
  limit?: number
}

/**
 * A channel, by name (`{ channel: 'LongFast' }`).
 *
 * @example
 * const longFast: ChannelRef = { channel: 'LongFast' }
 */
export interface ChannelRef {
  channel: string
}

/**
 * What {@link usePositions} reads: one node's track, the latest positions in a box or on a
 * channel, or all.
 *
 * @example
 * const target: PositionTarget = { south: 37.2, west: -122.6, north: 38.0, east: -121.7 }
 */
export type PositionTarget = NodeRef | WireBoundingBox | ChannelRef | undefined

/**
 * Whose messages {@link useMessages} reads: a channel (`'LongFast'` or `{ channel }`), a node
 * (a number, a `'!xxxxxxxx'` id, or `{ node }`: its messages and direct messages to it), or all.
 *
 * @example
 * const target: MessageTarget = { channel: 'LongFast' }
 */
export type MessageTarget = NodeRef | ChannelRef | { node: NodeRef } | undefined

/**
 * Which links {@link useLinks} returns.
 *
 * @example
 * const filter: LinkFilter = { node: '!fa75f7c0', sources: ['neighborinfo', 'traceroute'], window: 3_600_000 }
 */
export interface LinkFilter {
  /** Only links from or to this node. */
  node?: NodeRef
  /** Only links last learnt from these. */
  sources?: readonly MeshLinkSource[]
  /** Only links seen within this many ms before the snapshot. */
  window?: number
}

const EMPTY: readonly never[] = Object.freeze([])

/**
 * A node number from a number or a `!xxxxxxxx` id; `undefined` when it is neither.
 *
 * @example
 * toNodeNum('!fa75f7c0') // 4202035136
 */
export function toNodeNum(ref: NodeRef | undefined): number | undefined {
  if (typeof ref === 'number') return Number.isInteger(ref) ? ref >>> 0 : undefined
  if (typeof ref === 'string') return nodeNumFromId(ref)
  return undefined
}

/** Whether a point lies in the box, edges included; `west > east` crosses the antimeridian. */
export function inBox(box: WireBoundingBox, latitude: number, longitude: number): boolean {
  if (latitude < box.south || latitude > box.north) return false
  return box.west <= box.east
    ? longitude >= box.west && longitude <= box.east
    : longitude >= box.west || longitude <= box.east
}

function isBox(v: unknown): v is WireBoundingBox {
  return typeof v === 'object' && v !== null && 'south' in v && 'north' in v
}

function isChannel(v: unknown): v is ChannelRef {
  return typeof v === 'object' && v !== null && 'channel' in v
}

/**
 * Applies a window to a buffer (oldest first). Returns the buffer itself when nothing is cut.
 *
 * @example
 * applyWindow(samples, { count: 10 }, snapshot.at)
 */
export function applyWindow<T extends { at: number }>(
  items: readonly T[],
  window: SampleWindow | undefined,
  now: number,
): readonly T[] {
  if (window === undefined || items.length === 0) return items
  const { ms, count } = typeof window === 'number' ? { ms: window, count: undefined } : window
  let start = 0
  if (ms !== undefined) {
    const since = now - ms
    // Buffers are in arrival order; receive times are nearly monotonic, so scan from the end.
    start = items.length
    while (start > 0 && (items[start - 1] as T).at >= since) start--
  }
  if (count !== undefined) start = Math.max(start, items.length - Math.max(0, count))
  return start === 0 ? items : items.slice(start)
}

function nameOf(n: NodeState): string {
  return (n.user?.longName ?? n.user?.shortName ?? n.id).toLowerCase()
}

const SORTS = {
  lastHeard: (a: NodeState, b: NodeState) => b.lastHeard - a.lastHeard || a.num - b.num,
  name: (a: NodeState, b: NodeState) => {
    const x = nameOf(a)
    const y = nameOf(b)
    return x < y ? -1 : x > y ? 1 : a.num - b.num
  },
  num: (a: NodeState, b: NodeState) => a.num - b.num,
}

/**
 * The nodes of a snapshot that match a filter, sorted. A new array each call: hooks keep the
 * previous one when its items are the same.
 *
 * @example
 * const gateways = selectNodes(client.getSnapshot(), { isGateway: true, sort: 'name' })
 */
export function selectNodes(snapshot: MeshSnapshot, filter: NodeFilter = {}): NodeState[] {
  const out: NodeState[] = []
  const since = filter.heardWithinMs === undefined ? undefined : snapshot.at - filter.heardWithinMs
  const search = filter.search?.trim().toLowerCase() || undefined
  const match = (n: NodeState) => {
    if (filter.isGateway !== undefined && n.isGateway !== filter.isGateway) return false
    if (filter.hasPosition !== undefined && (n.position !== undefined) !== filter.hasPosition) {
      return false
    }
    if (filter.bbox) {
      const p = n.position
      if (!p || !inBox(filter.bbox, p.latitude, p.longitude)) return false
    }
    if (since !== undefined && n.lastHeard < since) return false
    if (search !== undefined) {
      const u = n.user
      const hay = `${n.id} ${u?.longName ?? ''} ${u?.shortName ?? ''}`.toLowerCase()
      if (!hay.includes(search)) return false
    }
    return filter.where ? filter.where(n) : true
  }
  if (filter.ids) {
    const seen = new Set<number>()
    for (const ref of filter.ids) {
      const num = toNodeNum(ref)
      if (num === undefined || seen.has(num)) continue
      seen.add(num)
      const n = snapshot.nodes.get(num)
      if (n && match(n)) out.push(n)
    }
  } else {
    for (const n of snapshot.nodes.values()) if (match(n)) out.push(n)
  }
  const sort = filter.sort ?? 'lastHeard'
  out.sort(typeof sort === 'function' ? sort : SORTS[sort])
  if (filter.limit !== undefined && out.length > filter.limit)
    out.length = Math.max(0, filter.limit)
  return out
}

/**
 * Positions, oldest first: one node's track, those in a box or on a channel (from every node),
 * or all.
 *
 * @example
 * const track = selectPositions(client.getSnapshot(), '!fa75f7c0', { ms: 3_600_000 })
 */
export function selectPositions(
  snapshot: MeshSnapshot,
  target?: PositionTarget,
  window?: SampleWindow,
): readonly PositionSample[] {
  if (isChannel(target)) {
    return applyWindow(
      snapshot.positions.byChannel.get(target.channel) ?? EMPTY,
      window,
      snapshot.at,
    )
  }
  if (isBox(target)) {
    const inside = snapshot.positions.all.filter((p) => inBox(target, p.latitude, p.longitude))
    return applyWindow(inside, window, snapshot.at)
  }
  if (target === undefined) return applyWindow(snapshot.positions.all, window, snapshot.at)
  const num = toNodeNum(target)
  const items = num === undefined ? undefined : snapshot.positions.byNode.get(num)
  return applyWindow(items ?? EMPTY, window, snapshot.at)
}

/**
 * Telemetry of one kind, oldest first: one node's, or every node's on a channel.
 *
 * @example
 * const battery = selectTelemetry(snapshot, 4202035136, 'device').map((s) => s.metrics.batteryLevel)
 */
export function selectTelemetry(
  snapshot: MeshSnapshot,
  target: NodeRef | ChannelRef,
  kind: TelemetryVariant = 'device',
  window?: SampleWindow,
): readonly TelemetrySample[] {
  if (isChannel(target)) {
    const all = snapshot.telemetry.byChannel.get(target.channel) ?? EMPTY
    return applyWindow(
      all.filter((t) => t.variant === kind),
      window,
      snapshot.at,
    )
  }
  const num = toNodeNum(target)
  const items = num === undefined ? undefined : snapshot.telemetry.byNode.get(num)?.[kind]
  return applyWindow(items ?? EMPTY, window, snapshot.at)
}

/**
 * Messages, oldest first: of a channel, of a node (sent by it or directly to it), or all.
 *
 * @example
 * selectMessages(snapshot, { channel: 'LongFast' }, { count: 50 })
 */
export function selectMessages(
  snapshot: MeshSnapshot,
  target?: MessageTarget,
  window?: SampleWindow,
): readonly MeshMessage[] {
  let items: readonly MeshMessage[] | undefined
  if (target === undefined) items = snapshot.messages.all
  else if (typeof target === 'object') {
    if ('channel' in target) items = snapshot.messages.byChannel.get(target.channel)
    else {
      const num = toNodeNum(target.node)
      items = num === undefined ? undefined : snapshot.messages.byNode.get(num)
    }
  } else if (typeof target === 'number') items = snapshot.messages.byNode.get(target >>> 0)
  else {
    const num = target.startsWith('!') ? toNodeNum(target) : undefined
    items =
      num === undefined
        ? snapshot.messages.byChannel.get(target)
        : snapshot.messages.byNode.get(num)
  }
  return applyWindow(items ?? EMPTY, window, snapshot.at)
}

/**
 * Traceroutes, oldest first: those a node asked or was asked, those on a channel, or all.
 *
 * @example
 * const last = selectTraceroutes(snapshot, '!fa75f7c0').at(-1)
 */
export function selectTraceroutes(
  snapshot: MeshSnapshot,
  target?: NodeRef | ChannelRef,
  window?: SampleWindow,
): readonly TracerouteSample[] {
  if (target === undefined) return applyWindow(snapshot.traceroutes.all, window, snapshot.at)
  if (isChannel(target)) {
    const items = snapshot.traceroutes.byChannel.get(target.channel)
    return applyWindow(items ?? EMPTY, window, snapshot.at)
  }
  const num = toNodeNum(target)
  const items = num === undefined ? undefined : snapshot.traceroutes.byNode.get(num)
  return applyWindow(items ?? EMPTY, window, snapshot.at)
}

/**
 * Links that match a filter (all of them without one).
 *
 * @example
 * const recent = selectLinks(snapshot, { window: 3_600_000 })
 */
export function selectLinks(snapshot: MeshSnapshot, filter: LinkFilter = {}): readonly MeshLink[] {
  const num = filter.node === undefined ? undefined : toNodeNum(filter.node)
  if (filter.node !== undefined && num === undefined) return EMPTY
  const since = filter.window === undefined ? undefined : snapshot.at - filter.window
  const sources = filter.sources ? new Set(filter.sources) : undefined
  if (num === undefined && since === undefined && sources === undefined) return snapshot.links
  return snapshot.links.filter(
    (l) =>
      (num === undefined || l.from === num || l.to === num) &&
      (since === undefined || l.lastSeen >= since) &&
      (sources === undefined || sources.has(l.source)),
  )
}

/**
 * Whether two arrays hold the same items (by identity) in the same order.
 *
 * @example
 * sameItems([a, b], [a, b]) // true
 */
export function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a === b) return true
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false
  return true
}
