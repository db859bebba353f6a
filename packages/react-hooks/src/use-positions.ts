import { useMemo } from 'react'
import type { MeshSnapshot, PositionSample } from './mesh-snapshot.js'
import { useStable } from './meshtap-provider.js'
import { type PositionTarget, type SampleWindow, sameItems, selectPositions } from './selectors.js'

import { useMeshSelection } from './use-meshtap.js'

/**
 * Positions, oldest first: a node's track (`'!fa75f7c0'` or a number), the positions reported
 * in a bounding box or on a channel (`{ channel: 'LongFast' }`) by every node, or all
 * (`undefined`), within an optional window. Returns the same array until that selection changes.
 *
 * @example
 * function Track({ node }: { node: string }) {
 *   const track = usePositions(node, { ms: 6 * 3_600_000 })
 *   return <Polyline points={track.map((p) => [p.latitude, p.longitude])} />
 * }
 */
export function usePositions(
  target?: PositionTarget,
  window?: SampleWindow,
): readonly PositionSample[] {
  const t = useStable(target)
  const w = useStable(window)
  const selector = useMemo(() => {
    const timed = w !== undefined && (typeof w === 'number' || w.ms !== undefined)
    let memo: { input: unknown; at: number; value: readonly PositionSample[] } | undefined
    return (s: MeshSnapshot) => {
      const input = s.positions
      if (memo && memo.input === input && (!timed || memo.at === s.at)) return memo.value
      memo = { input, at: s.at, value: selectPositions(s, t, w) }
      return memo.value
    }
  }, [t, w])
  return useMeshSelection('usePositions', selector, sameItems)
}
