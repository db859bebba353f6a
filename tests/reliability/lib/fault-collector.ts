import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import type { IngestSummary } from '@meshtap/cli'
import { createMeshSimulator, type SimulatedMessage } from '@meshtap/core'
import Database from 'better-sqlite3'
import { connectAsync, type MqttClient } from 'mqtt'
import { repoRoot } from './paths.js'

/** The final counters `meshtap ingest` prints on a clean stop. */
export type CollectorSummary = IngestSummary

/** A `meshtap ingest` process started by {@link startCollector}. */
export interface CollectorProcess {
  readonly pid: number
  /** Its stderr so far (status lines, errors). */
  stderr(): string
  /** Whether it is still running. */
  running(): boolean
  /** SIGKILL: no flush, no DISCONNECT, like a crash or an OOM kill. */
  kill(): Promise<void>
  /** SIGTERM, then its exit code and final counters. */
  stop(): Promise<{ code: number | null; summary: CollectorSummary | undefined }>
}

/** Options of {@link startCollector}. */
export interface CollectorOptions {
  url: string
  topic: string
  db: string
  /** A fixed client id with a persistent session at QoS 1 (deferred acks). */
  clientId?: string
  /** More arguments for `meshtap ingest`. */
  extra?: string[]
}

const BIN = join(repoRoot, 'packages/cli/src/bin.ts')

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/**
 * Starts the real collector, `meshtap ingest`, from its sources in a process of its own (one node
 * process: `node --import tsx`, so a SIGKILL reaches the collector itself, not a wrapper), and
 * resolves once it reports that it is connected and subscribed.
 */
export async function startCollector(options: CollectorOptions): Promise<CollectorProcess> {
  const args = [
    '--conditions=@meshtap/source',
    '--import',
    'tsx',
    BIN,
    'ingest',
    '--url',
    options.url,
    '--topic',
    options.topic,
    '--db',
    options.db,
    '--no-rate-limit',
    ...(options.clientId ? ['--qos', '1', '--client-id', options.clientId, '--persistent'] : []),
    ...(options.extra ?? []),
  ]
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  })
  let out = ''
  let err = ''
  child.stdout?.on('data', (d) => (out += d))
  child.stderr?.on('data', (d) => (err += d))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the collector did not connect within 30 s:\n${err}`))
    }, 30_000)
    const check = () => {
      if (/connected to mqtt:/.test(err)) {
        clearTimeout(timer)
        child.stderr?.off('data', check)
        resolve()
      }
    }
    child.stderr?.on('data', check)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`the collector exited (${code ?? signal}) while starting:\n${err}`))
    })
  })
  child.removeAllListeners('exit')
  return {
    pid: child.pid ?? -1,
    stderr: () => err,
    running: () => child.exitCode === null && child.signalCode === null,
    async kill() {
      child.kill('SIGKILL')
      await exited(child)
    },
    async stop() {
      child.kill('SIGTERM')
      await exited(child)
      const line = out.trim().split('\n').at(-1)
      let summary: CollectorSummary | undefined
      try {
        summary = line ? (JSON.parse(line) as CollectorSummary) : undefined
      } catch {
        summary = undefined
      }
      return { code: child.exitCode, summary }
    },
  }
}

/**
 * A seeded simulated mesh whose every envelope maps to exactly one reception row: no PKI direct
 * messages and no map reports (their keys are time buckets), under a topic root of its own.
 */
export function simulatedMessages(seed: number, count: number, root: string): SimulatedMessage[] {
  const sim = createMeshSimulator({
    seed,
    root,
    nodes: 30,
    gateways: 5,
    pkiShare: 0,
    mapReportIntervalSecs: 0,
    mix: { mapreport: 0 },
  })
  return sim.take(count)
}

/** The identity of one envelope in the store: its logical packet and the gateway that sent it. */
export function receptionId(m: Pick<SimulatedMessage, 'packetKey' | 'gatewayId'>): string {
  return `${m.packetKey}@${m.gatewayId}`
}

/** What a SQLite file holds, read through a connection of its own. */
export interface StoredRows {
  /** `packetKey@gatewayId` of every reception row. */
  receptions: string[]
  packets: number
}

/** Reads every reception (as {@link receptionId}) and the packet count from a meshtap SQLite file. */
export function readStored(path: string): StoredRows {
  const db = new Database(path, { fileMustExist: true })
  try {
    db.pragma('busy_timeout = 10000')
    const receptions = (
      db
        .prepare(
          `SELECT p.key || '@' || g.gateway_id AS id FROM receptions r
           JOIN packets p ON p.id = r.packet_ref JOIN gateways g ON g.id = r.gw`,
        )
        .all() as { id: string }[]
    ).map((r) => r.id)
    const packets = (db.prepare('SELECT count(*) AS n FROM packets').get() as { n: number }).n
    return { receptions, packets }
  } finally {
    db.close()
  }
}

/**
 * Reception rows committed so far, or 0 before the file exists: a `count(*)` cheap enough to poll
 * while the collector writes (reading every row, as {@link readStored} does, takes longer the more
 * is stored, so a poll would notice a threshold long after it was passed).
 */
export function storedCount(path: string): number {
  let db: Database.Database
  try {
    db = new Database(path, { fileMustExist: true, readonly: true })
  } catch {
    return 0 // not created yet
  }
  try {
    db.pragma('busy_timeout = 10000')
    return (db.prepare('SELECT count(*) AS n FROM receptions').get() as { n: number }).n
  } catch {
    return 0 // the schema is not created yet
  } finally {
    db.close()
  }
}

/** Compares what was published with what was stored. */
export interface Accounting {
  /** Published envelopes with no reception row. */
  missing: string[]
  /** Reception ids stored more than once (a row per copy would show up here). */
  duplicated: string[]
  /** Reception rows that match nothing published. */
  unexpected: string[]
}

/** Checks every published envelope against the stored reception rows. */
export function account(published: readonly SimulatedMessage[], stored: StoredRows): Accounting {
  const want = new Set(published.map(receptionId))
  const seen = new Map<string, number>()
  for (const id of stored.receptions) seen.set(id, (seen.get(id) ?? 0) + 1)
  return {
    missing: [...want].filter((id) => !seen.has(id)),
    duplicated: [...seen].filter(([, n]) => n > 1).map(([id]) => id),
    unexpected: [...seen.keys()].filter((id) => !want.has(id)),
  }
}

/** Polls `check` every 100 ms until it returns a truthy value. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** A QoS 1 publisher that records which messages the broker acknowledged. */
export interface Publisher {
  readonly client: MqttClient
  /**
   * Publishes the messages at QoS 1, at most `window` unacknowledged at a time; resolves when the
   * broker acknowledged every one (mqtt.js resends unacknowledged ones after a reconnect).
   * `onAck` is called with each message's index as its PUBACK arrives.
   */
  publishAll(
    messages: readonly SimulatedMessage[],
    options?: { window?: number; onAck?: (index: number) => void },
  ): Promise<void>
  close(): Promise<void>
}

/** Connects a publisher that reconnects by itself every 200 ms. */
export async function connectPublisher(url: string, clientId: string): Promise<Publisher> {
  const client = await connectAsync(url, { clientId, reconnectPeriod: 200, connectTimeout: 5000 })
  return {
    client,
    async publishAll(messages, options = {}) {
      const window = options.window ?? 50
      let next = 0
      const worker = async () => {
        while (next < messages.length) {
          const i = next++
          const m = messages[i] as SimulatedMessage
          await client.publishAsync(m.topic, Buffer.from(m.payload), { qos: 1 })
          options.onAck?.(i)
        }
      }
      await Promise.all(Array.from({ length: window }, worker))
    },
    async close() {
      await client.endAsync(true)
    },
  }
}
