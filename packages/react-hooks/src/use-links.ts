import { useMemo } from 'react'
import type { MeshLink, MeshSnapshot } from './mesh-snapshot.js'
import { useStable } from './meshtap-provider.js'
import { type LinkFilter, sameItems, selectLinks } from './selectors.js'
import { useMeshSelection } from './use-meshtap.js'

/**
 * Radio links between nodes (who heard whom, with the latest SNR), learnt from neighbour
 * reports, traceroutes and direct receptions; optionally only a node's, only some sources', or
 * only recent ones.
 *
 * @example
 * function LinkLayer() {
 *   const links = useLinks({ window: 3_600_000 })
 *   return <>{links.map((l) => <Edge key={l.key} from={l.from} to={l.to} snr={l.snr} />)}</>
 * }
 */
export function useLinks(filter?: LinkFilter): readonly MeshLink[] {
  const f = useStable(filter)
  const selector = useMemo(() => {
    const timed = f?.window !== undefined
    let memo: { input: unknown; at: number; value: readonly MeshLink[] } | undefined
    return (s: MeshSnapshot) => {
      if (memo && memo.input === s.links && (!timed || memo.at === s.at)) return memo.value
      memo = { input: s.links, at: s.at, value: selectLinks(s, f) }
      return memo.value
    }
  }, [f])
  return useMeshSelection('useLinks', selector, sameItems)
}
