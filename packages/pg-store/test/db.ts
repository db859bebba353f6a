import { randomBytes } from 'node:crypto'
import type { PGlite } from '@electric-sql/pglite'
import type { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import pg from 'pg'
import { afterAll } from 'vitest'
import type { PgPool } from '../src/index.js'
import { postgresReachable } from '../src/testing.js'

/**
 * The database the tests run against: the PostgreSQL server at 127.0.0.1:5432 when it answers
 * (required when `CI` is set), else PGlite in this process behind a loopback socket.
 * `MESHTAP_PG_URL` points the tests at another server; `MESHTAP_PG_TEST=pglite` forces PGlite.
 */
export interface TestDatabase {
  kind: 'postgres' | 'pglite'
  connectionString: string
  /** Whether several connections are truly concurrent (PGlite is one session). */
  concurrent: boolean
  /** A new pool, ended after the test file. */
  pool(options?: pg.PoolConfig): PgPool & pg.Pool
  /** A fresh schema name (`meshtap_test_<random>`), dropped after the test file. */
  schema(): string
  /** Runs SQL on an admin connection. */
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>
}

const URL = process.env.MESHTAP_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

let shared: Promise<TestDatabase> | undefined
const pools: pg.Pool[] = []
const schemas: string[] = []
let pglite: { db: PGlite; server: PGLiteSocketServer } | undefined

async function open(): Promise<TestDatabase> {
  let kind: TestDatabase['kind'] = 'postgres'
  let connectionString = URL
  const forced = process.env.MESHTAP_PG_TEST === 'pglite'
  if (forced || !(await postgresReachable(URL))) {
    if (process.env.CI && !forced) {
      throw new Error(
        `PostgreSQL is required when CI is set, and ${URL.replace(/:[^:@/]*@/, ':***@')} does not answer`,
      )
    }
    const { PGlite } = await import('@electric-sql/pglite')
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket')
    const db = await PGlite.create()
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 32 })
    await server.start()
    const address = server.getServerConn()
    pglite = { db, server }
    kind = 'pglite'
    connectionString = `postgres://postgres@${address}/postgres`
    console.warn(
      `NOTICE: ${forced ? 'MESHTAP_PG_TEST=pglite' : `PostgreSQL at ${URL.replace(/:[^:@/]*@/, ':***@')} is not reachable`}: @meshtap/pg-store tests run against PGlite (in process, one session), so the cases that need several connections (two workers, the change feed, a killed connection) are skipped`,
    )
  }
  const admin = new pg.Pool({ connectionString, max: 1 })
  admin.on('error', () => undefined)
  pools.push(admin)
  return {
    kind,
    connectionString,
    concurrent: kind === 'postgres',
    pool(options = {}) {
      const pool = new pg.Pool({
        connectionString,
        max: kind === 'pglite' ? 1 : 4,
        ...options,
      })
      pool.on('error', () => undefined)
      pools.push(pool)
      return pool as PgPool & pg.Pool
    },
    schema() {
      const name = `meshtap_test_${randomBytes(5).toString('hex')}`
      schemas.push(name)
      return name
    },
    query: (text, values) => admin.query(text, values),
  }
}

/** The shared test database of this test file. */
export function testDatabase(): Promise<TestDatabase> {
  shared ??= open()
  return shared
}

afterAll(async () => {
  if (shared) {
    const db = await shared.catch(() => undefined)
    if (db) {
      for (const s of schemas.splice(0)) {
        await db.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`).catch(() => undefined)
      }
    }
  }
  for (const p of pools.splice(0).reverse()) await p.end().catch(() => undefined)
  if (pglite) {
    await pglite.server.stop().catch(() => undefined)
    await pglite.db.close().catch(() => undefined)
    pglite = undefined
  }
  shared = undefined
}, 60_000)

/** Polls until `check` passes (or throws its last failure after `timeoutMs`). */
export async function eventually(
  check: () => void | Promise<void>,
  timeoutMs = 10_000,
): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    try {
      await check()
      return
    } catch (e) {
      if (Date.now() > until) throw e
      await new Promise((r) => setTimeout(r, 25))
    }
  }
}
