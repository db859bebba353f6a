import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CsvError, createCsvWriter, csvHeader, parseCsv, readSamples } from './csv.js'
import { SAMPLE_COLUMNS, type SoakSample } from './sampler.js'

const dir = mkdtempSync(join(tmpdir(), 'meshtap-soak-csv-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function sample(t: number): SoakSample {
  const s = Object.fromEntries(SAMPLE_COLUMNS.map((c, i) => [c.key, t * 100 + i + 0.123456]))
  return { ...s, t, heapLiveMb: Number.NaN } as SoakSample
}

describe('soak CSV', () => {
  it('appends one line per sample and reads back the same numbers, rounded per column', () => {
    const path = join(dir, 'a.csv')
    const w = createCsvWriter(path)
    w.append(sample(0))
    w.append(sample(5))
    const { header, rows } = parseCsv(readFileSync(path, 'utf8'))
    expect(header.join(',')).toBe(csvHeader())
    expect(rows).toHaveLength(2)
    SAMPLE_COLUMNS.forEach((c, j) => {
      const expected = sample(5)[c.key]
      if (Number.isNaN(expected)) expect(rows[1]?.[j]).toBeNaN()
      else expect(rows[1]?.[j]).toBeCloseTo(expected, Math.max(0, c.digits - 1))
    })
  })

  it('reads samples back by column name, with NaN for a column the file lacks', () => {
    const samples = readSamples('t_s,rss_mb,queue_depth\n0,150.5,3\n10,151,0\n')
    expect(samples).toHaveLength(2)
    expect(samples[1]?.t).toBe(10)
    expect(samples[0]?.rssMb).toBe(150.5)
    expect(samples[0]?.queueDepth).toBe(3)
    expect(samples[0]?.heapLiveMb).toBeNaN()
  })

  it('rejects ragged or non-numeric lines', () => {
    expect(() => parseCsv('a,b\n1\n')).toThrow(CsvError)
    expect(() => parseCsv('a,b\n1,x\n')).toThrow(/b is not a number/)
    expect(() => parseCsv('')).toThrow(/no header/)
  })
})
