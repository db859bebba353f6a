import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  account,
  type CollectorProcess,
  connectPublisher,
  type Publisher,
  readStored,
  simulatedMessages,
  startCollector,
  storedCount,
  waitFor,
} from '../lib/fault-collector.js'
import { type MosquittoProcess, requireMosquitto, startMosquitto } from '../lib/fault-mosquitto.js'
import { reportResult } from '../lib/report.js'

const run = requireMosquitto('collector crash test')
const dir = mkdtempSync(join(tmpdir(), 'meshtap-fault-crash-'))
let broker: MosquittoProcess | undefined
let defaults: MosquittoProcess | undefined
let publisher: Publisher | undefined
const collectors: CollectorProcess[] = []

beforeAll(async () => {
  if (run) broker = await startMosquitto({ dir: join(dir, 'broker') })
})
afterAll(async () => {
  for (const c of collectors) if (c.running()) await c.kill()
  await publisher?.close().catch(() => {})
  await broker?.stop()
  await defaults?.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe.skipIf(!run)(
  'collector SIGKILLed mid-stream (Mosquitto, QoS 1, persistent session)',
  () => {
    it('loses no message the broker accepted and stores none twice after a SIGKILL and a restart', async () => {
      const url = (broker as MosquittoProcess).url
      const root = `msh/fault-crash-${process.pid}`
      const messages = simulatedMessages(9, 6000, root)
      const db = join(dir, 'crash.db')
      const clientId = `meshtap-fault-crash-${process.pid}`
      const first = await startCollector({ url, topic: `${root}/#`, db, clientId })
      collectors.push(first)
      publisher = await connectPublisher(url, `fault-crash-pub-${process.pid}`)
      // The stream comes in two parts so that the run does not depend on how fast this machine is:
      // the collector is killed while the first part is still coming in and being committed, and
      // the second part is published while it is down, so that more than Mosquitto's default queue
      // limit (max_queued_messages 1000, which would drop part of it) waits for the session.
      const beforeCrash = messages.slice(0, 4000)
      const whileDown = messages.slice(beforeCrash.length)
      let acked = 0
      const publishing = publisher.publishAll(beforeCrash, { window: 100, onAck: () => acked++ })

      // Crash the collector while batches are being committed and more messages keep coming.
      await waitFor('the first 1000 stored receptions', () => storedCount(db) >= 1000)
      await first.kill()
      const ackedByBrokerAtKill = acked
      const storedAtKill = storedCount(db)
      await publishing
      await publisher.publishAll(whileDown, { window: 100 })
      // Everything not committed before the crash waits in the broker for this session.
      expect(messages.length - storedAtKill).toBeGreaterThan(1000)

      const second = await startCollector({ url, topic: `${root}/#`, db, clientId })
      collectors.push(second)
      await waitFor(
        `all ${messages.length} receptions stored`,
        () => storedCount(db) >= messages.length,
        60_000,
      )
      const { code, summary } = await second.stop()
      expect(code).toBe(0)

      const result = account(messages, readStored(db))
      expect(result.missing).toEqual([])
      expect(result.duplicated).toEqual([])
      expect(result.unexpected).toEqual([])
      // The restarted collector got what the crash left uncommitted, and dropped nothing.
      expect(summary?.dropped).toBe(0)
      expect(summary?.received).toBeGreaterThanOrEqual(messages.length - storedAtKill)
      reportResult('fault', {
        input: 'collector crash',
        result: `${messages.length} published (${whileDown.length} of them while the collector was down), ${ackedByBrokerAtKill} accepted by the broker and ${storedAtKill} committed when SIGKILLed; after the restart ${summary?.received} delivered (${(summary?.received ?? 0) - (messages.length - storedAtKill)} redelivered copies of committed rows), 0 lost, 0 stored twice`,
      })
    })

    it("loses messages with Mosquitto's default queue limits (why the settings above are needed)", async () => {
      defaults = await startMosquitto({
        dir: join(dir, 'defaults'),
        settings: { persistence: 'true' },
      })
      const url = defaults.url
      const root = `msh/fault-defaults-${process.pid}`
      const messages = simulatedMessages(10, 3000, root)
      const db = join(dir, 'defaults.db')
      const clientId = `meshtap-fault-defaults-${process.pid}`
      const first = await startCollector({ url, topic: `${root}/#`, db, clientId })
      collectors.push(first)
      const pub = await connectPublisher(url, `fault-defaults-pub-${process.pid}`)
      try {
        const publishing = pub.publishAll(messages, { window: 100 })
        await waitFor('the first stored receptions', () => storedCount(db) >= 100)
        await first.kill()
        await publishing
      } finally {
        await pub.close()
      }
      const second = await startCollector({ url, topic: `${root}/#`, db, clientId })
      collectors.push(second)
      // Wait until the broker has nothing more for this session: the count stops growing.
      let last = -1
      await waitFor('the stored count to settle', async () => {
        const n = storedCount(db)
        if (n === last) return true
        last = n
        await new Promise((r) => setTimeout(r, 2500))
        return false
      })
      await second.stop()
      const result = account(messages, readStored(db))
      expect(result.duplicated).toEqual([])
      expect(result.missing.length).toBeGreaterThan(0)
      reportResult('fault', {
        input:
          "same crash with Mosquitto's defaults (max_queued_messages 1000, max_inflight_messages 20)",
        result: `${result.missing.length} of ${messages.length} messages lost`,
      })
    })
  },
)
