/** How long a store keeps rows when its settings name no window: 90 days, in ms. @internal */
export const DEFAULT_RETENTION_MS = 90 * 86_400_000

/** The part of a store's retention settings that sets the windows. @internal */
export interface RetentionWindows<T extends string> {
  /** The window of every table without its own entry, in ms. */
  defaultMs?: number
  /** Per-table windows in ms, or `false` to keep a table's rows forever. */
  windows?: Partial<Record<T, number | false>>
}

/**
 * A table's retention window in ms: its own entry in `windows`, else `defaultMs`, else
 * {@link DEFAULT_RETENTION_MS}; `undefined` when the table is kept forever (`false`).
 * @internal
 *
 * @example
 * retentionWindowMs({ defaultMs: 7 * 86_400_000, windows: { nodes: false } }, 'receptions') // 604800000
 */
export function retentionWindowMs<T extends string>(
  retention: RetentionWindows<T> | undefined,
  table: T,
): number | undefined {
  const w = retention?.windows?.[table]
  if (w === false) return undefined
  return w ?? retention?.defaultMs ?? DEFAULT_RETENTION_MS
}
