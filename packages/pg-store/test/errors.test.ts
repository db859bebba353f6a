import { isTransientStoreError } from '@meshtap/core'
import { batches, workload } from '@meshtap/core/testing'
import { describe, expect, it } from 'vitest'
import { createPgStore, PgStoreError } from '../src/index.js'
import { testDatabase } from './db.js'

const db = await testDatabase()

describe('transient errors keep their code', () => {
  it('a server that does not answer: ECONNREFUSED, transient', async () => {
    const store = createPgStore({
      connectionString: 'postgres://postgres@127.0.0.1:1/nowhere',
      schema: db.schema(),
      retention: false,
    })
    const error = await store.init().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(PgStoreError)
    expect(error).toMatchObject({ code: 'ECONNREFUSED', transient: true })
    expect(isTransientStoreError(error)).toBe(true)
    await store.close()
  })

  it.runIf(db.concurrent)(
    'a connection killed in the middle of a batch: 57P01 (or the lost socket), transient; the retry writes it once',
    async () => {
      const app = `meshtap-victim-${Math.random().toString(36).slice(2, 8)}`
      // The batch's days have their partitions before it is written: the kill hits its transaction.
      const store = createPgStore({
        pool: db.pool({ application_name: app, max: 1 }),
        schema: db.schema(),
        retention: false,
        now: () => 1_764_288_000_000,
        partitionsAhead: 4,
      })
      await store.init()
      const [big] = [
        ...batches(
          workload({ packets: 12_000, nodes: 500, gateways: 40, messages: false }),
          40_000,
        ),
      ]
      if (!big) throw new Error('no batch')
      let killed = 0
      const killer = (async () => {
        for (let i = 0; i < 400 && killed === 0; i++) {
          const r = await db.query(
            `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
             WHERE application_name = $1 AND state IN ('active', 'idle in transaction')`,
            [app],
          )
          killed += r.rows.length
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
      })()
      const error = await store.writeBatch(big).then(
        () => undefined,
        (e: unknown) => e,
      )
      await killer
      expect(killed).toBe(1)
      expect(error).toBeInstanceOf(PgStoreError)
      expect(['57P01', 'ECONNRESET', 'EPIPE', 'CONNECTION_LOST']).toContain(
        (error as PgStoreError).code,
      )
      expect((error as PgStoreError).transient).toBe(true)
      expect((error as Error).message).toMatch(/writing a batch/)
      expect(isTransientStoreError(error)).toBe(true)
      // Nothing of the batch was committed; the retry (on a new connection) writes it once.
      expect(await store.counts()).toEqual({ packets: 0, receptions: 0, undecoded: 0 })
      const t0 = performance.now()
      await store.writeBatch(big)
      const t1 = performance.now()
      await store.writeBatch(big)
      const t2 = performance.now()
      // (The workload repeats a few map report keys: same node, same 10-minute bucket.)
      const keys = new Set(big.packets.map((p) => p.key))
      const copies = new Set(big.receptions.map((r) => `${r.packetKey}|${r.gatewayId}`))
      expect(await store.counts()).toEqual({
        packets: keys.size,
        receptions: copies.size,
        undecoded: 0,
      })
      console.info(
        `batch of ${big.receptions.length} receptions: ${(t1 - t0).toFixed(0)} ms, again (all conflicts) ${(t2 - t1).toFixed(0)} ms`,
      )
      console.info(`killed mid-batch: ${(error as PgStoreError).code}: ${(error as Error).message}`)
      await store.close()
    },
    60_000,
  )
})
