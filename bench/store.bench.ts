import { describeMachine, describeRevision } from './lib/machine.js'
import type { Benchmark } from './lib/report.js'
import { run } from './lib/store-bench.js'

/** `pnpm bench store`: the SQLite store against plain better-sqlite3 inserts, queries, size, plateau. */
export const storeBenchmark: Benchmark = {
  name: 'store',
  description: 'SQLite store: writes vs plain inserts, queries at 1M/10M, size, plateau, replay',
  async run({ quick }) {
    const machine = describeMachine()
    const result = await run({ quick })
    return {
      name: 'store',
      machine,
      revision: describeRevision(),
      quick,
      ...result,
    }
  },
}
