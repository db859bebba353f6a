import type { GatewayInfo, MeshSnapshot } from './mesh-snapshot.js'
import { useMeshSelection } from './use-meshtap.js'

const selectGateways = (s: MeshSnapshot) => s.gateways

/**
 * The gateways seen in this session (nodes that publish to MQTT), sorted by id, with how many
 * copies each published and when it was last heard.
 *
 * @example
 * function GatewayTable() {
 *   const gateways = useGateways()
 *   return <table><tbody>{gateways.map((g) => <tr key={g.id}><td>{g.id}</td><td>{g.copies}</td></tr>)}</tbody></table>
 * }
 */
export function useGateways(): readonly GatewayInfo[] {
  return useMeshSelection('useGateways', selectGateways)
}
