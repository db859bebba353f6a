import pg from 'pg'

/**
 * A query as the store sends it: text, positional values (`$1`, `$2`, …), an optional statement
 * name (prepared once per connection) and the store's own type parsers.
 *
 * @example
 * const q: PgQueryConfig = { text: 'SELECT $1::int AS one', values: [1] }
 */
export interface PgQueryConfig {
  text: string
  values?: unknown[]
  name?: string
  types?: { getTypeParser: (oid: number, format?: 'text' | 'binary') => unknown }
}

/**
 * What a query resolves to (the parts the store reads).
 *
 * @example
 * const { rows }: PgQueryResult = await pool.query('SELECT 1 AS one')
 */
export interface PgQueryResult<R = Record<string, unknown>> {
  rows: R[]
  rowCount: number | null
}

/**
 * A connection checked out of a pool: the parts of `pg.PoolClient` the store uses.
 *
 * @example
 * const client: PgPoolClient = await pool.connect()
 * try { await client.query('SELECT 1') } finally { client.release() }
 */
export interface PgPoolClient {
  query(config: PgQueryConfig): Promise<PgQueryResult>
  query(text: string, values?: unknown[]): Promise<PgQueryResult>
  /** Gives the connection back; with an error (or `true`) the pool closes it instead. */
  release(destroy?: Error | boolean): void
  on(event: 'error', listener: (error: Error) => void): unknown
  on(event: 'end', listener: () => void): unknown
  on(
    event: 'notification',
    listener: (message: { channel: string; payload?: string; processId: number }) => void,
  ): unknown
  removeListener(event: string, listener: (...args: never[]) => void): unknown
  /** The server process id of the connection (`pg_backend_pid()`), when connected. */
  readonly processID?: number | null
}

/**
 * The parts of a `pg.Pool` the store and the change feed use, as a structural type (like
 * Kysely's `PostgresPool`): pass the pool your application created. The store never ends a pool
 * it was given.
 *
 * @example
 * import pg from 'pg'
 * const pool: PgPool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 */
export interface PgPool {
  connect(): Promise<PgPoolClient>
  query(config: PgQueryConfig): Promise<PgQueryResult>
  end(): Promise<void>
  on(event: 'error', listener: (error: Error, client: unknown) => void): unknown
}

const DEFAULT_PARSERS = pg.types

/** int8 (20) and numeric (1700) as numbers: every integer the store keeps is below 2^53. */
const NUMERIC_OIDS = new Set([20, 1700])

/**
 * Type parsers for every query the store sends: `bigint`, `count(*)` and `sum()` come back as
 * JavaScript numbers without touching the pool's (global) parsers. @internal
 */
export const TYPES: NonNullable<PgQueryConfig['types']> = {
  getTypeParser(oid, format) {
    if (NUMERIC_OIDS.has(oid) && format !== 'binary') {
      return (value: string) => (value === null ? null : Number(value))
    }
    return DEFAULT_PARSERS.getTypeParser(oid, format ?? 'text')
  },
}

/** Options for a pool the store or feed creates from a connection string. @internal */
export function createOwnedPool(connectionString: string, max: number, name: string): PgPool {
  const pool = new pg.Pool({ connectionString, max, application_name: name })
  // An idle connection that breaks (server restart) must not crash the process.
  pool.on('error', () => undefined)
  return pool as unknown as PgPool
}

/** Quotes an identifier (schema, table, channel). @internal */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
