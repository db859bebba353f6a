import type { NodeRef, NodeState } from '@meshtap/protocol'
import { useMemo } from 'react'
import type { MeshSnapshot } from './mesh-snapshot.js'
import { useStable } from './meshtap-provider.js'
import { type NodeFilter, sameItems, selectNodes, toNodeNum } from './selectors.js'
import { useMeshSelection } from './use-meshtap.js'

/**
 * The nodes that match a filter, most recently heard first (see {@link NodeFilter} for other
 * orders and limits). Returns the same array until a node in it changes, one is added or
 * removed, or the order changes; an inline filter object is fine (it is compared by content).
 *
 * @example
 * function Gateways() {
 *   const nodes = useNodes({ isGateway: true, sort: 'name' })
 *   return <ul>{nodes.map((n) => <li key={n.num}>{n.user?.longName ?? n.id}</li>)}</ul>
 * }
 */
export function useNodes(filter?: NodeFilter): readonly NodeState[] {
  const f = useStable(filter)
  const selector = useMemo(() => {
    const timed = f?.heardWithinMs !== undefined
    let memo: { nodes: MeshSnapshot['nodes']; at: number; value: NodeState[] } | undefined
    return (s: MeshSnapshot): readonly NodeState[] => {
      if (memo && memo.nodes === s.nodes && (!timed || memo.at === s.at)) return memo.value
      memo = { nodes: s.nodes, at: s.at, value: selectNodes(s, f) }
      return memo.value
    }
  }, [f])
  return useMeshSelection('useNodes', selector, sameItems)
}

/**
 * One node's state (`undefined` until it is known). Re-renders only when that node changes.
 *
 * @example
 * function NodeName({ id }: { id: string }) {
 *   const node = useNode(id)
 *   return <span>{node?.user?.longName ?? id}</span>
 * }
 */
export function useNode(id: NodeRef): NodeState | undefined {
  const num = toNodeNum(id)
  const selector = useMemo(
    () => (s: MeshSnapshot) => (num === undefined ? undefined : s.nodes.get(num)),
    [num],
  )
  return useMeshSelection('useNode', selector)
}
