import type { DecodeErrorCode } from './decode-error.js'
import type { NodeField, NodeState } from './node-state.js'
import type { SourceStatus } from './source.js'
import type { PacketKey, Reception, StoredPacket, UndecodedPacket } from './store.js'

/** Queue priority levels, most important first. */
export type PriorityLevel = 'critical' | 'high' | 'medium' | 'low'

/** A new logical packet was accepted (it is queued for the store). */
export interface PacketEvent {
  packet: StoredPacket
  /** The first copy's reception. */
  reception: Reception
}

/** A copy of a known packet was accepted as a reception. */
export interface ReceptionEvent {
  reception: Reception
}

/** A packet that could not be decoded is kept (no key, PKI), with its ciphertext. */
export interface UndecodedEvent {
  undecoded: UndecodedPacket
}

/** A node's cached state changed. */
export interface NodeUpdateEvent {
  node: NodeState
  /** Which fields changed. */
  changed: NodeField[]
}

/**
 * Something was not kept, and why:
 * - `decode-failed`: the message could not be decoded and is not kept (malformed, unknown topic, …);
 * - `rate-limited`: its sender is over the per-node rate;
 * - `queue-full`: the queue was full and this record had the lowest priority;
 * - `store-failed`: its batch could not be written after all retries;
 * - `stopped`: it arrived while the ingest was stopping.
 */
export interface DropEvent {
  reason: 'decode-failed' | 'rate-limited' | 'queue-full' | 'store-failed' | 'stopped'
  /** How many records (1 except for whole batches). */
  count: number
  key?: PacketKey
  from?: number
  priority?: PriorityLevel
  /** The decode error, for `decode-failed`. */
  code?: DecodeErrorCode
  message?: string
}

/** A batch was committed. */
export interface FlushEvent {
  packets: number
  receptions: number
  undecoded: number
  /** Write time of the batch, ms. */
  durationMs: number
  /** 1 unless earlier attempts failed. */
  attempt: number
}

/** The live data events an ingest emits (what a server pushes to viewers). */
export interface LiveEvents {
  packet: PacketEvent
  reception: ReceptionEvent
  undecoded: UndecodedEvent
  nodeUpdate: NodeUpdateEvent
  drop: DropEvent
  flush: FlushEvent
  sourceStatus: SourceStatus
}

/**
 * Anything that emits {@link LiveEvents} and keeps the latest state per node — an ingest from
 * `@meshtap/core`, or a change feed from another process. Servers and UIs depend on this shape,
 * not on the ingest itself.
 */
export interface LiveSource {
  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends keyof LiveEvents>(event: E, listener: (payload: LiveEvents[E]) => void): () => void
  /** Latest state per node, for snapshots. */
  readonly cache: {
    get(node: number | string): NodeState | undefined
    list(): NodeState[]
  }
}
