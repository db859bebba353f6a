import type { AppPayload, DecodedPacket, DecodeFailure, ReceptionClass } from './packet.js'
import type { RawMessage } from './raw-message.js'
import type { Result } from './result.js'

/**
 * The identity of a logical packet: `"<from>:<id>"`, or for map reports (id 0)
 * `"<from>:0:<bucket>"` with the reception time bucket. Every gateway's copy of a packet has the same key.
 */
export type PacketKey = string

/** One gateway's copy of a packet: who heard it, when and how well. */
export interface Reception {
  /** The logical packet this copy belongs to. */
  packetKey: PacketKey
  /** The gateway that published it (`!xxxxxxxx`), when known. */
  gatewayId?: string
  /** MQTT topic it arrived on. */
  topic?: string
  /** The source (broker) it came from. */
  source?: string
  /** Channel name from the envelope. */
  channelId?: string
  /** Gateway clock at reception, Unix seconds (0 = unknown). */
  rxTime: number
  /** When meshtap received it, Unix milliseconds. */
  receivedAt: number
  rxSnr: number
  rxRssi: number
  hopLimit: number
  hopStart: number
  /** Last byte of the relaying node, when set. */
  relayNode?: number
  hopsAway?: number
  receptionClass: ReceptionClass
  /**
   * This copy's own decoded payload, where copies differ in content (traceroutes: each gateway
   * rewrites and re-encrypts them). Absent when it equals the logical packet's.
   */
  app?: AppPayload
}

/** A logical packet as stored: the first decoded copy, keyed. */
export interface StoredPacket {
  key: PacketKey
  /** The first copy, fully decoded. */
  packet: DecodedPacket
  /** When meshtap received the first copy, Unix milliseconds. */
  receivedAt: number
}

/**
 * A packet meshtap could not decode but keeps (no key yet, PKI), with its ciphertext, so it can be
 * decrypted later when the key is added.
 */
export interface UndecodedPacket {
  key: PacketKey
  failure: DecodeFailure
  receivedAt: number
}

/** What one store transaction writes. Packets come before the receptions that refer to them. */
export interface WriteBatch {
  packets: readonly StoredPacket[]
  /** Every copy, including each packet's first. A reception may refer to a packet of an earlier batch. */
  receptions: readonly Reception[]
  undecoded: readonly UndecodedPacket[]
}

/** Counts of what a store holds. */
export interface StoreCounts {
  packets: number
  receptions: number
  undecoded: number
}

/**
 * Where packets go. Implementations: `createMemoryStore` (core), `@meshtap/sqlite-store`,
 * `@meshtap/pg-store`.
 *
 * Contract (checked by `describeStoreConformance` in `@meshtap/core/testing`):
 * - `writeBatch` writes the whole batch in one transaction, or nothing (it rejects).
 * - It is idempotent: writing a batch again changes nothing (packets are unique per key, receptions
 *   per packet key and gateway, undecoded packets per key and gateway).
 * - A reception is attached to its packet even when the packet was written in an earlier batch, and
 *   kept (not lost) when its packet is not stored.
 * - Batches are written in call order. The caller awaits one before starting the next, unless the
 *   store declares a {@link Store.writeConcurrency} above 1: then it may hand over that many at once,
 *   and the store commits and settles them in call order.
 * - After `close` resolves, writes reject; `close` twice is harmless. The store closes what it
 *   opened, never a client it was given.
 */
export interface Store {
  readonly name: string
  /** Prepares the store (migrations, statements). Called once before the first write. */
  init?(): Promise<void>
  writeBatch(batch: WriteBatch): Promise<void>
  /**
   * How many `writeBatch` calls the store accepts before the first of them settles (default 1). A
   * store that declares more commits the batches in call order and settles their promises in that
   * order, so a pipeline can build and hand over the next batch while the store commits the last
   * one (a store that commits on another thread or machine). A batch that fails does not stop the
   * ones handed over after it: they may commit first.
   */
  readonly writeConcurrency?: number
  /**
   * The same as `writeBatch`, for stores that commit synchronously (an embedded database). When a
   * store has it, the pipeline writes full batches at once, even while a broker is handing over a
   * long burst of messages in one uninterrupted run of callbacks (when no timer or promise runs).
   * Throws what `writeBatch` would reject with. A wrapper that overrides `writeBatch` must
   * override or drop this too, or the pipeline will bypass it.
   */
  writeBatchSync?(batch: WriteBatch): void
  /** Reads one packet by key. */
  getPacket(key: PacketKey): Promise<StoredPacket | undefined>
  /** The receptions of one packet, in arrival order. */
  getReceptions(key: PacketKey): Promise<Reception[]>
  /** How many packets, receptions and undecoded packets the store holds. */
  counts(): Promise<StoreCounts>
  close?(): Promise<void>
}

/**
 * A decode function for a store's `redecrypt` (`RedecryptableStore`): the codec's `decode` (stores cannot
 * import the codec itself — `@meshtap/core` is GPL and the stores are MIT).
 *
 * @example
 * const decode: RedecryptDecode = createCodec({ keys: [{ name: 'Secret', psk }] }).decode
 */
export type RedecryptDecode = (message: RawMessage) => Result<DecodedPacket, DecodeFailure>

/**
 * Options of a store's `redecrypt` (`RedecryptableStore`).
 *
 * @example
 * await store.redecrypt(codec.decode, { chunkSize: 200 })
 */
export interface RedecryptOptions {
  /** Undecoded packets per transaction (the event loop runs between chunks). @default 500 */
  chunkSize?: number
}

/**
 * What a store's `redecrypt` (`RedecryptableStore`) did.
 *
 * @example
 * const { decoded, failed } = await store.redecrypt(codec.decode)
 */
export interface RedecryptResult {
  /** Undecoded copies looked at. */
  scanned: number
  /** Copies that now decode; their packets moved to the normal tables. */
  decoded: number
  /** Copies that still do not decode (kept). */
  failed: number
}

/**
 * A store that keeps undecoded packets with their ciphertext and can run a codec over them again
 * after a key was added, filling its normal tables: adding a channel key later recovers the past.
 *
 * @example
 * const { decoded } = await store.redecrypt(createCodec({ keys: [{ name: 'Secret', psk }] }).decode)
 */
export interface RedecryptableStore extends Store {
  /** Decodes every kept undecoded packet again with `decode`; what now decodes moves over. */
  redecrypt(decode: RedecryptDecode, options?: RedecryptOptions): Promise<RedecryptResult>
}
