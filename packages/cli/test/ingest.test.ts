import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMeshSimulator } from '@meshtap/core'
import { startAedes } from '@meshtap/core/testing'
import { createSqliteStore } from '@meshtap/sqlite-store'
import { connectAsync } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runIngest } from '../src/commands/ingest.js'
import { captureIo } from './capture-io.js'

let broker: Awaited<ReturnType<typeof startAedes>>
let dir: string
beforeAll(async () => {
  broker = await startAedes()
  dir = await mkdtemp(join(tmpdir(), 'meshtap-ingest-'))
})
afterAll(async () => {
  await broker.close()
  await rm(dir, { recursive: true, force: true })
})

describe('meshtap ingest', () => {
  it.each([
    ['', []],
    [' (--writer-thread)', ['--writer-thread']],
  ])(
    'stores every packet once and every copy as a reception, then prints the final counters%s',
    async (_, extra) => {
      const db = join(dir, `mesh${extra.length}.db`)
      const root = `msh/test${Math.random().toString(16).slice(2, 8)}`
      const sim = createMeshSimulator({ seed: 5, root, nodes: 20, gateways: 4 })
      const messages = sim.take(400)
      const packets = new Set(messages.map((m) => m.packetKey)).size
      const o = captureIo()
      const run = runIngest(
        [
          '--url',
          broker.url,
          '--topic',
          `${root}/#`,
          '--db',
          db,
          '--idle-exit-ms',
          // Long enough that a busy machine's stall (the publisher connecting, a slow QoS 1 round
          // trip) does not end the run before everything was published.
          '2000',
          '--no-rate-limit',
          ...extra,
        ],
        o.io,
      )
      // Publish once the collector is subscribed (it says so after the broker's SUBACK): with
      // --writer-thread it starts its thread before it connects, which takes a while on a busy machine.
      const until = Date.now() + 10_000
      while (!/connected to mqtt:/.test(o.err()) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 20))
      }
      const pub = await connectAsync(broker.url)
      for (const m of messages) await pub.publishAsync(m.topic, Buffer.from(m.payload), { qos: 1 })
      await pub.endAsync()
      expect(await run).toBe(0)
      const summary = JSON.parse(o.out().trim())
      expect(Object.keys(summary)).toEqual([
        'received',
        'decoded',
        'failed',
        'packets',
        'receptions',
        'duplicates',
        'rateLimited',
        'dropped',
        'written',
      ])
      expect(summary).toMatchObject({
        received: messages.length,
        packets,
        receptions: messages.length,
        dropped: 0,
        written: messages.length,
      })
      expect(summary.duplicates).toBe(messages.length - packets)
      const store = createSqliteStore({ path: db })
      await store.init?.()
      const counts = await store.counts()
      await store.close?.()
      expect(counts.packets + counts.undecoded).toBe(packets)
      expect(counts.receptions).toBe(messages.length)
      expect(o.err()).toMatch(/connected to mqtt:\/\/127\.0\.0\.1/)
    },
  )

  it('exits 2 with a clear message on bad usage', async () => {
    const o = captureIo()
    expect(await runIngest(['--url', broker.url, '--topic', 'msh/#'], o.io)).toBe(2)
    expect(o.err()).toMatch(/exactly one of --db .* or --pg/)
    const p = captureIo()
    const args = [
      '--url',
      broker.url,
      '--topic',
      'msh/#',
      '--pg',
      'postgres://x',
      '--writer-thread',
    ]
    expect(await runIngest(args, p.io)).toBe(2)
    expect(p.err()).toMatch(/--writer-thread is for a SQLite file \(--db\)/)
  })
})
