/** A successful result. */
export interface Ok<T> {
  readonly ok: true
  readonly value: T
}

/** A failed result: an expected failure carried as a value, never thrown. */
export interface Err<E> {
  readonly ok: false
  readonly error: E
}

/** The outcome of an operation whose failures are expected (bad input, wrong key…). */
export type Result<T, E> = Ok<T> | Err<E>

/** Wraps a value in a successful {@link Result}. */
export function ok<T>(value: T): Ok<T> {
  return { ok: true, value }
}

/** Wraps an error in a failed {@link Result}. */
export function err<E>(error: E): Err<E> {
  return { ok: false, error }
}
