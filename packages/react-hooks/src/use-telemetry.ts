import type { NodeRef, TelemetryVariant } from '@meshtap/protocol'
import { useMemo } from 'react'
import type { MeshSnapshot, TelemetrySample } from './mesh-snapshot.js'
import { useStable } from './meshtap-provider.js'
import { type ChannelRef, type SampleWindow, sameItems, selectTelemetry } from './selectors.js'
import { useMeshSelection } from './use-meshtap.js'

/**
 * Telemetry of one kind (`device`, `environment`, `power`, …), oldest first, within an optional
 * window: one node's, or every node's on a channel (`{ channel: 'LongFast' }`). Re-renders only
 * when that selection changes.
 *
 * @example
 * function Battery({ node }: { node: string }) {
 *   const samples = useTelemetry(node, 'device', { count: 48 })
 *   const last = samples.at(-1)?.metrics.batteryLevel
 *   return <Sparkline values={samples.map((s) => Number(s.metrics.batteryLevel ?? 0))} label={`${last ?? '?'} %`} />
 * }
 */
export function useTelemetry(
  target: NodeRef | ChannelRef,
  kind: TelemetryVariant = 'device',
  window?: SampleWindow,
): readonly TelemetrySample[] {
  const t = useStable(target)
  const w = useStable(window)
  const selector = useMemo(() => {
    const timed = w !== undefined && (typeof w === 'number' || w.ms !== undefined)
    let memo: { input: unknown; at: number; value: readonly TelemetrySample[] } | undefined
    return (s: MeshSnapshot) => {
      const input = s.telemetry
      if (memo && memo.input === input && (!timed || memo.at === s.at)) return memo.value
      memo = { input, at: s.at, value: selectTelemetry(s, t, kind, w) }
      return memo.value
    }
  }, [t, kind, w])
  return useMeshSelection('useTelemetry', selector, sameItems)
}
