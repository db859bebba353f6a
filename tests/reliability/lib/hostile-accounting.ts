/**
 * The ingest's accounting identity, and an in-memory source that feeds a list of messages and
 * checks that every one is acknowledged exactly once.
 * @module
 */
import type { Ingest, MetricsSnapshot } from '@meshtap/core'
import type { Ack, MessageHandler, RawMessage, Source } from '@meshtap/protocol'

/** Where every received message went, from the ingest's own counters. */
export interface Accounting {
  received: number
  /** Records committed to the store (one per kept message: a packet's first copy or a copy). */
  written: number
  /** Records dropped and counted (rate limit, queue shedding, store failure, stopped). */
  dropped: number
  /**
   * Copies a gateway uplinked again (same packet, same gateway): acknowledged, counted as
   * `repeats`, not recorded (0 with an ingest that does not count them).
   */
  repeats: number
  /** Messages that failed to decode and were not kept (kept ones are written or dropped). */
  failedNotKept: number
  /** `written + dropped + repeats + failedNotKept`: equals `received` once the queue is empty. */
  accounted: number
}

/**
 * Reads the identity from a metrics snapshot taken after `stop()` (or `flush()` with nothing
 * arriving). Packets that cannot be decrypted (`NO_MATCHING_KEY`, `PKI_ENCRYPTED`) are counted
 * as `failed` and also kept (written or dropped), so they are taken out of the failed share; this
 * holds with `keepUndecoded: true`, the default.
 */
export function accountingOf(m: MetricsSnapshot): Accounting {
  const c = m.counters
  const failedNotKept = c.failed - c.failedByCode.NO_MATCHING_KEY - c.failedByCode.PKI_ENCRYPTED
  const repeats = (c as { repeats?: number }).repeats ?? 0
  return {
    received: c.received,
    written: c.written,
    dropped: c.dropped,
    repeats,
    failedNotKept,
    accounted: c.written + c.dropped + repeats + failedNotKept,
  }
}

/** Independent tallies from the ingest's events, to check the counters against. */
export interface EventLedger {
  /** Sum of `count` over drops other than `decode-failed`. */
  dropped: number
  /** `decode-failed` drop events. */
  decodeFailed: number
  /** Records in `flush` events (packets + receptions-only copies are all receptions). */
  flushedReceptions: number
  /** Every `error` event's message. */
  errors: string[]
  /** Stops listening. */
  off(): void
}

/** Listens to an ingest's `drop`, `flush` and `error` events and tallies them. */
export function ledgerOf(ingest: Ingest): EventLedger {
  const ledger: EventLedger = {
    dropped: 0,
    decodeFailed: 0,
    flushedReceptions: 0,
    errors: [],
    off: () => {},
  }
  const offs = [
    ingest.on('drop', (e) => {
      if (e.reason === 'decode-failed') ledger.decodeFailed++
      else ledger.dropped += e.count
    }),
    ingest.on('flush', (e) => {
      ledger.flushedReceptions += e.receptions
    }),
    ingest.on('error', (e) => {
      ledger.errors.push(e.message)
    }),
  ]
  ledger.off = () => {
    for (const off of offs) off()
  }
  return ledger
}

/** A {@link Source} over a list of messages that counts the acknowledgements of each. */
export interface ArraySource extends Source {
  /** Resolves when every message was handed over. */
  readonly done: Promise<void>
  /** Messages handed over. */
  delivered(): number
  /** Messages acknowledged 0 times, and acknowledged more than once. */
  ackProblems(): { unacked: number; ackedTwice: number }
  /** What the message handler threw (it never should). */
  readonly thrown: string[]
}

/**
 * Creates a source that delivers `messages` as fast as the pipeline takes them, handing the event
 * loop back every `yieldEvery` messages (so timers and the batch writer run, as with a broker).
 */
export function createArraySource(
  messages: Iterable<RawMessage>,
  options: { yieldEvery?: number; name?: string } = {},
): ArraySource {
  const yieldEvery = options.yieldEvery ?? 1024
  const acks: number[] = []
  const thrown: string[] = []
  let delivered = 0
  let stopped = false
  let resolveDone!: () => void
  const done = new Promise<void>((r) => {
    resolveDone = r
  })
  async function run(onMessage: MessageHandler) {
    let i = 0
    for (const message of messages) {
      if (stopped) break
      const n = i++
      acks[n] = 0
      const ack: Ack = () => {
        acks[n] = (acks[n] ?? 0) + 1
      }
      delivered++
      try {
        onMessage(message, ack)
      } catch (e) {
        thrown.push(String(e))
      }
      if (i % yieldEvery === 0) await new Promise<void>((r) => setImmediate(r))
    }
    resolveDone()
  }
  return {
    name: options.name ?? 'array',
    done,
    start(onMessage) {
      void run(onMessage)
      return Promise.resolve()
    },
    async stop() {
      stopped = true
    },
    delivered: () => delivered,
    thrown,
    ackProblems() {
      let unacked = 0
      let ackedTwice = 0
      for (const a of acks) {
        if (a === 0) unacked++
        else if (a > 1) ackedTwice++
      }
      return { unacked, ackedTwice }
    },
  }
}
