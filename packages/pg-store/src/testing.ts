/**
 * Helpers for tests that need a PostgreSQL server: `@meshtap/pg-store/testing`.
 *
 * @module
 */
import pg from 'pg'

/**
 * Whether a PostgreSQL server answers at `connectionString` (connects and runs `SELECT 1`) within
 * `timeoutMs`. Never throws: a refused connection, a failed login or a timeout is `false`. For
 * tests that use the real server where one runs and something embedded (or a skip) elsewhere.
 *
 * @example
 * const url = 'postgres://postgres@127.0.0.1:5432/postgres'
 * const hasServer = await postgresReachable(url)
 * if (!hasServer && process.env.CI) throw new Error(`CI needs PostgreSQL at ${url}`)
 */
export async function postgresReachable(
  connectionString: string,
  timeoutMs = 2000,
): Promise<boolean> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: timeoutMs })
  client.on('error', () => undefined)
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => undefined)
  }
}
