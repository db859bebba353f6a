import type { NodeRef } from '@meshtap/protocol'
import { useMemo } from 'react'
import type { MeshSnapshot, TracerouteSample } from './mesh-snapshot.js'
import { useStable } from './meshtap-provider.js'
import { type ChannelRef, type SampleWindow, sameItems, selectTraceroutes } from './selectors.js'
import { useMeshSelection } from './use-meshtap.js'

/**
 * Traceroutes (requests and replies), oldest first: those a node asked or was asked, those on a
 * channel (`{ channel: 'LongFast' }`), or all of them (`undefined`).
 *
 * @example
 * function Routes({ node }: { node: string }) {
 *   const routes = useTraceroutes(node)
 *   return <ul>{routes.map((t) => <li key={t.key}>{[t.origin, ...t.route.map((h) => h.num), t.destination].join(' → ')}</li>)}</ul>
 * }
 */
export function useTraceroutes(
  target?: NodeRef | ChannelRef,
  window?: SampleWindow,
): readonly TracerouteSample[] {
  const t = useStable(target)
  const w = useStable(window)
  const selector = useMemo(() => {
    const timed = w !== undefined && (typeof w === 'number' || w.ms !== undefined)
    let memo: { input: unknown; at: number; value: readonly TracerouteSample[] } | undefined
    return (s: MeshSnapshot) => {
      const input = s.traceroutes
      if (memo && memo.input === input && (!timed || memo.at === s.at)) return memo.value
      memo = { input, at: s.at, value: selectTraceroutes(s, t, w) }
      return memo.value
    }
  }, [t, w])
  return useMeshSelection('useTraceroutes', selector, sameItems)
}
