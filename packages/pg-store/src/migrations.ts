import { PgStoreError } from './errors.js'
import { hash32, LOCK_SPACE, type PartitionManager } from './partitions.js'
import { ident, type PgPoolClient, TYPES } from './pool.js'
import { PARTITIONED_BY_VERSION, schemaV1, schemaV2 } from './schema.js'

/**
 * One forward-only schema step. `up` runs inside the migration transaction; `backfill` asks for the
 * typed tables to be refilled from the stored packets once every step has run (so a backfill
 * always uses the current writer, whatever version the schema started from).
 * @internal
 */
export interface Migration {
  version: number
  name: string
  up(schema: string): string
  backfill?: boolean
}

/** Every migration, in order. The last one's version is {@link SCHEMA_VERSION}. @internal */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'core tables: packets, receptions and undecoded packets (partitioned by day), nodes, gateways',
    up: schemaV1,
  },
  {
    version: 2,
    name: 'typed tables (partitioned by day), latest telemetry per node, links, change log',
    up: schemaV2,
    backfill: true,
  },
]

/**
 * The schema version this package writes (the highest `version` in `<schema>.schema_migrations`).
 *
 * @example
 * (await store.schemaVersion()) === SCHEMA_VERSION
 */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0

/** The partitioned tables at a schema version. @internal */
export function partitionedTables(version: number): string[] {
  const out: string[] = []
  for (let v = 1; v <= version; v++) out.push(...(PARTITIONED_BY_VERSION[v] ?? []))
  return out
}

/** The schema's version (0 when it has no migrations table). @internal */
export async function schemaVersion(client: PgPoolClient, schema: string): Promise<number> {
  const { rows } = await client.query({
    text: `SELECT to_regclass($1) IS NOT NULL AS present`,
    values: [`${ident(schema)}.schema_migrations`],
  })
  if (!(rows[0] as { present: boolean }).present) return 0
  const res = await client.query({
    text: `SELECT coalesce(max(version), 0) AS v FROM ${ident(schema)}.schema_migrations`,
    types: TYPES,
  })
  return Number((res.rows[0] as { v: number }).v)
}

/**
 * Brings the schema to `target` (default: the latest version), one transaction for all the steps,
 * the partitions the new tables need and the backfill, so a failed upgrade leaves the schema as it
 * was. Processes that start together wait for each other (advisory lock). Returns the versions
 * applied. The client must not be in a transaction.
 * @internal
 */
export async function migrate(
  client: PgPoolClient,
  schema: string,
  partitions: PartitionManager,
  options: { target?: number; backfill?: (client: PgPoolClient) => Promise<void> } = {},
): Promise<number[]> {
  const target = options.target ?? SCHEMA_VERSION
  const s = ident(schema)
  await client.query('BEGIN')
  try {
    await client.query({
      text: 'SELECT pg_advisory_xact_lock($1, $2)',
      values: [LOCK_SPACE, hash32(`${schema}:migrate`)],
    })
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`)
    const current = await schemaVersion(client, schema)
    if (current > SCHEMA_VERSION) {
      throw new PgStoreError(
        'SCHEMA_TOO_NEW',
        `schema ${schema} is at version ${current}, newer than this @meshtap/pg-store understands (${SCHEMA_VERSION}); upgrade the package`,
      )
    }
    const pending = MIGRATIONS.filter((m) => m.version > current && m.version <= target)
    let backfill = false
    for (const m of pending) {
      await client.query(m.up(s))
      await client.query({
        text: `INSERT INTO ${s}.schema_migrations (version, name) VALUES ($1, $2)`,
        values: [m.version, m.name],
      })
      backfill ||= m.backfill === true && current > 0
    }
    const version = Math.max(current, ...pending.map((m) => m.version))
    partitions.tables = partitionedTables(version)
    if (pending.length > 0 && current > 0) {
      // New partitioned tables need partitions for every day the schema already holds.
      const { rows } = await client.query({
        text: `SELECT DISTINCT day FROM ${s}.packets`,
        types: TYPES,
      })
      await partitions.load(client)
      const days = new Set((rows as { day: number }[]).map((r) => r.day))
      for (const p of partitions.list()) for (let d = p.start; d < p.end; d++) days.add(d)
      await partitions.create(client, partitions.missing(days))
    }
    if (backfill) await options.backfill?.(client)
    await client.query('COMMIT')
    return pending.map((m) => m.version)
  } catch (cause) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw cause
  }
}
