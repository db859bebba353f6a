/**
 * Error codes the store sets besides SQLite's own (`SQLITE_BUSY`, `SQLITE_FULL`, …, kept from the
 * driver's error so a pipeline can tell transient failures apart):
 * - `STORE_CLOSED`: a call after `close()`;
 * - `INVALID_OPTIONS`: the options are missing or inconsistent;
 * - `INVALID_BATCH`: a record without a key;
 * - `INVALID_CURSOR`: a cursor that this store did not hand out (or for another list);
 * - `SCHEMA_TOO_NEW`: the file was written by a newer version of this package;
 * - `SCHEMA_TOO_OLD`: a read-only store opened a file no writer has migrated yet;
 * - `READ_ONLY`: a write through a read-only store;
 * - `WRITER_THREAD_EXITED`: the writer thread (`writerThread`) stopped; transient: the next write
 *   starts a new one;
 * - `WRITER_THREAD_FAILED`: the writer thread could not start (not transient).
 *
 * @example
 * if (e instanceof SqliteStoreError && e.code === 'SQLITE_FULL') freeSomeSpace()
 */
export type SqliteStoreErrorCode =
  | 'STORE_CLOSED'
  | 'INVALID_OPTIONS'
  | 'INVALID_BATCH'
  | 'INVALID_CURSOR'
  | 'SCHEMA_TOO_NEW'
  | 'SCHEMA_TOO_OLD'
  | 'READ_ONLY'
  | 'WRITER_THREAD_EXITED'
  | 'WRITER_THREAD_FAILED'
  | (string & {})

const TRANSIENT = /^(SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN)|WRITER_THREAD_EXITED)/

/**
 * The error the SQLite store throws. Messages start with `[sqlite-store]`; `code` is the SQLite
 * result code of the underlying failure when there is one, and `transient` says whether retrying
 * later can succeed (busy, locked, disk full, I/O error, a writer thread that stopped).
 *
 * @example
 * try { await store.writeBatch(batch) } catch (e) { if ((e as SqliteStoreError).transient) retryLater() }
 */
export class SqliteStoreError extends Error {
  override readonly name = 'SqliteStoreError'
  readonly code: SqliteStoreErrorCode
  readonly transient: boolean

  constructor(code: SqliteStoreErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(
      message.startsWith('[sqlite-store]') ? message : `[sqlite-store] ${message}`,
      options.cause !== undefined ? { cause: options.cause } : undefined,
    )
    this.code = code
    this.transient = TRANSIENT.test(code)
  }
}

/** Wraps a driver error, keeping its `code`. @internal */
export function wrapError(what: string, cause: unknown): SqliteStoreError {
  if (cause instanceof SqliteStoreError) return cause
  const code =
    typeof (cause as { code?: unknown })?.code === 'string'
      ? (cause as { code: string }).code
      : 'SQLITE_ERROR'
  const message = cause instanceof Error ? cause.message : String(cause)
  return new SqliteStoreError(code, `${what}: ${message}`, { cause })
}
