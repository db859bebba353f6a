/** Reconnect timing of {@link createMqttSource}: capped exponential backoff with jitter. */
export interface MqttReconnectOptions {
  /**
   * Delay before the first reconnect attempt after a connection is lost.
   * @default 1000
   */
  initialDelayMs?: number
  /**
   * The delay doubles after every failed attempt up to this cap.
   * @default 30000
   */
  maxDelayMs?: number
  /**
   * Fraction of the delay that is random, 0 to 1: the delay is drawn uniformly from
   * `[base × (1 − jitter), base]`, so collectors that lost the same broker do not all come back at
   * the same instant. 0 gives the exact exponential sequence.
   * @default 0.5
   */
  jitter?: number
}

/** {@link MqttReconnectOptions} with every default filled in. */
export type ResolvedReconnectOptions = Required<MqttReconnectOptions>

/** The defaults of {@link MqttReconnectOptions}. */
export const DEFAULT_RECONNECT: ResolvedReconnectOptions = {
  initialDelayMs: 1000,
  maxDelayMs: 30_000,
  jitter: 0.5,
}

/**
 * The delay before reconnect attempt number `attempt` (0 for the first attempt after a loss):
 * `base = min(maxDelayMs, initialDelayMs × 2^attempt)`, then `base × (1 − jitter × random())`.
 * Never more than `maxDelayMs`, never less than `(1 − jitter) × base`.
 *
 * @example
 * backoffDelay(0, DEFAULT_RECONNECT, () => 0) // 1000
 * backoffDelay(3, DEFAULT_RECONNECT, () => 1) // 4000 (8000 × (1 − 0.5))
 * backoffDelay(10, DEFAULT_RECONNECT, () => 0) // 30000 (capped)
 */
export function backoffDelay(
  attempt: number,
  options: ResolvedReconnectOptions,
  random: () => number = Math.random,
): number {
  const exp = Math.min(Math.max(0, Math.floor(attempt)), 52)
  const base = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** exp)
  return Math.round(base * (1 - options.jitter * random()))
}
