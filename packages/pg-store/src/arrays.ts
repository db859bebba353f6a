/**
 * PostgreSQL array literals built by hand, for `unnest($1::bigint[], $2::text[], …)` inserts: one
 * parameter per column whatever the batch size, and much less work than the driver's generic
 * conversion (which quotes and escapes every number).
 * @module
 */

/** `{1,2.5,NULL}` for numeric columns; non-finite values become NULL. @internal */
export function numArray(values: readonly (number | null | undefined)[]): string {
  let out = '{'
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ','
    const v = values[i]
    out += typeof v === 'number' && Number.isFinite(v) ? String(v) : 'NULL'
  }
  return `${out}}`
}

/** `{t,f,NULL}` for boolean columns. @internal */
export function boolArray(values: readonly (boolean | null | undefined)[]): string {
  let out = '{'
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ','
    const v = values[i]
    out += v === true ? 't' : v === false ? 'f' : 'NULL'
  }
  return `${out}}`
}

const NEEDS_ESCAPE = /["\\\u0000]/

/**
 * `{"a","b \"c\"",NULL}` for text columns. PostgreSQL text cannot hold U+0000: it becomes U+FFFD
 * (the packet's JSON keeps the exact text, JSON-escaped). @internal
 */
export function textArray(values: readonly (string | null | undefined)[]): string {
  let out = '{'
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ','
    const v = values[i]
    if (typeof v !== 'string') out += 'NULL'
    else if (!NEEDS_ESCAPE.test(v)) out += `"${v}"`
    else out += `"${v.replace(/\u0000/g, '\uFFFD').replace(/[\\"]/g, (c) => `\\${c}`)}"`
  }
  return `${out}}`
}

/** Text for a scalar text parameter (U+0000 → U+FFFD). @internal */
export function cleanText(v: string): string {
  return v.includes('\u0000') ? v.replace(/\u0000/g, '\uFFFD') : v
}

/** Column kinds of an unnest insert. @internal */
export type ColumnType = 'int' | 'bigint' | 'float' | 'text' | 'bool' | 'smallint'

const PG_TYPE: Readonly<Record<ColumnType, string>> = {
  int: 'integer',
  smallint: 'smallint',
  bigint: 'bigint',
  float: 'double precision',
  text: 'text',
  bool: 'boolean',
}

/**
 * Rows gathered column by column for one `INSERT … SELECT FROM unnest(…)` statement. @internal
 */
export class Columns<C extends string> {
  readonly data: Record<C, unknown[]>
  length = 0

  constructor(readonly spec: readonly (readonly [C, ColumnType])[]) {
    this.data = Object.fromEntries(spec.map(([c]) => [c, []])) as unknown as Record<C, unknown[]>
  }

  push(row: Record<C, unknown>): void {
    for (const [c] of this.spec) this.data[c].push(row[c])
    this.length++
  }

  /** One array literal per column, in `spec` order. */
  params(): string[] {
    return this.spec.map(([c, t]) => {
      const v = this.data[c]
      if (t === 'text') return textArray(v as (string | null)[])
      if (t === 'bool') return boolArray(v as (boolean | null)[])
      return numArray(v as (number | null)[])
    })
  }

  /** `unnest($1::bigint[], $2::text[], …) AS u (a, b, …)` with parameters from `offset` + 1. */
  unnest(offset = 0): string {
    const args = this.spec.map(([, t], i) => `$${offset + i + 1}::${PG_TYPE[t]}[]`)
    return `unnest(${args.join(', ')}) AS u (${this.spec.map(([c]) => c).join(', ')})`
  }

  names(): string {
    return this.spec.map(([c]) => c).join(', ')
  }

  clear(): void {
    for (const [c] of this.spec) this.data[c].length = 0
    this.length = 0
  }
}
