import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createMeshSimulator,
  type MeshSimulator,
  type MeshSimulatorOptions,
  type SimulatedMessage,
} from '@meshtap/core'
import { toCaptureLine } from '@meshtap/protocol'

/** The topic root the simulator publishes under; the binary fixture stores topics without it. */
export const SIM_ROOT = 'msh/US'

/**
 * Simulated traffic for the ingest benchmark, written once per run:
 * - a binary file for the publisher (`u16 length, topic without the root, u16 length, payload`
 *   per envelope), so that it publishes pre-generated envelopes and spends nothing on simulating;
 * - a capture file (NDJSON `CaptureRecord`s, as `meshtap simulate --out` writes) for the replay.
 */
export interface IngestFixture {
  readonly dir: string
  readonly binFile: string
  readonly captureFile: string
  /** The distinct packet keys that are not map reports, one a line. */
  readonly keysFile: string
  /** Envelopes in the files (the first `envelopes` of the simulation). */
  readonly envelopes: number
  /** Distinct logical packets among them (the simulator's `stats().packets`). */
  readonly packets: number
  /** Envelopes by port name (`stats().byPort`). */
  readonly byPort: Record<string, number>
  /** Map-report envelopes (id 0), their distinct senders. */
  readonly mapReports: { envelopes: number; senders: number }
  readonly avgBytes: number
  readonly nodes: number
  readonly gateways: number
  /** Mean copies per logical packet. */
  readonly copiesPerPacket: number
  /**
   * Every envelope that is not a map report as `packetKey|gatewayId` (the simulator's key, which is
   * the pipeline's `from:id`): the receptions a store must end up with.
   */
  readonly expectedReceptions: ReadonlySet<string>
  /** Makes the binary file hold at least `count` envelopes (continuing the simulation). */
  extendTo(count: number): void
  /** Envelopes in the binary file now (≥ `envelopes` after {@link extendTo}). */
  binEnvelopes(): number
  remove(): void
}

function encodeBin(messages: readonly SimulatedMessage[]): Buffer {
  const parts: Buffer[] = []
  for (const m of messages) {
    if (!m.topic.startsWith(SIM_ROOT)) throw new Error(`unexpected topic ${m.topic}`)
    const topic = Buffer.from(m.topic.slice(SIM_ROOT.length), 'utf8')
    const head = Buffer.alloc(2)
    head.writeUInt16LE(topic.length)
    const len = Buffer.alloc(2)
    len.writeUInt16LE(m.payload.length)
    parts.push(head, topic, len, Buffer.from(m.payload))
  }
  return Buffer.concat(parts)
}

/** Reads a binary fixture: topic suffixes (to append to a root) and payloads. */
export function readBinFixture(file: string): { topics: string[]; payloads: Buffer[] } {
  const buf = readFileSync(file)
  const topics: string[] = []
  const payloads: Buffer[] = []
  let o = 0
  while (o < buf.length) {
    const tl = buf.readUInt16LE(o)
    o += 2
    topics.push(buf.toString('utf8', o, o + tl))
    o += tl
    const pl = buf.readUInt16LE(o)
    o += 2
    payloads.push(buf.subarray(o, o + pl))
    o += pl
  }
  return { topics, payloads }
}

/** Simulates `count` envelopes (whole packets, so possibly a few more) and writes the files. */
export function buildIngestFixture(
  count: number,
  options: MeshSimulatorOptions = { seed: 1 },
): IngestFixture {
  const sim: MeshSimulator = createMeshSimulator({ ...options, root: SIM_ROOT })
  const messages = sim.take(count)
  const stats = sim.stats()
  const dir = mkdtempSync(join(tmpdir(), 'meshtap-bench-ingest-'))
  const binFile = join(dir, 'envelopes.bin')
  const captureFile = join(dir, 'capture.ndjson')
  writeFileSync(binFile, encodeBin(messages))
  const lines: string[] = []
  for (const m of messages) lines.push(toCaptureLine(m))
  writeFileSync(captureFile, `${lines.join('\n')}\n`)

  const expected = new Set<string>()
  const mapSenders = new Set<number>()
  let mapEnvelopes = 0
  let bytes = 0
  for (const m of messages) {
    bytes += m.payload.length
    if (m.id === 0) {
      mapEnvelopes++
      mapSenders.add(m.from)
    } else expected.add(`${m.packetKey}|${m.gatewayId}`)
  }
  const keysFile = join(dir, 'keys.txt')
  const keys = new Set<string>()
  for (const m of messages) if (m.id !== 0) keys.add(m.packetKey)
  writeFileSync(keysFile, `${[...keys].join('\n')}\n`)
  if (expected.size + mapEnvelopes !== messages.length) {
    throw new Error('the simulator published two copies of one packet through one gateway')
  }
  let binCount = messages.length
  return {
    dir,
    binFile,
    captureFile,
    keysFile,
    envelopes: messages.length,
    packets: stats.packets,
    byPort: stats.byPort,
    mapReports: { envelopes: mapEnvelopes, senders: mapSenders.size },
    avgBytes: bytes / messages.length,
    nodes: sim.nodes.length,
    gateways: sim.nodes.filter((n) => n.isGateway).length,
    copiesPerPacket: messages.length / stats.packets,
    expectedReceptions: expected,
    extendTo(target) {
      if (target <= binCount) return
      const more = sim.take(target - binCount)
      appendFileSync(binFile, encodeBin(more))
      binCount += more.length
    },
    binEnvelopes: () => binCount,
    remove() {
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
