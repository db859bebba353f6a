import type { NodeRef, PortNumName, WireEvent, WireEventKind } from '@meshtap/protocol'
import { useEffect, useRef } from 'react'
import { useClientFor, useStable } from './meshtap-provider.js'
import { toNodeNum } from './selectors.js'

/**
 * Which events {@link useMeshEvents} passes on (applied in the browser, to the events the
 * connection receives). Fields combine with AND, values of a field with OR.
 *
 * @example
 * const filter: MeshEventFilter = { kinds: ['packet'], portnums: ['TEXT_MESSAGE_APP'], channels: ['LongFast'] }
 */
export interface MeshEventFilter {
  kinds?: readonly WireEventKind[]
  /** Events about these nodes (sender or destination of packets; the node of node events). */
  nodes?: readonly NodeRef[]
  /** Packets, receptions and undecoded packets on these channels. */
  channels?: readonly string[]
  /** Packets of these ports (numbers or names). */
  portnums?: readonly (number | PortNumName)[]
}

function compile(filter: MeshEventFilter | undefined): (e: WireEvent) => boolean {
  if (!filter) return () => true
  const kinds = filter.kinds ? new Set<string>(filter.kinds) : undefined
  const nodes = filter.nodes
    ? new Set(filter.nodes.map(toNodeNum).filter((n) => n !== undefined))
    : undefined
  const channels = filter.channels ? new Set(filter.channels) : undefined
  const ports = filter.portnums ? new Set<number | string>(filter.portnums) : undefined
  return (e) => {
    if (kinds && !kinds.has(e.kind)) return false
    let from: number | undefined
    let to: number | undefined
    let channel: string | undefined
    switch (e.kind) {
      case 'packet':
        from = e.packet.packet.from
        to = e.packet.packet.to
        channel = e.packet.packet.channelId
        if (ports) {
          const p = e.packet.packet
          if (!ports.has(p.portnum) && !(p.portnumName && ports.has(p.portnumName))) return false
        }
        break
      case 'reception': {
        const i = e.reception.packetKey.indexOf(':')
        from = Number(e.reception.packetKey.slice(0, i < 0 ? undefined : i))
        channel = e.reception.channelId
        if (ports) return false
        break
      }
      case 'undecoded':
        from = e.undecoded.failure.packet.from
        to = e.undecoded.failure.packet.to
        channel = e.undecoded.failure.packet.channelId
        if (ports) return false
        break
      case 'node':
        from = e.num
        if (channels || ports) return false
        break
      default:
        if (nodes || channels || ports) return false
    }
    if (nodes && !(from !== undefined && nodes.has(from)) && !(to !== undefined && nodes.has(to))) {
      return false
    }
    if (channels && (channel === undefined || !channels.has(channel))) return false
    return true
  }
}

/**
 * Calls `callback` for every event the connection receives that matches `filter` (as it
 * arrives, not batched to frames), without re-rendering the component. The latest `callback` is
 * used, so an inline function is fine; unmounting stops it.
 *
 * @example
 * function Toasts() {
 *   const [last, setLast] = useState<string>()
 *   useMeshEvents(
 *     (e) => { if (e.kind === 'packet' && e.packet.packet.app.type === 'text') setLast(e.packet.packet.app.text) },
 *     { kinds: ['packet'], portnums: ['TEXT_MESSAGE_APP'] },
 *   )
 *   return last ? <div role="status">{last}</div> : null
 * }
 */
export function useMeshEvents(
  callback: (event: WireEvent) => void,
  filter?: MeshEventFilter,
): void {
  const client = useClientFor('useMeshEvents')
  const f = useStable(filter)
  const latest = useRef(callback)
  useEffect(() => {
    latest.current = callback
  })
  useEffect(() => {
    const match = compile(f)
    return client.on('event', (e) => {
      if (match(e)) latest.current(e)
    })
  }, [client, f])
}
