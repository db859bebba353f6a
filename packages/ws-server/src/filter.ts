import {
  DEFAULT_WIRE_EVENT_KINDS,
  type NodeState,
  nodeNumFromId,
  type WireBoundingBox,
  type WireEventKind,
  type WireFilter,
} from '@meshtap/protocol'

/**
 * What a filter tests on an event other than a node update, computed once when the event arrives.
 * @internal
 */
export interface EventMeta {
  kind: Exclude<WireEventKind, 'node'>
  /** Sender. */
  from?: number
  /** Destination (packets only). */
  to?: number
  channel?: string
  /** Gateway id, lower case. */
  gateway?: string
  topic?: string
  /** The event's own position, else the sender's last known one. */
  lat?: number
  lon?: number
}

/**
 * A validated filter, ready to test events. Filters with the same {@link CompiledFilter.key} are
 * the same filter: their clients share one serialised batch.
 * @internal
 */
export interface CompiledFilter {
  /** Canonical form (sorted, normalised). */
  readonly key: string
  /** The filter as the server applies it, for the `subscribed` answer. */
  readonly wire: WireFilter
  readonly wantsNodes: boolean
  /** Whether a node's membership can change with its state (box or gateway criteria). */
  readonly dynamicNodes: boolean
  matchesEvent(meta: EventMeta): boolean
  /** Node criteria only (`nodes`, `gateways`, `bbox`); the kind is checked by `wantsNodes`. */
  matchesNode(node: NodeState): boolean
}

/** Whether a point lies in the box (a box with `west > east` crosses the antimeridian). @internal */
export function inBox(box: WireBoundingBox, lat: number, lon: number): boolean {
  if (lat < box.south || lat > box.north) return false
  return box.west <= box.east
    ? lon >= box.west && lon <= box.east
    : lon >= box.west || lon <= box.east
}

const DATA_KINDS = new Set<WireEventKind>(['packet', 'reception', 'undecoded'])

/**
 * Compiles a validated wire filter (see `validateClientMessage`).
 * @internal
 */
export function compileFilter(filter: WireFilter): CompiledFilter {
  const kinds = [...new Set(filter.kinds ?? DEFAULT_WIRE_EVENT_KINDS)].sort()
  const kindSet = new Set<WireEventKind>(kinds)
  const nodes = filter.nodes
    ? [
        ...new Set(
          filter.nodes.map((n) => (typeof n === 'number' ? n >>> 0 : (nodeNumFromId(n) as number))),
        ),
      ].sort((a, b) => a - b)
    : undefined
  const channels = filter.channels ? [...new Set(filter.channels)].sort() : undefined
  const gateways = filter.gateways
    ? [...new Set(filter.gateways.map((g) => g.toLowerCase()))].sort()
    : undefined
  const roots = filter.roots ? [...new Set(filter.roots)].sort() : undefined
  const bbox = filter.bbox ? { ...filter.bbox } : undefined

  const wire: WireFilter = { kinds }
  if (nodes) wire.nodes = nodes
  if (channels) wire.channels = channels
  if (gateways) wire.gateways = gateways
  if (bbox) wire.bbox = bbox
  if (roots) wire.roots = roots
  const key = JSON.stringify(wire)

  const nodeSet = nodes ? new Set(nodes) : undefined
  const channelSet = channels ? new Set(channels) : undefined
  const gatewaySet = gateways ? new Set(gateways) : undefined
  const rootPrefixes = roots?.map((r) => `${r}/`)
  const hasDataCriteria = Boolean(nodeSet || channelSet || gatewaySet || bbox || roots)

  function matchesData(m: EventMeta): boolean {
    if (nodeSet) {
      const byFrom = m.from !== undefined && nodeSet.has(m.from)
      const byTo = m.kind === 'packet' && m.to !== undefined && nodeSet.has(m.to)
      if (!byFrom && !byTo) return false
    }
    if (channelSet && (m.channel === undefined || !channelSet.has(m.channel))) return false
    if (gatewaySet && (m.gateway === undefined || !gatewaySet.has(m.gateway))) return false
    if (bbox && (m.lat === undefined || m.lon === undefined || !inBox(bbox, m.lat, m.lon))) {
      return false
    }
    if (roots && rootPrefixes) {
      const t = m.topic
      if (t === undefined) return false
      let found = false
      for (let i = 0; i < roots.length; i++) {
        if (t === roots[i] || t.startsWith(rootPrefixes[i] as string)) {
          found = true
          break
        }
      }
      if (!found) return false
    }
    return true
  }

  return {
    key,
    wire,
    wantsNodes: kindSet.has('node'),
    dynamicNodes: Boolean(gatewaySet || bbox),
    matchesEvent(m) {
      if (!kindSet.has(m.kind)) return false
      if (DATA_KINDS.has(m.kind)) return !hasDataCriteria || matchesData(m)
      if (m.kind === 'drop' && nodeSet) return m.from !== undefined && nodeSet.has(m.from)
      return true
    },
    matchesNode(n) {
      if (nodeSet && !nodeSet.has(n.num)) return false
      if (bbox) {
        const p = n.position
        if (!p || !inBox(bbox, p.latitude, p.longitude)) return false
      }
      if (gatewaySet) {
        if (gatewaySet.has(n.id)) return true
        for (const g in n.gateways) {
          if (gatewaySet.has(g) || gatewaySet.has(g.toLowerCase())) return true
        }
        return false
      }
      return true
    },
  }
}
