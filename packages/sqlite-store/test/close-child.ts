// Run by checkpointer.test.ts: a program whose last task is `await store.close()`, closing while
// the checkpoint worker is busy.
import { batches, workload } from '@meshtap/core/testing'
import { createSqliteStore } from '@meshtap/sqlite-store'

const store = createSqliteStore({
  path: process.argv[2] as string,
  retention: false,
  backgroundCheckpointMs: 0,
})
await store.init()
for (const b of batches([...workload({ packets: 4000, messages: false, seed: 5 })], 500)) {
  await store.writeBatch(b)
}
await store.close()
console.log(JSON.stringify({ closed: store.checkpointStats().running === false }))
