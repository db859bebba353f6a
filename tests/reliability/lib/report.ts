/**
 * What the reliability tests tried and what happened, one row per fault or class of input.
 * Each row is printed for whoever runs the tests and, when the environment variable
 * {@link RELIABILITY_REPORT_ENV} names a file, appended to it as one JSON line
 * ({@link RecordedResult}). `pnpm reliability` (scripts/reliability-report.ts) sets it and turns
 * the lines into the results section of docs/reliability.md.
 */
import { appendFileSync } from 'node:fs'
import { isAbsolute, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, TestRunner } from 'vitest'

/** The environment variable naming the file rows are appended to (JSON lines). */
export const RELIABILITY_REPORT_ENV = 'MESHTAP_RELIABILITY_REPORT'

/** The repository root: recorded test paths are relative to it. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** One fault or class of input tried, and its result. */
export interface ResultRow {
  /** What was tried: the fault made or the input sent. */
  input: string
  /** What happened, with the figures measured in this run. */
  result: string
  /** Figures of the row for a machine reader (the report shows them in a column of their own). */
  figures?: Record<string, number | string>
}

/** A row as recorded in the report file: one JSON object per line. */
export interface RecordedResult extends ResultRow {
  /** The table the row belongs to, e.g. `fault` or `hostile overload`. */
  group: string
  /** The test file that produced it, relative to the repository root (when known). */
  file?: string
  /** The full name of the test that produced it (`describe > it`; none from a hook). */
  test?: string
}

/** The console form of a row: `input: result (figures)`. */
function formatResult(row: ResultRow): string {
  const figures = row.figures
    ? ` (${Object.entries(row.figures)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`
    : ''
  return `${row.input}: ${row.result}${figures}`
}

/**
 * Appends the row to the report file when {@link RELIABILITY_REPORT_ENV} is set. One synchronous
 * append of one line per row, so several vitest workers can share the file.
 */
function recordResult(group: string, row: ResultRow): void {
  const path = process.env[RELIABILITY_REPORT_ENV]
  if (!path) return
  const state = expect.getState()
  const testPath = state.testPath
  const recorded: RecordedResult = {
    group,
    input: row.input,
    result: row.result,
    ...(row.figures ? { figures: row.figures } : {}),
    ...(testPath
      ? { file: (isAbsolute(testPath) ? relative(ROOT, testPath) : testPath).replaceAll('\\', '/') }
      : {}),
    // In a hook (afterAll) the state still names the last test: record no test there.
    ...(TestRunner.getCurrentTest() && state.currentTestName
      ? { test: state.currentTestName }
      : {}),
  }
  appendFileSync(path, `${JSON.stringify(recorded)}\n`)
}

/**
 * Prints one result as `[group] input: result` and records it in the report file.
 *
 * @example
 * reportResult('fault', { input: 'disk full', result: 'all 3000 stored, none dropped' })
 */
export function reportResult(group: string, row: ResultRow): void {
  recordResult(group, row)
  console.info(`[${group}] ${formatResult(row)}`)
}

/** Rows collected during a test file and printed together by {@link ResultList.print}. */
export interface ResultList {
  /** Records the row in the report file now, and keeps it for {@link ResultList.print}. */
  add(row: ResultRow): void
  /** Prints every row added so far under the group's name (call it in `afterAll`). */
  print(): void
}

/**
 * A list of results printed as one block at the end of a test file; each row is recorded in the
 * report file as it is added, so a file that fails later still leaves its rows.
 *
 * @example
 * const results = createResultList('hostile overload')
 * afterAll(() => results.print())
 * results.add({ input: 'burst offered', result: '279,000 messages in 60 s' })
 */
export function createResultList(group: string): ResultList {
  const lines: string[] = []
  return {
    add(row) {
      recordResult(group, row)
      lines.push(`- ${formatResult(row)}`)
    },
    print() {
      console.log(`\n${group}:\n${lines.join('\n')}\n`)
    },
  }
}
