import { randomBytes } from 'node:crypto'
import { createMeshSimulator } from '@meshtap/core'
import { mosquittoUrl, startAedes } from '@meshtap/core/testing'
import { postgresReachable } from '@meshtap/pg-store/testing'
import { connectAsync } from 'mqtt'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type IngestSummary, runIngest } from '../src/commands/ingest.js'
import { captureIo } from './capture-io.js'

/**
 * `meshtap ingest --pg`: against the PostgreSQL server at 127.0.0.1:5432 (MESHTAP_PG_URL for
 * another; required when CI is set) in a fresh database, and Mosquitto at 127.0.0.1:1883 when it
 * runs (required when CI is set: two workers on one MQTT 5 shared subscription), else an embedded
 * aedes broker (no shared subscriptions: one worker).
 *
 * PGlite is not used here: it serves one session, and the CLI's store opens a pool of several
 * connections, so without a PostgreSQL server (and without CI) the file is skipped.
 */
const ADMIN_URL = process.env.MESHTAP_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

const hasPostgres = await postgresReachable(ADMIN_URL)
if (!hasPostgres) {
  const where = ADMIN_URL.replace(/:[^:@/]*@/, ':***@')
  if (process.env.CI)
    throw new Error(`PostgreSQL is required when CI is set: ${where} does not answer`)
  console.warn(
    `NOTICE: meshtap ingest --pg tests skipped: ${where} does not answer (PGlite serves one session, the CLI's store needs a pool)`,
  )
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 60_000) {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe.skipIf(!hasPostgres)('meshtap ingest --pg', () => {
  const dbName = `meshtap_cli_${randomBytes(5).toString('hex')}`
  const url = new URL(ADMIN_URL)
  url.pathname = `/${dbName}`
  const dbUrl = url.href
  let admin: pg.Client
  let db: pg.Pool
  let broker: { url: string; close(): Promise<void>; mqtt5: boolean }

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: ADMIN_URL })
    admin.on('error', () => undefined)
    await admin.connect()
    await admin.query(`CREATE DATABASE ${dbName}`)
    db = new pg.Pool({ connectionString: dbUrl, max: 2 })
    db.on('error', () => undefined)
    const mosquitto = await mosquittoUrl()
    if (mosquitto) broker = { url: mosquitto, close: async () => undefined, mqtt5: true }
    else {
      const aedes = await startAedes()
      broker = { url: aedes.url, close: () => aedes.close(), mqtt5: false }
    }
  })

  afterAll(async () => {
    await db?.end().catch(() => undefined)
    await admin?.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined)
    await admin?.end().catch(() => undefined)
    await broker?.close()
  })

  it('workers on one feed store every packet once and every copy as a reception, and print their counters', async () => {
    const tag = randomBytes(4).toString('hex')
    const root = `msh/clipg${tag}`
    const sim = createMeshSimulator({
      seed: 11,
      root,
      nodes: 30,
      gateways: 6,
      mapReportIntervalSecs: 0,
    })
    const messages = sim.take(900)
    const packets = new Set(messages.map((m) => m.packetKey))
    const copies = new Set(messages.map((m) => `${m.packetKey}|${m.gatewayId}`))
    // Two workers sharing the feed on Mosquitto; one on aedes (no MQTT 5 shared subscriptions).
    const count = broker.mqtt5 ? 2 : 1
    const workers = Array.from({ length: count }, (_, i) => {
      const o = captureIo()
      const stop = new AbortController()
      const args = [
        `--url=${broker.url}`,
        `--topic=${root}/#`,
        `--pg=${dbUrl}`,
        '--qos=1',
        '--no-rate-limit',
        ...(broker.mqtt5 ? [`--share=g${tag}`, `--client-id=meshtap-clipg-${tag}-${i}`] : []),
      ]
      return { o, stop, run: runIngest(args, o.io, { signal: stop.signal }) }
    })
    await until(
      async () => workers.every((w) => /connected to mqtt/.test(w.o.err())),
      'the workers to connect',
    )
    const pub = await connectAsync(broker.url)
    await Promise.all(
      messages.map((m) => pub.publishAsync(m.topic, Buffer.from(m.payload), { qos: 1 })),
    )
    await pub.endAsync()
    await until(async () => {
      const { rows } = await db.query('SELECT count(*)::int AS n FROM meshtap.receptions')
      return rows[0].n >= copies.size
    }, 'every copy to be stored')
    for (const w of workers) w.stop.abort()
    const codes = await Promise.all(workers.map((w) => w.run))
    expect(codes).toEqual(workers.map(() => 0))

    // The database: each packet once (the unique key decides between the workers), every copy.
    const stored = await db.query<{ key: string }>('SELECT key FROM meshtap.packets')
    expect(stored.rows).toHaveLength(packets.size)
    expect(new Set(stored.rows.map((r) => r.key))).toEqual(packets)
    const receptions = await db.query<{ key: string; gateway_id: string }>(
      `SELECT p.key, g.gateway_id FROM meshtap.receptions r
       JOIN meshtap.packets p ON p.id = r.packet_ref JOIN meshtap.gateways g ON g.id = r.gw`,
    )
    expect(receptions.rows).toHaveLength(copies.size)
    expect(new Set(receptions.rows.map((r) => `${r.key}|${r.gateway_id}`))).toEqual(copies)

    // The final counters: every message received by exactly one worker, nothing dropped.
    const summaries = workers.map((w) => JSON.parse(w.o.out().trim()) as IngestSummary)
    const sum = (k: keyof IngestSummary) => summaries.reduce((n, s) => n + s[k], 0)
    expect(sum('received')).toBe(messages.length)
    expect(sum('receptions')).toBe(messages.length)
    expect(sum('written')).toBe(messages.length)
    expect(sum('dropped')).toBe(0)
    if (count === 2) {
      // Both got a share; a packet whose copies went to both workers counts as new in each.
      for (const s of summaries) expect(s.received).toBeGreaterThan(0)
      expect(sum('packets')).toBeGreaterThanOrEqual(packets.size)
    } else {
      expect(sum('packets')).toBe(packets.size)
      expect(sum('duplicates')).toBe(messages.length - packets.size)
    }
  }, 120_000)

  it('exits 1 with a clear message when the database does not answer', async () => {
    const o = captureIo()
    const code = await runIngest(
      [`--url=${broker.url}`, '--topic=msh/none/#', '--pg=postgres://postgres@127.0.0.1:1/nothing'],
      o.io,
    )
    expect(code).toBe(1)
    expect(o.err()).toMatch(/cannot open the database: .*(ECONNREFUSED|connect)/)
    expect(o.out()).toBe('')
  }, 60_000)
})
