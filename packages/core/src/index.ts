export type { NodeCache, NodeCacheOptions } from './cache/node-cache.js'
export * from './codec/index.js'
export type { DedupOptions } from './dedup/dedup-cache.js'
export type { IngestErrorCode } from './errors.js'
export { IngestError } from './errors.js'
export type {
  DropEvent,
  FlushEvent,
  IngestEvents,
  NodeUpdateEvent,
  PacketEvent,
  ReceptionEvent,
  Subscribe,
  UndecodedEvent,
} from './events.js'
export type { DropReason, HistogramSnapshot, MetricsSnapshot } from './metrics/metrics.js'
export { toPrometheus } from './metrics/metrics.js'
export type { BatchOptions, Ingest, IngestHealth, IngestOptions } from './pipeline/ingest.js'
export { createIngest, isTransientStoreError, packetKeyOf } from './pipeline/ingest.js'
export type { PriorityLevel, PushResult } from './queue/priority-queue.js'
export { BoundedPriorityQueue, PRIORITY_LEVELS, priorityOf } from './queue/priority-queue.js'
export type { RateLimitOptions } from './rate-limit/token-bucket.js'
export type {
  MeshSimulator,
  MeshSimulatorMix,
  MeshSimulatorOptions,
  MeshSimulatorStats,
  SimNode,
  SimPacketType,
  SimulatedMessage,
} from './simulator/index.js'
export { createMeshSimulator, truncateCoordinate } from './simulator/index.js'
export type { ReplaySource, ReplaySourceOptions, ReplayStats } from './source/index.js'
export { createReplaySource } from './source/index.js'
export type { MemoryStore, MemoryStoreOptions } from './store/memory-store.js'
export { createMemoryStore } from './store/memory-store.js'
