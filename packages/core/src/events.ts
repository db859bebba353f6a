import type {
  DecodeErrorCode,
  PacketKey,
  Reception,
  SourceStatus,
  StoredPacket,
  UndecodedPacket,
} from '@meshtap/protocol'
import type { NodeField, NodeState } from './cache/node-cache.js'
import type { IngestError } from './errors.js'
import type { PriorityLevel } from './queue/priority-queue.js'

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

/** The ingest's events and their payloads. */
export interface IngestEvents {
  packet: PacketEvent
  reception: ReceptionEvent
  undecoded: UndecodedEvent
  nodeUpdate: NodeUpdateEvent
  drop: DropEvent
  flush: FlushEvent
  error: IngestError
  sourceStatus: SourceStatus
}

/** Subscribes a listener; returns the function that unsubscribes it. */
export type Subscribe<Events> = <E extends keyof Events>(
  event: E,
  listener: (payload: Events[E]) => void,
) => () => void
