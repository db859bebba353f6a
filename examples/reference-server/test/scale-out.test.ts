import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { postgresReachable } from '@meshtap/pg-store/testing'
import { describe, expect, it } from 'vitest'

/**
 * The scale-out deployment (issue 8): `scripts/deploy-test.ts` run as `pnpm deploy-test` runs it —
 * its own Mosquitto, a fresh PostgreSQL database, two `meshtap ingest --pg --share --qos 1
 * --persistent` workers, one web-only reference server with a WebSocket client, worker 1
 * SIGKILLed half-way and restarted. The script defaults to 100,000 envelopes; this test publishes
 * fewer (MESHTAP_DEPLOY_ENVELOPES, default 20,000) to stay within the suite's time budget.
 */
const ROOT = fileURLToPath(new URL('../../..', import.meta.url))
const ADMIN_URL = process.env.MESHTAP_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const ENVELOPES = Number(process.env.MESHTAP_DEPLOY_ENVELOPES ?? 20_000)

const hasMosquitto = !spawnSync('mosquitto', ['-h']).error
const hasPostgres = await postgresReachable(ADMIN_URL)
const missing = [
  hasMosquitto ? '' : 'the mosquitto binary',
  hasPostgres ? '' : `PostgreSQL at ${ADMIN_URL.replace(/:[^:@/]*@/, ':***@')}`,
].filter(Boolean)
if (missing.length > 0) {
  if (process.env.CI) {
    throw new Error(`the scale-out test needs ${missing.join(' and ')} when CI is set`)
  }
  console.warn(`NOTICE: scale-out test skipped: ${missing.join(' and ')} not available`)
}

interface Result {
  ok: boolean
  failures: string[]
  published: { envelopes: number; packets: number; copies: number }
  kill?: { atEnvelope: number; downMs: number; restartedReceived: number }
  stored: {
    packets: number
    duplicatePackets: number
    missingPackets: number
    extraPackets: number
    receptions: number
    missingCopies: number
    extraCopies: number
  }
  summaries: { worker: number; run: number; summary: Record<string, number> }[]
  websocket: {
    events: number
    byWorker: number[]
    duplicates: number
    lagged: number
    coverage: number
  }
}

function runScript(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@meshtap/source', '--import', 'tsx', 'scripts/deploy-test.ts', ...args],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, MESHTAP_PG_URL: ADMIN_URL },
      },
    )
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      err += d
    })
    child.once('exit', (code) => resolve({ code, out, err }))
  })
}

describe.skipIf(missing.length > 0)('scale-out deployment (scripts/deploy-test.ts)', () => {
  it('two workers on one shared subscription, one SIGKILLed half-way: every packet stored once, every copy stored, the web instance pushed both workers’ events', async () => {
    const { code, out, err } = await runScript([
      `--envelopes=${ENVELOPES}`,
      '--workers=2',
      '--timeout-s=45',
      '--json',
    ])
    const line = out.trim().split('\n').at(-1) ?? ''
    expect(line, err).toMatch(/^\{/)
    const r = JSON.parse(line) as Result
    expect(r.failures, err).toEqual([])
    expect(code).toBe(0)

    // Published what was asked, ~3 copies per packet.
    expect(r.published.envelopes).toBeGreaterThanOrEqual(ENVELOPES)
    expect(r.published.copies / r.published.packets).toBeGreaterThan(2)

    // Every distinct packet exactly once, every (packet, gateway) copy as a reception.
    expect(r.stored).toEqual({
      packets: r.published.packets,
      duplicatePackets: 0,
      missingPackets: 0,
      extraPackets: 0,
      receptions: r.published.copies,
      missingCopies: 0,
      extraCopies: 0,
    })

    // The kill happened half-way, and the restarted worker (same client id, persistent
    // session) received messages: the ones in flight to it and queued for it while it was down.
    expect(r.kill?.atEnvelope).toBeGreaterThanOrEqual(Math.floor(ENVELOPES / 2))
    expect(r.kill?.restartedReceived).toBeGreaterThan(0)
    // The killed run printed nothing; the restarted worker 1 and worker 2 flushed and reported.
    expect(r.summaries.map((s) => [s.worker, s.run]).sort()).toEqual([
      [1, 2],
      [2, 1],
    ])
    for (const s of r.summaries) {
      expect(s.summary.dropped).toBe(0)
      expect(s.summary.written).toBe(s.summary.receptions)
    }
    // Between them, the workers that lived to the end received at least their share.
    const received = r.summaries.reduce((n, s) => n + (s.summary.received ?? 0), 0)
    expect(received).toBeGreaterThan(r.published.copies / 2)

    // The web instance (no ingest of its own) pushed events written by each worker, once each.
    expect(r.websocket.byWorker).toHaveLength(2)
    for (const n of r.websocket.byWorker) expect(n).toBeGreaterThan(0)
    expect(r.websocket.duplicates).toBe(0)
    // Without a lag notice (a slow client is resynchronised with a snapshot instead of every
    // event), the client saw every stored copy.
    if (r.websocket.lagged === 0) expect(r.websocket.coverage).toBe(1)
  }, 240_000)
})
