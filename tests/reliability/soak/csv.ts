/**
 * The soak CSV: a header line, then one line per sample, numbers only (RFC 4180 without quoting,
 * since no field holds text). Lines are appended as samples arrive, so an interrupted soak still
 * leaves its data.
 */
import { appendFileSync, writeFileSync } from 'node:fs'
import { SAMPLE_COLUMNS, type SoakSample } from './sampler.js'

/** The header line (without the line break). */
export function csvHeader(): string {
  return SAMPLE_COLUMNS.map((c) => c.header).join(',')
}

/** One sample as a CSV line (without the line break). */
export function csvRow(sample: SoakSample): string {
  return SAMPLE_COLUMNS.map((c) => {
    const v = sample[c.key]
    return Number.isFinite(v) ? Number(v.toFixed(c.digits)).toString() : ''
  }).join(',')
}

/** Writes the CSV file with its header (truncating an old one) and returns an appender. */
export function createCsvWriter(path: string): { append(sample: SoakSample): void } {
  writeFileSync(path, `${csvHeader()}\n`)
  return { append: (s) => appendFileSync(path, `${csvRow(s)}\n`) }
}

/** A CSV line with the wrong number of fields or a field that is not a number. */
export class CsvError extends Error {
  override readonly name = 'CsvError'
}

/**
 * Reads a numeric CSV written by {@link createCsvWriter}: the header, and each row as numbers (an
 * empty field is NaN).
 * @throws CsvError naming the first bad line.
 */
export function parseCsv(text: string): { header: string[]; rows: number[][] } {
  const lines = text.split(/\r?\n/).filter((l) => l !== '')
  const header = (lines[0] ?? '').split(',')
  if (lines.length === 0 || header.some((h) => h === '')) throw new CsvError('line 1: no header')
  const rows = lines.slice(1).map((line, i) => {
    const fields = line.split(',')
    if (fields.length !== header.length) {
      throw new CsvError(`line ${i + 2}: ${fields.length} fields, expected ${header.length}`)
    }
    return fields.map((f, j) => {
      if (f === '') return Number.NaN
      const v = Number(f)
      if (!Number.isFinite(v)) throw new CsvError(`line ${i + 2}: ${header[j]} is not a number`)
      return v
    })
  })
  return { header, rows }
}

/**
 * Reads the samples back from a soak CSV (columns matched by header, so files from a version with
 * fewer columns read with NaN in the missing ones).
 * @throws CsvError on a malformed file.
 */
export function readSamples(text: string): SoakSample[] {
  const { header, rows } = parseCsv(text)
  return rows.map((row) => {
    const s = {} as Record<keyof SoakSample, number>
    for (const c of SAMPLE_COLUMNS) {
      const j = header.indexOf(c.header)
      s[c.key] = j < 0 ? Number.NaN : (row[j] as number)
    }
    return s as SoakSample
  })
}
