import type { RawMessage } from './raw-message.js'

/**
 * Acknowledges a message to its source. The pipeline calls it once the message's effects are
 * committed to the store (or the message was definitively discarded: a duplicate, a counted
 * failure, a counted drop). Sources that need no acknowledgement ignore it. Calling it twice is harmless.
 */
export type Ack = () => void

/** Called by a source for each message, in the order it received them. */
export type MessageHandler = (message: RawMessage, ack: Ack) => void

/** A source's connection state. */
export type SourceState =
  | 'idle'
  | 'connecting'
  | 'connected'
  | 'reconnecting'
  | 'offline'
  | 'closed'

/** A change of a source's connection state. */
export interface SourceStatus {
  /** The source's name. */
  source: string
  state: SourceState
  /** The broker URL or capture file it concerns, when the source has several. */
  endpoint?: string
  /** Why it is not connected, when known. */
  error?: string
  /** Unix milliseconds. */
  at: number
}

/**
 * Where raw messages come from: an MQTT broker, a capture file, a simulator.
 *
 * Contract: `start` resolves once the source is delivering (or trying to: a broker that is down does
 * not make `start` fail; the source reconnects and reports `status`). Messages go to `onMessage` in
 * arrival order; each carries an {@link Ack}. `stop` stops delivery, releases connections and resolves
 * when no more messages will be delivered. A source is started at most once.
 */
export interface Source {
  readonly name: string
  start(onMessage: MessageHandler): Promise<void>
  stop(): Promise<void>
  /** Subscribes to connection-state changes; returns an unsubscribe function. */
  onStatus?(listener: (status: SourceStatus) => void): () => void
  /** The current state. */
  status?(): SourceStatus
  /**
   * Backpressure: stop handing over messages until {@link Source.resume}, leaving them where they
   * are kept safely (an MQTT broker holding a persistent session's QoS 1 messages, a file). A
   * consumer calls it when it cannot take more without dropping. A source whose undelivered
   * messages would be lost instead (QoS 0 traffic) should not pause, so the consumer can shed them
   * by priority; one message already on its way may still arrive after `pause()`.
   */
  pause?(): void
  /** Resumes delivery after {@link Source.pause}. */
  resume?(): void
}
