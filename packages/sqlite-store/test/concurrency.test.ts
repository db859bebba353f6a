import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import { batches, workload } from '@meshtap/core/testing'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { createSqliteStore } from '../src/index.js'
import { tmpFile } from './helpers.js'

const driver = createRequire(import.meta.url).resolve('better-sqlite3')

/** A reader in another thread, querying as fast as it can until told to stop. */
const READER = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.file, { readonly: true })
db.pragma('busy_timeout = 0')
const queries = [
  db.prepare('SELECT count(*) AS n FROM receptions'),
  db.prepare('SELECT * FROM positions ORDER BY received_at DESC LIMIT 200'),
  db.prepare('SELECT n.*, count(*) OVER () FROM nodes n ORDER BY last_heard DESC LIMIT 100'),
  db.prepare('SELECT gw, count(*), avg(rx_snr) FROM receptions GROUP BY gw'),
]
let reads = 0
let stop = false
parentPort.on('message', () => { stop = true })
function loop() {
  for (let i = 0; i < 20; i++) { queries[reads % queries.length].all(); reads++ }
  if (stop) { db.close(); parentPort.postMessage({ reads }) } else setImmediate(loop)
}
parentPort.postMessage({ ready: true })
loop()
`

describe('readers on other connections', () => {
  it('never block the writer (WAL), even with busy_timeout 0', async () => {
    const file = tmpFile()
    const store = createSqliteStore({ path: file, busyTimeoutMs: 0, retention: false })
    const all = [...batches(workload({ packets: 6000, messages: false, seed: 2 }), 300)]
    await store.writeBatch(all[0] as (typeof all)[0])
    const worker = new Worker(READER, { eval: true, workerData: { file, driver } })
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve())
      worker.once('error', reject)
    })
    // A reader in this thread holds a snapshot open the whole time.
    const snapshot = new Database(file, { readonly: true })
    snapshot.exec('BEGIN')
    const before = (snapshot.prepare('SELECT count(*) AS n FROM receptions').get() as { n: number })
      .n
    const started = performance.now()
    for (const b of all.slice(1)) await store.writeBatch(b)
    const elapsed = performance.now() - started
    expect(
      (snapshot.prepare('SELECT count(*) AS n FROM receptions').get() as { n: number }).n,
    ).toBe(before)
    snapshot.exec('COMMIT')
    const total = all.reduce((s, b) => s + b.receptions.length, 0)
    expect(
      (snapshot.prepare('SELECT count(*) AS n FROM receptions').get() as { n: number }).n,
    ).toBe(total)
    snapshot.close()
    const done = new Promise<{ reads: number }>((resolve) => worker.once('message', resolve))
    worker.postMessage('stop')
    const { reads } = await done
    await worker.terminate()
    expect(reads).toBeGreaterThan(0)
    expect(elapsed).toBeLessThan(30_000)
    expect((await store.counts()).receptions).toBe(total)
    await store.close()
  })
})
