import type { SqliteDatabase } from './database.js'
import { SqliteStoreError } from './errors.js'
import { SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4 } from './schema.js'

/**
 * One forward-only schema step. `up` runs inside the migration transaction; `backfill` asks for the
 * typed tables to be refilled from the stored packets once every step has run (so a backfill
 * always uses the current writer, whatever version the file started from).
 * @internal
 */
export interface Migration {
  version: number
  name: string
  up(db: SqliteDatabase): void
  backfill?: boolean
}

/** Every migration, in order. The last one's version is {@link SCHEMA_VERSION}. @internal */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'core tables: packets, receptions, undecoded packets, nodes, gateways',
    up: (db) => db.exec(SCHEMA_V1),
  },
  {
    version: 2,
    name: 'typed tables: positions, telemetry, messages, traceroutes, neighbors, links, map reports, waypoints',
    up: (db) => db.exec(SCHEMA_V2),
    backfill: true,
  },
  {
    version: 3,
    name: "(node, received_at) indexes on positions and telemetry: one node's history",
    up: (db) => db.exec(SCHEMA_V3),
  },
  {
    version: 4,
    name: 'bounding-box index covering the coordinates: (cell, received_at, packet_ref, latitude, longitude)',
    up: (db) => db.exec(SCHEMA_V4),
  },
]

/**
 * The schema version this package writes (`PRAGMA user_version` of a migrated file).
 *
 * @example
 * db.pragma('user_version', { simple: true }) === SCHEMA_VERSION
 */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0

/** The version of the schema in the file (0 for a new file). @internal */
export function schemaVersion(db: SqliteDatabase): number {
  return Number(db.pragma('user_version', { simple: true }))
}

/**
 * Brings the file to `target` (default: the latest version), one transaction for all the steps and
 * the backfill, so a failed upgrade leaves the file as it was. Returns the versions applied.
 * @internal
 */
export function migrate(
  db: SqliteDatabase,
  options: { target?: number; backfill?: (db: SqliteDatabase) => void } = {},
): number[] {
  const target = options.target ?? SCHEMA_VERSION
  const current = schemaVersion(db)
  if (current > SCHEMA_VERSION) {
    throw new SqliteStoreError(
      'SCHEMA_TOO_NEW',
      `the database is at schema version ${current}, newer than this @meshtap/sqlite-store understands (${SCHEMA_VERSION}); upgrade the package`,
    )
  }
  const pending = MIGRATIONS.filter((m) => m.version > current && m.version <= target)
  if (pending.length === 0) return []
  db.exec('BEGIN IMMEDIATE')
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    )`)
    const record = db.prepare(
      'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
    )
    let backfill = false
    for (const m of pending) {
      m.up(db)
      record.run(m.version, m.name, Date.now())
      db.pragma(`user_version = ${m.version}`)
      backfill ||= m.backfill === true && current > 0
    }
    if (backfill) options.backfill?.(db)
    db.exec('COMMIT')
  } catch (cause) {
    if (db.inTransaction) db.exec('ROLLBACK')
    throw cause
  }
  return pending.map((m) => m.version)
}
