/**
 * The framework-agnostic part of `@meshtap/react-hooks`: the client, its state and the
 * selectors, without React (`import … from '@meshtap/react-hooks/client'` loads no React code).
 *
 * @module
 */
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
