import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createIngest, createMeshSimulator } from '@meshtap/core'
import { createSqliteStore } from '@meshtap/sqlite-store'
import Database from 'better-sqlite3'
import Fastify from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStatus } from '../src/status.js'
import { getJson, startTestServer, TOKEN, until } from './helpers.js'

let t: Awaited<ReturnType<typeof startTestServer>>
let base: string
const auth = { authorization: `Bearer ${TOKEN}` }

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return port
}

beforeAll(async () => {
  const port = await closedPort()
  t = await startTestServer([
    `--broker=mqtt://user:hunter2-secret@127.0.0.1:${port}?topic=msh/EU_868/%23`,
  ])
  base = t.server.url
})
afterAll(async () => {
  await t?.close()
})

describe('health', () => {
  it('is 503 (degraded) while an upstream broker cannot be reached, and says which', async () => {
    const h = await until(async () => {
      const r = await getJson(`${base}/api/health`)
      return r.status === 503 ? r : undefined
    })
    expect(h.body.status).toBe('degraded')
    expect(h.body.database.ok).toBe(true)
    const broker = h.body.sources.items.find((s: { id: string }) => s.id === 'broker-1')
    expect(broker).toMatchObject({
      kind: 'broker',
      state: expect.stringMatching(/reconnecting|offline/),
    })
    expect(broker.endpoint).not.toContain('hunter2')
    expect(JSON.stringify(h.body)).not.toContain('hunter2')
    const metrics = await (await fetch(`${base}/metrics`)).text()
    expect(metrics).toMatch(/^meshtap_source_up\{source="broker-1",kind="broker"\} 0/m)
    expect(metrics).not.toContain('hunter2')
  })

  it('is 200 again once the operator stops that source', async () => {
    const stop = await getJson(`${base}/api/control/sources/broker-1/stop`, {
      method: 'POST',
      headers: auth,
    })
    expect(stop.body.source.state).toBe('stopped')
    const h = await getJson(`${base}/api/health`)
    expect(h.status).toBe(200)
    expect(h.body.status).toBe('ok')
  })
})

describe('health while the store cannot write', () => {
  it('is degraded with the store error while writes fail (disk full), and ok once they go through again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshtap-health-full-'))
    const database = new Database(join(dir, 'full.db'))
    const store = createSqliteStore({ database, retention: false })
    const ingest = createIngest({
      store,
      rateLimit: false,
      batch: { maxRecords: 50, maxDelayMs: 10, retryInitialDelayMs: 20, retryMaxDelayMs: 50 },
    })
    const app = Fastify()
    try {
      const status = createStatus({
        app,
        ingest,
        store,
        ws: () => ({ metrics: () => ({ clients: 0 }) }) as never,
        sources: () => [],
        rate: () => ({ envelopesPerSec: 0, packetsPerSec: 0 }),
        memoryLimitMb: 1_000_000,
        diagnosticsNodes: () => 0,
      })
      await ingest.start()
      const sim = createMeshSimulator({ seed: 3, pkiShare: 0 })
      for (const m of sim.take(100)) ingest.push(m)
      await ingest.flush()
      expect((await status.health()).status).toBe('ok')

      // Disk full: the file may not grow any more.
      const pages = database.pragma('page_count', { simple: true }) as number
      database.pragma(`max_page_count = ${pages}`)
      for (const m of sim.take(500)) ingest.push(m)
      const h = await until(async () => {
        const r = await status.health()
        return r.status === 'degraded' ? r : undefined
      })
      const db = h.database as {
        ok: boolean
        read: { ok: boolean }
        writes: Record<string, unknown>
      }
      expect(db.ok).toBe(false)
      expect(db.read.ok).toBe(true) // reads still work: it is the writes that fail
      expect(db.writes).toMatchObject({ ok: false, code: 'SQLITE_FULL' })
      expect(String(db.writes.error)).toMatch(/full/)
      expect(db.writes.queueDepth).toBeGreaterThan(0)

      // Space returns.
      database.pragma('max_page_count = 1073741823')
      const ok = await until(async () => {
        const r = await status.health()
        return r.status === 'ok' ? r : undefined
      })
      expect((ok.database as { writes: { ok: boolean } }).writes.ok).toBe(true)
      await ingest.flush()
      expect(ingest.metrics().counters.dropped).toBe(0)
    } finally {
      await ingest.stop().catch(() => {})
      await app.close()
      database.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('does not count rows: one key lookup, whatever the size of the database', async () => {
    let counted = 0
    let looked = 0
    const real = createSqliteStore({ path: ':memory:', retention: false })
    await real.init?.()
    const spy: typeof real = Object.assign(Object.create(null), real, {
      counts: () => {
        counted++
        return real.counts()
      },
      getPacket: (key: Parameters<typeof real.getPacket>[0]) => {
        looked++
        return real.getPacket(key)
      },
    })
    const app = Fastify()
    const ingest = createIngest({ store: spy, closeStore: false })
    const status = createStatus({
      app,
      ingest,
      store: spy,
      ws: () => ({ metrics: () => ({ clients: 0 }) }) as never,
      sources: () => [],
      rate: () => ({ envelopesPerSec: 0, packetsPerSec: 0 }),
      memoryLimitMb: 1_000_000,
      diagnosticsNodes: () => 0,
    })
    const h = await status.health()
    await app.close()
    await real.close?.()
    expect(h.status).toBe('ok')
    expect(counted).toBe(0)
    expect(looked).toBe(1)
  })
})
