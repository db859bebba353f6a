/**
 * Error codes the store sets besides PostgreSQL's own SQLSTATE (`57P01`, `40P01`, `53300`, …) and
 * the socket's (`ECONNRESET`, `ECONNREFUSED`, …), which are kept from the driver's error so a
 * pipeline can tell transient failures apart:
 * - `STORE_CLOSED`: a call after `close()`;
 * - `INVALID_OPTIONS`: the options are missing or inconsistent;
 * - `INVALID_BATCH`: a record without a key;
 * - `INVALID_CURSOR`: a cursor that this store did not hand out (or for another list);
 * - `SCHEMA_TOO_NEW`: the schema was written by a newer version of this package.
 *
 * @example
 * if (e instanceof PgStoreError && e.code === '53300') console.warn('too many connections')
 */
export type PgStoreErrorCode =
  | 'STORE_CLOSED'
  | 'INVALID_OPTIONS'
  | 'INVALID_BATCH'
  | 'INVALID_CURSOR'
  | 'SCHEMA_TOO_NEW'
  | (string & {})

/** Socket errors: the connection went away, retrying on a new one can succeed. */
const TRANSIENT_ERRNO = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
])

/**
 * Whether a code is worth retrying: connection exceptions (class 08), serialization failures and
 * deadlocks (40001, 40P01), insufficient resources (class 53: disk full, out of memory, too many
 * connections), operator intervention (class 57: admin shutdown, crash shutdown, cannot connect
 * now), lock timeouts (55P03) and socket errors.
 *
 * @example
 * isTransientCode('57P01') // true
 */
export function isTransientCode(code: string): boolean {
  return (
    TRANSIENT_ERRNO.has(code) ||
    code.startsWith('08') ||
    code.startsWith('53') ||
    code.startsWith('57P') ||
    code === '57014' ||
    code === '40001' ||
    code === '40P01' ||
    code === '55P03' ||
    code === 'CONNECTION_LOST'
  )
}

/**
 * The error the PostgreSQL store and change feed throw. Messages start with `[pg-store]`; `code` is
 * the SQLSTATE (or socket error code) of the underlying failure when there is one, and `transient`
 * says whether retrying later can succeed (connection lost, deadlock, server shutting down, too
 * many connections, disk full).
 *
 * @example
 * try { await store.writeBatch(batch) } catch (e) { if ((e as PgStoreError).transient) retryLater() }
 */
export class PgStoreError extends Error {
  override readonly name = 'PgStoreError'
  readonly code: PgStoreErrorCode
  readonly transient: boolean

  constructor(code: PgStoreErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(
      message.startsWith('[pg-store]') ? message : `[pg-store] ${message}`,
      options.cause !== undefined ? { cause: options.cause } : undefined,
    )
    this.code = code
    this.transient = isTransientCode(code)
  }
}

/** The driver's error code: a SQLSTATE, a socket errno, or `CONNECTION_LOST` for pg's own messages. @internal */
export function codeOf(cause: unknown): string {
  const code = (cause as { code?: unknown } | null)?.code
  if (typeof code === 'string' && code !== '') return code
  const message = cause instanceof Error ? cause.message : String(cause)
  if (
    /Connection terminated|Client has encountered a connection error|not queryable/i.test(message)
  ) {
    return 'CONNECTION_LOST'
  }
  return 'PG_ERROR'
}

/** Wraps a driver error, keeping its `code`. @internal */
export function wrapError(what: string, cause: unknown): PgStoreError {
  if (cause instanceof PgStoreError) return cause
  const message = cause instanceof Error ? cause.message : String(cause)
  return new PgStoreError(codeOf(cause), `${what}: ${message}`, { cause })
}
