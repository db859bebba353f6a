import { useMemo } from 'react'
import type { MeshMessage, MeshSnapshot } from './mesh-snapshot.js'
import { useStable } from './meshtap-provider.js'
import { type MessageTarget, type SampleWindow, sameItems, selectMessages } from './selectors.js'
import { useMeshSelection } from './use-meshtap.js'

/**
 * Text messages, oldest first: of a channel (`'LongFast'` or `{ channel }`), of a node (a number,
 * `'!xxxxxxxx'` or `{ node }`: what it sent and direct messages to it), or all (`undefined`).
 *
 * @example
 * function Chat({ channel }: { channel: string }) {
 *   const messages = useMessages({ channel }, { count: 100 })
 *   return <ol>{messages.map((m) => <li key={m.key}><b>{m.fromId}</b> {m.text}</li>)}</ol>
 * }
 */
export function useMessages(target?: MessageTarget, window?: SampleWindow): readonly MeshMessage[] {
  const t = useStable(target)
  const w = useStable(window)
  const selector = useMemo(() => {
    const timed = w !== undefined && (typeof w === 'number' || w.ms !== undefined)
    let memo: { input: unknown; at: number; value: readonly MeshMessage[] } | undefined
    return (s: MeshSnapshot) => {
      const input = s.messages
      if (memo && memo.input === input && (!timed || memo.at === s.at)) return memo.value
      memo = { input, at: s.at, value: selectMessages(s, t, w) }
      return memo.value
    }
  }, [t, w])
  return useMeshSelection('useMessages', selector, sameItems)
}
