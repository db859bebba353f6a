/**
 * The SQLite file the HTTP benchmark serves: the workload generator's batches written straight
 * into the store (as `pnpm bench store` builds its query datasets), ending now so that the
 * server's default retention keeps all of it.
 * @module
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { batches, workload } from '@meshtap/core/testing'
import { createSqliteStore } from '@meshtap/sqlite-store'

const DAY = 86_400_000

export interface HttpDataset {
  dir: string
  file: string
  receptions: number
  packets: number
  nodes: number
  /** The node with the most position reports, and how many it has. */
  busyNode: number
  busyNodePositions: number
  positions: number
  buildMs: number
}

/** Writes about `receptionsWanted` receptions over three days ending now into a fresh file. */
export async function buildHttpDataset(receptionsWanted: number): Promise<HttpDataset> {
  const dir = mkdtempSync(join(tmpdir(), 'meshtap-http-bench-'))
  const file = join(dir, 'meshtap.db')
  const spanMs = 3 * DAY
  const startMs = Date.now() - spanMs - 60_000
  const store = createSqliteStore({ path: file, retention: false })
  await store.init()
  // The stream averages about 2.2 copies per packet.
  const packetsWanted = Math.ceil(receptionsWanted / 2.2)
  let receptions = 0
  let packets = 0
  const t0 = performance.now()
  for (const b of batches(
    workload({ packets: packetsWanted, spanMs, startMs, messages: false, seed: 3 }),
    10_000,
  )) {
    receptions += b.receptions.length
    packets += b.packets.length
    await store.writeBatch(b)
  }
  const db = store.database
  db.pragma('wal_checkpoint(TRUNCATE)')
  const nodes = (db.prepare('SELECT count(*) AS n FROM nodes').get() as { n: number }).n
  const positions = (db.prepare('SELECT count(*) AS n FROM positions').get() as { n: number }).n
  const busy = db
    .prepare('SELECT node, count(*) AS n FROM positions GROUP BY node ORDER BY n DESC LIMIT 1')
    .get() as { node: number; n: number } | undefined
  await store.close()
  if (!busy) throw new Error('the dataset has no positions')
  return {
    dir,
    file,
    receptions,
    packets,
    nodes,
    busyNode: busy.node,
    busyNodePositions: busy.n,
    positions,
    buildMs: performance.now() - t0,
  }
}
