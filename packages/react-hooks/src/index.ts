export type { MeshtapClientErrorCode } from './errors.js'
export { MeshtapClientError } from './errors.js'
export type { UpdateScheduler } from './frame-scheduler.js'
export { animationFrameScheduler } from './frame-scheduler.js'
export type {
  ConnectionState,
  ConnectionStatus,
  GatewayInfo,
  MeshLink,
  MeshLinkSource,
  MeshMessage,
  MeshSnapshot,
  MeshStats,
  NodeTelemetry,
  PositionSample,
  TelemetrySample,
  TracerouteSample,
} from './mesh-snapshot.js'
export type { MeshBufferLimits } from './mesh-store.js'
export type {
  MeshtapClient,
  MeshtapClientEvents,
  MeshtapClientOptions,
  MeshtapWebSocket,
  MeshtapWebSocketConstructor,
  ReconnectOptions,
} from './meshtap-client.js'
export { createMeshtapClient } from './meshtap-client.js'
export type { MeshtapProviderProps } from './meshtap-provider.js'
export { MeshtapProvider, useMeshtapClient } from './meshtap-provider.js'
export type {
  ChannelRef,
  LinkFilter,
  MessageTarget,
  NodeFilter,
  PositionTarget,
  SampleWindow,
} from './selectors.js'
export {
  sameItems,
  selectLinks,
  selectMessages,
  selectNodes,
  selectPositions,
  selectTelemetry,
  selectTraceroutes,
} from './selectors.js'
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
