import type {
  DropEvent,
  FlushEvent,
  NodeUpdateEvent,
  PacketEvent,
  ReceptionEvent,
  SourceStatus,
  UndecodedEvent,
} from '@meshtap/protocol'
import type { IngestError } from './errors.js'

export type {
  DropEvent,
  FlushEvent,
  NodeUpdateEvent,
  PacketEvent,
  ReceptionEvent,
  UndecodedEvent,
} from '@meshtap/protocol'

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
