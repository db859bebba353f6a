export type { WsCredentials } from './auth.js'
export { credentialsOf } from './auth.js'
export type { WsServerErrorCode } from './errors.js'
export { WsServerError } from './errors.js'
export type { WsSnapshotStore, WsStoreNode } from './snapshot-store.js'
export type {
  WsConnectionInfo,
  WsDeflateOptions,
  WsServer,
  WsServerMetrics,
  WsServerOptions,
  WsUpgradeServer,
} from './ws-server.js'
export { createWsServer } from './ws-server.js'
