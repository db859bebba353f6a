/**
 * What went wrong, as a stable string to branch on:
 * - `INVALID_OPTIONS`: an option is missing or out of range (the message names it);
 * - `STORE_WRITE_FAILED`: a batch could not be written (after retries, for the last one);
 * - `STORE_CLOSED`: a write or read after `close()`;
 * - `SOURCE_FAILED`: a source could not start or broke;
 * - `ALREADY_STARTED` / `STOPPED`: a lifecycle call out of order.
 */
export type IngestErrorCode =
  | 'INVALID_OPTIONS'
  | 'STORE_WRITE_FAILED'
  | 'STORE_CLOSED'
  | 'SOURCE_FAILED'
  | 'ALREADY_STARTED'
  | 'STOPPED'

/**
 * The one error class meshtap throws or emits. Expected per-message failures (a bad packet, a wrong
 * key, a duplicate, a rate limit) are never errors: they are values and `drop` events.
 *
 * @example
 * ingest.on('error', (e) => { if (e.code === 'STORE_WRITE_FAILED') alert(e.message) })
 */
export class IngestError extends Error {
  override readonly name = 'IngestError'
  readonly code: IngestErrorCode
  /** Whether retrying the same operation later can succeed (a busy or full database, a lost connection). */
  readonly transient: boolean

  constructor(
    code: IngestErrorCode,
    message: string,
    options: { cause?: unknown; transient?: boolean } = {},
  ) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined)
    this.code = code
    this.transient = options.transient ?? false
  }
}
