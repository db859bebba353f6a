import { describe, expect, it } from 'vitest'
import { PromParseError, parsePrometheus } from './prometheus.js'

describe('parsePrometheus', () => {
  it('reads samples with and without labels, skipping comments', () => {
    const m = parsePrometheus(
      [
        '# HELP meshtap_queue_depth Records waiting to be written.',
        '# TYPE meshtap_queue_depth gauge',
        'meshtap_queue_depth 42',
        'meshtap_dropped_total{reason="queue-full"} 3',
        'meshtap_dropped_total{reason="rate-limited"} 5 1700000000000',
        'x_info{version="v20.1",note="a \\"quoted\\", b"} 1',
        'lag_seconds 1.5e-3',
        'h_bucket{le="+Inf"} +Inf',
        '',
      ].join('\n'),
    )
    expect(m.get('meshtap_queue_depth')).toBe(42)
    expect(m.get('meshtap_dropped_total', { reason: 'queue-full' })).toBe(3)
    expect(m.sum('meshtap_dropped_total')).toBe(8)
    expect(m.get('x_info', { note: 'a "quoted", b', version: 'v20.1' })).toBe(1)
    expect(m.get('lag_seconds')).toBeCloseTo(0.0015, 12)
    expect(m.get('h_bucket', { le: '+Inf' })).toBe(Number.POSITIVE_INFINITY)
    expect(m.get('missing')).toBeUndefined()
    expect(m.size).toBe(6)
  })

  it('names the first malformed line', () => {
    expect(() => parsePrometheus('ok 1\nbad line here\n')).toThrow(PromParseError)
    expect(() => parsePrometheus('ok 1\nv{a="1" 2\n')).toThrow(/line 2/)
    expect(() => parsePrometheus('v abc\n')).toThrow(/not a number/)
  })
})
