// Run by writer-thread.test.ts: a program that writes through the writer thread and ends without
// closing the store. It must exit on its own (the idle thread does not hold it), every awaited
// batch committed.
import { batches, workload } from '@meshtap/core/testing'
import { createSqliteStore } from '@meshtap/sqlite-store'

const store = createSqliteStore({ path: process.argv[2] as string, writerThread: true })
await store.init()
let receptions = 0
for (const b of batches([...workload({ packets: 1500, messages: false, seed: 8 })], 300)) {
  await store.writeBatch(b)
  receptions += b.receptions.length
}
console.log(JSON.stringify({ receptions: (await store.counts()).receptions, sent: receptions }))
