import { describe, expect, it } from 'vitest'
import { DEFAULT_RETENTION_MS, type RetentionWindows, retentionWindowMs } from './retention.js'

describe('retentionWindowMs', () => {
  it("takes the table's own window, else the default, else 90 days; false keeps forever", () => {
    const settings: RetentionWindows<'receptions' | 'packets' | 'nodes'> = {
      defaultMs: 7_000,
      windows: { receptions: 1_000, nodes: false },
    }
    expect(retentionWindowMs(settings, 'receptions')).toBe(1_000)
    expect(retentionWindowMs(settings, 'packets')).toBe(7_000)
    expect(retentionWindowMs(settings, 'nodes')).toBeUndefined()
    expect(retentionWindowMs<string>({}, 'packets')).toBe(DEFAULT_RETENTION_MS)
    expect(retentionWindowMs<string>(undefined, 'packets')).toBe(90 * 86_400_000)
  })
})
