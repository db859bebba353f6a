import { describe, expect, it } from 'vitest'
import { testDatabase } from '../test/db.js'
import { boolArray, numArray, textArray } from './arrays.js'
import { fromRanges, toRanges } from './writer.js'

const db = await testDatabase()

describe('array literals', () => {
  it('carry any text, number and boolean through unnest', async () => {
    const texts = [
      'plain',
      '',
      'NULL',
      'with "quotes" and \\backslashes\\',
      '{braces}, commas, (parens)',
      'emoji 👍 and ✓',
      'line\nbreak\ttab',
      ' leading and trailing ',
      null,
    ]
    const { rows } = await db.query('SELECT unnest($1::text[]) AS v', [textArray(texts)])
    expect(rows.map((r) => r.v)).toEqual(texts)
    const nums = [0, -1, 4294967295, 1_764_288_000_123, 3.25, -97.5, 1e-7, null, Number.NaN]
    const n = await db.query('SELECT unnest($1::float8[]) AS v', [numArray(nums)])
    expect(n.rows.map((r) => r.v)).toEqual([...nums.slice(0, -1), null])
    const b = await db.query('SELECT unnest($1::boolean[]) AS v', [boolArray([true, false, null])])
    expect(b.rows.map((r) => r.v)).toEqual([true, false, null])
  })

  it('replace U+0000, which PostgreSQL text cannot hold', async () => {
    const { rows } = await db.query('SELECT unnest($1::text[]) AS v', [textArray(['a\u0000b'])])
    expect(rows[0].v).toBe('a\uFFFDb')
  })
})

describe('id runs', () => {
  it('compress sorted ids and expand back', () => {
    const ids = [7, 3, 4, 5, 10, 11, 20, 4]
    expect(toRanges(ids)).toEqual([
      [3, 3],
      [7, 1],
      [10, 2],
      [20, 1],
    ])
    expect(fromRanges(toRanges(ids))).toEqual([3, 4, 5, 7, 10, 11, 20])
    expect(toRanges([])).toEqual([])
  })
})
