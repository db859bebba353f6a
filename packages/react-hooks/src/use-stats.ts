import type { MeshSnapshot, MeshStats } from './mesh-snapshot.js'
import { useMeshSelection } from './use-meshtap.js'

const selectStats = (s: MeshSnapshot) => s.stats

/**
 * Counters: packets, receptions, node updates, packets per port, snapshots, resumes, reconnects,
 * the stream position. Re-renders at most once per frame while data flows.
 *
 * @example
 * function Footer() {
 *   const { packets, nodes, reconnects } = useStats()
 *   return <small>{packets} packets · {nodes} nodes · {reconnects} reconnects</small>
 * }
 */
export function useStats(): MeshStats {
  return useMeshSelection('useStats', selectStats)
}
