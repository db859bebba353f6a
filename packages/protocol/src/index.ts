export { base64ToBytes, bytesToBase64, bytesToHex, hexToBytes } from './base64.js'
export type { CaptureRecord } from './capture.js'
export { parseCaptureLine, toCaptureLine } from './capture.js'
export type { DecodeError, DecodeErrorCode } from './decode-error.js'
export { DECODE_ERROR_CODES } from './decode-error.js'
export type {
  DropEvent,
  FlushEvent,
  LiveEvents,
  LiveSource,
  NodeUpdateEvent,
  PacketEvent,
  PriorityLevel,
  ReceptionEvent,
  UndecodedEvent,
} from './events.js'
export { BROADCAST_NUM, isBroadcast, nodeIdFromNum, nodeNumFromId, toUint32 } from './node-id.js'
export type { GatewayHearing, NodeField, NodePosition, NodeState } from './node-state.js'
export {
  applyPacketToNode,
  applyReceptionToNode,
  MAX_NODE_GATEWAYS,
  newNodeState,
} from './node-state.js'
export type {
  AppPayload,
  DataInfo,
  DecodedPacket,
  DecodeFailure,
  DerivedInfo,
  EnvelopeInfo,
  MapReportPayload,
  NeighborInfoPayload,
  NodeInfoPayload,
  OpaquePayload,
  PacketHeader,
  PacketKind,
  PartialPacket,
  PaxcounterPayload,
  PositionPayload,
  RawBytes,
  ReceptionClass,
  RoutingPayload,
  StoreForwardPayload,
  TelemetryPayload,
  TelemetryVariant,
  TextPayload,
  TracerouteHop,
  TraceroutePayload,
  WaypointPayload,
} from './packet.js'
export type {
  MapReportMessage,
  MetricsMessage,
  NeighborInfoMessage,
  NeighborMessage,
  OpenMessage,
  PaxcountMessage,
  PositionMessage,
  RouteDiscoveryMessage,
  RoutingMessage,
  StoreAndForwardMessage,
  TelemetryMessage,
  UserMessage,
  WaypointMessage,
} from './payloads.js'
export type { PortNumName } from './portnums.js'
export { isKnownPortnum, PortNum, portnumName } from './portnums.js'
export { isPlausibleFix, precisionRadiusM } from './precision.js'
export * from './queries.js'
export type { RawMessage } from './raw-message.js'
export type { Err, Ok, Result } from './result.js'
export { err, ok } from './result.js'
export type { Ack, MessageHandler, Source, SourceState, SourceStatus } from './source.js'
export type {
  PacketKey,
  Reception,
  RedecryptableStore,
  RedecryptDecode,
  RedecryptOptions,
  RedecryptResult,
  Store,
  StoreCounts,
  StoredPacket,
  UndecodedPacket,
  WriteBatch,
} from './store.js'
export * from './wire.js'
