/**
 * The reliability report helpers of tests/reliability/lib/report.ts (rows printed and, under
 * `pnpm reliability`, recorded for docs/reliability.md), for the hostile tests of this package.
 *
 * They are loaded at run time because that file belongs to the tests/reliability TypeScript
 * project, which depends on this one: a static import would put it in this project too, and
 * `tsc -b` refuses a file outside the project's root (TS6059/TS6307). Only its types are restated
 * here; the logic is not copied.
 */

/** One fault or class of input tried, and its result (see tests/reliability/lib/report.ts). */
export interface ResultRow {
  input: string
  result: string
  figures?: Record<string, number | string>
}

/** Rows printed together at the end of a file (see tests/reliability/lib/report.ts). */
export interface ResultList {
  add(row: ResultRow): void
  print(): void
}

interface ReportModule {
  reportResult(group: string, row: ResultRow): void
  createResultList(group: string): ResultList
}

const url = new URL('../../../tests/reliability/lib/report.ts', import.meta.url).href
const report = (await import(/* @vite-ignore */ url)) as ReportModule

/** Prints one result as `[group] input: result` and records it for the reliability report. */
export const reportResult: ReportModule['reportResult'] = report.reportResult

/** A list of results recorded as they are added and printed together (in `afterAll`). */
export const createResultList: ReportModule['createResultList'] = report.createResultList
