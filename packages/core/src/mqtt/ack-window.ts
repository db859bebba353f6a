/**
 * Holds MQTT PUBACKs until the pipeline acknowledges their messages, and releases them in the order
 * the PUBLISHes arrived (MQTT 3.1.1 §4.6, MQTT 5 §4.6): an acknowledged message whose predecessors
 * are not acknowledged yet waits for them.
 *
 * The window belongs to one network connection. `reset` forgets everything it holds (the
 * connection is gone; the broker redelivers those messages, with DUP set, on the next session), and
 * the acknowledgement functions handed out before a reset become no-ops.
 */
export interface AckWindow<E = unknown> {
  /** Registers a QoS 1 message; returns the function that acknowledges it (idempotent). */
  track(messageId: number): () => void
  /** Messages tracked and not released yet. */
  readonly pending: number
  /** The connection the window belongs to (whatever the caller uses to tell connections apart). */
  readonly epoch: E | undefined
  /** Drops everything held and starts a window for another connection. */
  reset(epoch?: E): void
}

interface Entry {
  readonly messageId: number
  acked: boolean
}

/**
 * Creates an {@link AckWindow}. `release` is called with each message id, in arrival order, as soon
 * as that message and all the ones before it are acknowledged.
 *
 * @example
 * const window = createAckWindow((id) => sendPuback(id))
 * const ack1 = window.track(1)
 * const ack2 = window.track(2)
 * ack2() // nothing sent: 1 is still pending
 * ack1() // sends 1, then 2
 */
export function createAckWindow<E = unknown>(release: (messageId: number) => void): AckWindow<E> {
  let entries: Entry[] = []
  let head = 0
  let generation = 0
  let epoch: E | undefined

  const drain = () => {
    while (head < entries.length && entries[head]!.acked) {
      const { messageId } = entries[head]!
      head++
      release(messageId)
    }
    if (head === entries.length) {
      entries = []
      head = 0
    } else if (head > 1024 && head * 2 > entries.length) {
      entries = entries.slice(head)
      head = 0
    }
  }

  return {
    track(messageId) {
      const entry: Entry = { messageId, acked: false }
      entries.push(entry)
      const gen = generation
      return () => {
        if (gen !== generation || entry.acked) return
        entry.acked = true
        drain()
      }
    },
    get pending() {
      return entries.length - head
    },
    get epoch() {
      return epoch
    },
    reset(next) {
      generation++
      entries = []
      head = 0
      epoch = next
    },
  }
}
