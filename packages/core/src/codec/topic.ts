import type { PacketKind } from '@meshtap/protocol'

/** The parts of a Meshtastic MQTT topic. */
export interface ParsedTopic {
  /** What the payload on this topic is. */
  kind: Extract<PacketKind, 'envelope' | 'mapreport' | 'json-uplink'>
  /** Everything before `/2/` (`msh`, `msh/US/CA/bayarea`, `device/sck/mesh12`). */
  root: string
  /** The topic type segment: `e` (protobuf), `c` (protobuf, firmware < 2.3), `json`, `map`. */
  type: 'e' | 'c' | 'json' | 'map'
  /** Channel name (`LongFast`, `PKI`, …); absent on map topics. */
  channelId?: string
  /** Gateway id segment (`!abcd1234`); absent on map topics. */
  gatewayId?: string
}

/**
 * Parses a Meshtastic uplink topic of any root depth: `<root>/2/e/<channel>/<gateway>`,
 * `<root>/2/c/<channel>/<gateway>` (firmware before 2.3), `<root>/2/json/<channel>/<gateway>`
 * (legacy JSON) and `<root>/2/map/`. Returns `undefined` for anything else (status, downlink
 * and non-Meshtastic topics).
 *
 * @example
 * parseTopic('msh/US/CA/bayarea/2/e/LongFast/!abcd1234')
 * // { kind: 'envelope', root: 'msh/US/CA/bayarea', type: 'e', channelId: 'LongFast', gatewayId: '!abcd1234' }
 */
export function parseTopic(topic: string): ParsedTopic | undefined {
  if (topic.length === 0 || topic.length > 1024) return undefined
  const seg = topic.split('/')
  const n = seg.length
  // <root>/2/map/ or <root>/2/map
  const mapAt = seg[n - 1] === '' ? n - 3 : n - 2
  if (mapAt >= 1 && seg[mapAt] === '2' && seg[mapAt + 1] === 'map') {
    const root = seg.slice(0, mapAt).join('/')
    if (!validRoot(root)) return undefined
    return { kind: 'mapreport', root, type: 'map' }
  }
  // <root>/2/<type>/<channel>/<gateway>
  const at = n - 4
  if (at < 1 || seg[at] !== '2') return undefined
  const type = seg[at + 1]
  const channelId = seg[at + 2] as string
  const gatewayId = seg[at + 3] as string
  if (type !== 'e' && type !== 'c' && type !== 'json') return undefined
  if (channelId.length === 0 || gatewayId.length === 0) return undefined
  // `<root>/2/json/mqtt/` is the JSON downlink (commands to nodes), not an uplink.
  const root = seg.slice(0, at).join('/')
  if (!validRoot(root)) return undefined
  return {
    kind: type === 'json' ? 'json-uplink' : 'envelope',
    root,
    type,
    channelId,
    gatewayId,
  }
}

function validRoot(root: string): boolean {
  return root.length > 0 && !root.includes('+') && !root.includes('#') && !root.startsWith('/')
}
