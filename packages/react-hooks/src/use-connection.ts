import { useMemo } from 'react'
import type { ConnectionStatus, MeshSnapshot } from './mesh-snapshot.js'
import { useClientFor } from './meshtap-provider.js'
import { useMeshSelection } from './use-meshtap.js'

/**
 * What {@link useConnection} returns: the status, and functions to act on the connection.
 *
 * @example
 * const { state, error, retries, nextRetryAt, retry }: Connection = useConnection()
 */
export interface Connection extends ConnectionStatus {
  /** Reconnects now instead of waiting for the backoff (or connects again after `closed`). */
  retry(): void
}

const selectConnection = (s: MeshSnapshot) => s.connection

/**
 * The connection's status (`connecting | open | reconnecting | closed`, whether the data is
 * complete, the last error, the retry count and the next retry's time) and `retry()`.
 * Re-renders only when the status changes.
 *
 * @example
 * function ConnectionBadge() {
 *   const { state, error, nextRetryAt, retry } = useConnection()
 *   if (state === 'open') return <span>live</span>
 *   return (
 *     <span title={error?.message}>
 *       {state}{nextRetryAt ? ` (next try ${new Date(nextRetryAt).toLocaleTimeString()})` : ''}
 *       <button type="button" onClick={retry}>retry now</button>
 *     </span>
 *   )
 * }
 */
export function useConnection(): Connection {
  const client = useClientFor('useConnection')
  const status = useMeshSelection('useConnection', selectConnection)
  return useMemo(() => ({ ...status, retry: () => client.retry() }), [status, client])
}
