/**
 * `@meshtap/react-hooks`: the client, its state and selectors (also alone, without React, as
 * `@meshtap/react-hooks/client`), plus the provider and hooks.
 *
 * @module
 */
export * from './client.js'
export type { MeshtapProviderProps } from './meshtap-provider.js'
export { MeshtapProvider, useMeshtapClient } from './meshtap-provider.js'
export type { Connection } from './use-connection.js'
export { useConnection } from './use-connection.js'
export { useGateways } from './use-gateways.js'
export { useLinks } from './use-links.js'
export type { MeshEventFilter } from './use-mesh-events.js'
export { useMeshEvents } from './use-mesh-events.js'
export { useMeshtap } from './use-meshtap.js'
export { useMessages } from './use-messages.js'
export { useNode, useNodes } from './use-nodes.js'
export { usePositions } from './use-positions.js'
export { useStats } from './use-stats.js'
export { useTelemetry } from './use-telemetry.js'
export { useTraceroutes } from './use-traceroutes.js'
