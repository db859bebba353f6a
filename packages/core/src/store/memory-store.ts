import type {
  PacketKey,
  Reception,
  Store,
  StoreCounts,
  StoredPacket,
  UndecodedPacket,
  WriteBatch,
} from '@meshtap/protocol'
import { IngestError } from '../errors.js'

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /** Name reported in errors and metrics. @default 'memory' */
  name?: string
}

/** The in-memory store, with its maps exposed read-only for tests and tools. */
export interface MemoryStore extends Store {
  /** Every stored packet by key, in insertion order. */
  readonly packets: ReadonlyMap<PacketKey, StoredPacket>
  /** Every undecoded packet. */
  readonly undecoded: readonly UndecodedPacket[]
}

/**
 * Which reception of its packet this is: one per gateway, or per topic without a gateway. A
 * gateway id that is not empty and does not start with NUL is its own id (no string to build);
 * the other forms (`gateway NUL`, `NUL topic`) all start with NUL, so they never equal one of those.
 */
function receptionId(r: Reception): string {
  const g = r.gatewayId
  if (g !== undefined && g.length > 0 && g.charCodeAt(0) !== 0) return g
  return `${g ?? ''}\u0000${g === undefined ? (r.topic ?? '') : ''}`
}

/**
 * The reference {@link Store}: everything in memory. Records are kept as written (do not change
 * them afterwards); reads return structured clones. For tests, benchmarks and short-lived tools; it is unbounded. After
 * `close()` writes reject but reads still answer (the data is still in memory).
 *
 * @example
 * const store = createMemoryStore()
 * const ingest = createIngest({ sources: [source], store })
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  const name = options.name ?? 'memory'
  const packets = new Map<PacketKey, StoredPacket>()
  const receptions = new Map<PacketKey, Map<string, Reception>>()
  const undecoded = new Map<string, UndecodedPacket>()
  let receptionCount = 0
  let closed = false
  const check = () => {
    if (closed) throw new IngestError('STORE_CLOSED', `[${name}] the store is closed`)
  }
  function write(batch: WriteBatch): void {
    check()
    // Validate first so a bad batch changes nothing (all or nothing).
    for (const p of batch.packets) {
      if (typeof p.key !== 'string') throw new TypeError(`[${name}] a packet without a key`)
    }
    for (const r of batch.receptions) {
      if (typeof r.packetKey !== 'string') {
        throw new TypeError(`[${name}] a reception without a packetKey`)
      }
    }
    // The batch is kept as given (no copy: cloning cost more than the rest of the pipeline); the
    // pipeline never changes a record after handing it over. Reads return copies.
    const copy = batch
    for (const p of copy.packets) if (!packets.has(p.key)) packets.set(p.key, p)
    for (const r of copy.receptions) {
      let list = receptions.get(r.packetKey)
      if (!list) {
        list = new Map()
        receptions.set(r.packetKey, list)
      }
      const id = receptionId(r)
      if (!list.has(id)) {
        list.set(id, r)
        receptionCount++
      }
    }
    for (const u of copy.undecoded) {
      const id = `${u.key}\u0000${u.failure.packet.gatewayId ?? ''}`
      if (!undecoded.has(id)) undecoded.set(id, u)
    }
  }

  return {
    name,
    packets,
    get undecoded() {
      return [...undecoded.values()]
    },
    async init() {
      check()
    },
    async writeBatch(batch: WriteBatch) {
      write(batch)
    },
    writeBatchSync: write,
    async getPacket(key) {
      const p = packets.get(key)
      return p === undefined ? undefined : structuredClone(p)
    },
    async getReceptions(key) {
      return structuredClone([...(receptions.get(key)?.values() ?? [])])
    },
    async counts(): Promise<StoreCounts> {
      return { packets: packets.size, receptions: receptionCount, undecoded: undecoded.size }
    },
    async close() {
      closed = true
    },
  }
}
