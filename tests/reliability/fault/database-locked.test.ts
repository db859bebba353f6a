import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createIngest, type Ingest, type IngestHealth } from '@meshtap/core'
import { createMqttSource } from '@meshtap/core/mqtt'
import { createSqliteStore } from '@meshtap/sqlite-store'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  connectPublisher,
  type Publisher,
  readStored,
  receptionId,
  simulatedMessages,
  waitFor,
} from '../lib/fault-collector.js'
import { startTestBroker } from '../lib/fault-mosquitto.js'
import { repoRoot } from '../lib/paths.js'
import { reportResult } from '../lib/report.js'

const dir = mkdtempSync(join(tmpdir(), 'meshtap-fault-lock-'))
let broker: Awaited<ReturnType<typeof startTestBroker>> | undefined
let ingest: Ingest | undefined
let publisher: Publisher | undefined
let locker: ReturnType<typeof spawn> | undefined

beforeAll(async () => {
  broker = await startTestBroker(join(dir, 'broker'))
})
afterAll(async () => {
  locker?.kill('SIGKILL')
  await publisher?.close().catch(() => {})
  await ingest?.stop().catch(() => {})
  await broker?.close()
  rmSync(dir, { recursive: true, force: true })
})

/**
 * Another process that takes the database's write lock (`BEGIN EXCLUSIVE`) and holds it for
 * `holdMs`; resolves once the lock is held, with a promise of its release.
 */
async function lockDatabase(path: string, holdMs: number): Promise<{ released: Promise<void> }> {
  const script = `
    import Database from 'better-sqlite3'
    const db = new Database(${JSON.stringify(path)})
    db.exec('BEGIN EXCLUSIVE')
    process.stdout.write('locked\\n')
    setTimeout(() => { db.exec('COMMIT'); db.close(); process.stdout.write('released\\n') }, ${holdMs})
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: join(repoRoot, 'tests/reliability'),
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  locker = child
  let out = ''
  child.stdout?.on('data', (d) => (out += d))
  const released = new Promise<void>((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 && out.includes('released')
        ? resolve()
        : reject(new Error(`the lock holder failed (${code})`)),
    ),
  )
  await waitFor('the other process to hold the lock', () => out.includes('locked'))
  return { released }
}

describe('database locked by another process for seconds', () => {
  it('waits and retries, sheds the lowest priorities first (counted), never crashes, and stores everything it kept once the lock is gone', async () => {
    const url = broker?.url as string
    const root = `msh/fault-lock-${process.pid}`
    const messages = simulatedMessages(31, 3000, root)
    const warmup = messages.slice(0, 300)
    const burst = messages.slice(300, 2700)
    const later = messages.slice(2700)
    const db = join(dir, 'locked.db')
    ingest = createIngest({
      sources: [createMqttSource({ brokers: [{ url, topics: [`${root}/#`], qos: 1 }] })],
      store: createSqliteStore({ path: db, busyTimeoutMs: 250, retention: false }),
      rateLimit: false,
      queueCapacity: 600,
      batch: { maxRecords: 200, maxDelayMs: 50, retryInitialDelayMs: 50, retryMaxDelayMs: 400 },
    })
    const shedKeys = new Set<string>()
    const errors: string[] = []
    ingest.on('drop', (e) => {
      if (e.reason === 'queue-full' && e.key) shedKeys.add(e.key)
    })
    ingest.on('error', (e) => errors.push(e.message))
    await ingest.start()
    await waitFor('the source to connect', () => ingest?.metrics().gauges.sourcesConnected === 1)
    publisher = await connectPublisher(url, `fault-lock-pub-${process.pid}`)

    await publisher.publishAll(warmup)
    await waitFor('the warm-up stored', () => ingest?.metrics().counters.written === warmup.length)

    const { released } = await lockDatabase(db, 3000)
    const healthDuringLock: IngestHealth[] = []
    const sampler = setInterval(() => healthDuringLock.push(ingest?.health() as IngestHealth), 100)
    await publisher.publishAll(burst, { window: 100 })
    await released
    clearInterval(sampler)
    // After the lock: the backlog drains (the retry backoff is up to 400 ms, so this takes a
    // moment), and then new messages go straight through, none shed.
    await waitFor(
      'the backlog written after the lock',
      () => ingest?.metrics().gauges.queueDepth === 0 && ingest.health().writes === 'ok',
      30_000,
    )
    const shedBeforeLater = ingest.metrics().counters.droppedByReason['queue-full']
    await publisher.publishAll(later)
    await waitFor(
      'every message received and the queue drained',
      () => {
        const m = ingest?.metrics()
        return m && m.counters.received === messages.length && m.gauges.queueDepth === 0
      },
      30_000,
    )
    await ingest.flush()
    const m = ingest.metrics()
    const health = ingest.health()
    await ingest.stop()
    ingest = undefined

    // It waited and retried (SQLITE_BUSY), and said so while it lasted.
    expect(m.counters.writeErrors).toBeGreaterThan(0)
    expect(errors.some((e) => /SQLITE_BUSY|database is locked/.test(e))).toBe(true)
    const failing = healthDuringLock.find((h) => h.writes === 'failing')
    expect(failing?.lastWriteError?.code).toMatch(/^SQLITE_BUSY/)
    expect(health.writes).toBe('ok')
    // It shed load by priority, counted: the least important first, no critical message.
    expect(m.counters.droppedByReason['queue-full']).toBeGreaterThan(0)
    expect(m.counters.droppedByPriority.low + m.counters.droppedByPriority.medium).toBeGreaterThan(
      0,
    )
    expect(m.counters.droppedByPriority.critical).toBe(0)
    expect(m.counters.droppedByReason['store-failed']).toBe(0)
    // Every message is stored once or was shed with its packet; everything after the lock is stored.
    const stored = readStored(db).receptions
    expect(new Set(stored).size).toBe(stored.length)
    const storedSet = new Set(stored)
    const unaccounted = messages.filter(
      (msg) => !storedSet.has(receptionId(msg)) && !shedKeys.has(msg.packetKey),
    )
    // On failure, say where the missing messages were in the stream and what the counters said.
    const where = (msg: (typeof messages)[number]) => {
      const i = messages.indexOf(msg)
      return i < warmup.length ? 'warm-up' : i < warmup.length + burst.length ? 'lock' : 'later'
    }
    const byPhase: Record<string, number> = {}
    for (const u of unaccounted) byPhase[where(u)] = (byPhase[where(u)] ?? 0) + 1
    const diagnosis = `${unaccounted.length} neither stored nor shed, by phase ${JSON.stringify(byPhase)}; counters ${JSON.stringify(m.counters)}`
    if (unaccounted.length > 0) process.stderr.write(`[fault] ${diagnosis}\n`)
    expect(unaccounted.map(receptionId), diagnosis).toEqual([])
    expect(later.filter((msg) => !storedSet.has(receptionId(msg))).map(receptionId)).toEqual([])
    // Nothing was shed once the backlog was written.
    expect(m.counters.droppedByReason['queue-full']).toBe(shedBeforeLater)
    expect(stored.length).toBe(m.counters.written)
    reportResult('fault', {
      input: 'database locked 3 s',
      result: `${burst.length} published during the lock; ${m.counters.writeErrors} failed write attempts (SQLITE_BUSY) retried; shed ${m.counters.droppedByReason['queue-full']} records (by priority ${JSON.stringify(m.counters.droppedByPriority)}); ${stored.length} stored, none twice`,
    })
  })
})
