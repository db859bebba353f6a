import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createIngest, type Ingest, type IngestHealth } from '@meshtap/core'
import { createMqttSource } from '@meshtap/core/mqtt'
import { createSqliteStore } from '@meshtap/sqlite-store'
import Database from 'better-sqlite3'
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
import { reportResult } from '../lib/report.js'

const dir = mkdtempSync(join(tmpdir(), 'meshtap-fault-full-'))
let broker: Awaited<ReturnType<typeof startTestBroker>> | undefined
let ingest: Ingest | undefined
let publisher: Publisher | undefined
let database: Database.Database | undefined

beforeAll(async () => {
  broker = await startTestBroker(join(dir, 'broker'))
})
afterAll(async () => {
  await publisher?.close().catch(() => {})
  await ingest?.stop().catch(() => {})
  database?.close()
  await broker?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('disk full (a SQLite size limit: PRAGMA max_page_count on the store connection)', () => {
  it('fails with a clear SQLITE_FULL error, keeps running and reports failing writes, then stores what it kept when space returns', async () => {
    const url = broker?.url as string
    const root = `msh/fault-full-${process.pid}`
    const messages = simulatedMessages(41, 3000, root)
    const warmup = messages.slice(0, 200)
    const whileFull = messages.slice(200, 1200)
    const later = messages.slice(1200)
    const path = join(dir, 'full.db')
    // The test opens the connection the store writes through, so it can cap the file's size: the
    // limit is per connection, and the store keeps the connection it is given.
    database = new Database(path)
    ingest = createIngest({
      sources: [createMqttSource({ brokers: [{ url, topics: [`${root}/#`], qos: 1 }] })],
      store: createSqliteStore({ database, retention: false }),
      rateLimit: false,
      queueCapacity: 5000,
      batch: { maxRecords: 200, maxDelayMs: 50, retryInitialDelayMs: 50, retryMaxDelayMs: 300 },
    })
    const errors: { code?: string; message: string }[] = []
    ingest.on('error', (e) => errors.push({ message: e.message, code: e.code }))
    await ingest.start()
    await waitFor('the source to connect', () => ingest?.metrics().gauges.sourcesConnected === 1)
    publisher = await connectPublisher(url, `fault-full-pub-${process.pid}`)
    await publisher.publishAll(warmup)
    await waitFor('the warm-up stored', () => ingest?.metrics().counters.written === warmup.length)

    // The disk is full: the file may not grow by more than a few pages.
    const pages = database.pragma('page_count', { simple: true }) as number
    database.pragma(`max_page_count = ${pages + 8}`)
    await publisher.publishAll(whileFull)
    const failing = await waitFor('writes to fail', () => {
      const h = ingest?.health()
      return h?.writes === 'failing' && h.consecutiveWriteFailures >= 3 ? h : undefined
    })
    expect(failing.lastWriteError?.code).toBe('SQLITE_FULL')
    expect(failing.lastWriteError?.transient).toBe(true)
    expect(failing.lastWriteError?.message).toMatch(/\[sqlite-store\].*full/)
    expect(errors.some((e) => e.code === 'STORE_WRITE_FAILED' && /full/.test(e.message))).toBe(true)
    // Still running: it keeps receiving and holds the backlog, it does not throw or exit.
    await publisher.publishAll(later.slice(0, 300))
    await waitFor('the messages published while full to arrive', () => {
      const m = ingest?.metrics()
      return m && m.counters.received === 1500 ? m : undefined
    })
    const stuck = ingest.health() as IngestHealth
    expect(stuck.writes).toBe('failing')
    expect(stuck.queueDepth).toBeGreaterThan(0)

    // Space returns: the retries go through, health recovers, nothing kept is lost.
    database.pragma('max_page_count = 1073741823')
    await publisher.publishAll(later.slice(300))
    await waitFor(
      'every message written',
      () => {
        const m = ingest?.metrics()
        return m && m.counters.received === messages.length && m.gauges.queueDepth === 0
      },
      30_000,
    )
    await ingest.flush()
    const recovered = ingest.health()
    const m = ingest.metrics()
    await ingest.stop()
    ingest = undefined
    expect(recovered.writes).toBe('ok')
    expect(recovered.consecutiveWriteFailures).toBe(0)
    expect(m.counters.dropped).toBe(0)
    const stored = readStored(path).receptions
    const storedSet = new Set(stored)
    expect(storedSet.size).toBe(stored.length)
    expect(messages.filter((msg) => !storedSet.has(receptionId(msg))).map(receptionId)).toEqual([])
    reportResult('fault', {
      input: 'disk full (max_page_count)',
      result: `${m.counters.writeErrors} failed write attempts (SQLITE_FULL) while full, health "failing" with the error, ${stuck.queueDepth} records held; after space returned all ${messages.length} stored, none twice, none dropped`,
    })
  })
})
