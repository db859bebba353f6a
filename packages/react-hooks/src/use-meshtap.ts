import { useDebugValue, useEffect, useMemo, useRef, useSyncExternalStore } from 'react'
import type { MeshSnapshot } from './mesh-snapshot.js'
import { useClientFor } from './meshtap-provider.js'

/**
 * Subscribes a component to a selection of the snapshot: `selector` picks what it needs,
 * `isEqual` decides whether a new pick is the same as the previous one (the previous value is
 * then returned, and the component does not re-render).
 *
 * @internal
 */
export function useMeshSelection<T>(
  hook: string,
  selector: (snapshot: MeshSnapshot) => T,
  isEqual: (a: T, b: T) => boolean = Object.is,
): T {
  const client = useClientFor(hook)
  // The value last committed, shared by every selector this component has had.
  const committed = useRef<{ value: T } | undefined>(undefined)
  const [getSelection, getServerSelection] = useMemo(() => {
    let memo: { snapshot: MeshSnapshot; value: T } | undefined
    const select = (snapshot: MeshSnapshot): T => {
      if (memo?.snapshot === snapshot) return memo.value
      const next = selector(snapshot)
      const previous = memo ?? committed.current
      const value = previous !== undefined && isEqual(previous.value, next) ? previous.value : next
      memo = { snapshot, value }
      return value
    }
    return [() => select(client.getSnapshot()), () => select(client.getServerSnapshot())] as const
  }, [client, selector, isEqual])
  const value = useSyncExternalStore(client.subscribe, getSelection, getServerSelection)
  useEffect(() => {
    committed.current = { value }
  }, [value])
  useDebugValue(value)
  return value
}

/**
 * Any selection of the live state, for what the other hooks do not cover. The component
 * re-renders only when `isEqual` says the selection changed (by identity by default: select
 * parts of the snapshot, which keep their identity while unchanged, or pass `sameItems` for
 * derived arrays).
 *
 * @example
 * const heardByGateways = useMeshtap((s) => s.stats.receptions)
 * const routers = useMeshtap(
 *   (s) => [...s.nodes.values()].filter((n) => n.user?.role === 'ROUTER'),
 *   sameItems,
 * )
 */
export function useMeshtap<T>(
  selector: (snapshot: MeshSnapshot) => T,
  isEqual?: (a: T, b: T) => boolean,
): T {
  return useMeshSelection('useMeshtap', selector, isEqual)
}
