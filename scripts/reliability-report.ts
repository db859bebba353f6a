/**
 * `pnpm reliability`: runs the fault and hostile-input tests (tests/reliability/fault,
 * tests/reliability/hostile and the reference server's hostile HTTP and browser tests) with
 * `MESHTAP_RELIABILITY_REPORT` pointing at a temporary file, where every test appends the rows it
 * reports (tests/reliability/lib/report.ts). Then it rewrites the section of docs/reliability.md
 * between `<!-- reliability:results:start -->` and `<!-- reliability:results:end -->`: the machine,
 * the code and the date of the run, pass or fail per test file, and one table per group with every
 * row. The rest of the document is left as it is. The soak test is not run here (`pnpm soak`).
 *
 * A failing test still gets its section written, with the failure marked, and the script exits
 * with status 1.
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  describeMachine,
  describeRevision,
  formatMachine,
  type MachineInfo,
  startBusyProbe,
} from '../bench/lib/machine.js'
import type { RecordedResult } from '../tests/reliability/lib/report.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DOC = join(ROOT, 'docs', 'reliability.md')
const START = '<!-- reliability:results:start -->'
const END = '<!-- reliability:results:end -->'
/** The variable tests/reliability/lib/report.ts reads (its `RELIABILITY_REPORT_ENV`). */
const REPORT_ENV = 'MESHTAP_RELIABILITY_REPORT'
/** Settings of the tests that change what a run covers; named in the report when set. */
const KNOBS = ['CI', 'HOSTILE_FUZZ_SCALE', 'HOSTILE_OVERLOAD_BURST_MS', 'MOSQUITTO_URL']

/** One vitest invocation. */
interface Run {
  project: string
  files: string[]
}

const RUNS: Run[] = [
  { project: 'reliability', files: ['tests/reliability/fault', 'tests/reliability/hostile'] },
  {
    project: 'reference-server',
    files: [
      'examples/reference-server/test/hostile-http.test.ts',
      'examples/reference-server/test/hostile-browser.test.ts',
    ],
  },
]

/** The parts of vitest's JSON report read here. */
interface JsonReport {
  testResults: {
    name: string
    status: string
    message?: string
    startTime?: number
    endTime?: number
    assertionResults: {
      ancestorTitles: string[]
      title: string
      status: string
      failureMessages?: string[]
    }[]
  }[]
}

/** What became of one test file. */
interface FileOutcome {
  file: string
  status: 'passed' | 'failed' | 'skipped'
  counts: Record<string, number>
  seconds: number | undefined
  /** Full names (`describe > it`) of its failed tests, with the first line of the error. */
  failures: { test: string; message: string }[]
}

/** A vitest invocation that did not write its report (it crashed or found no files). */
interface BrokenRun {
  run: Run
  code: number | null
}

function runVitest(run: Run, reportFile: string, jsonFile: string): Promise<number | null> {
  const require = createRequire(join(ROOT, 'package.json'))
  const vitest = join(require.resolve('vitest/package.json'), '..', 'vitest.mjs')
  const args = [
    vitest,
    'run',
    '--project',
    run.project,
    ...run.files,
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${jsonFile}`,
  ]
  console.log(`\n$ vitest ${args.slice(1).join(' ')}\n`)
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, [REPORT_ENV]: reportFile },
  })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => resolve(code))
  })
}

function fileOutcomes(report: JsonReport): FileOutcome[] {
  return report.testResults.map((r) => {
    const counts: Record<string, number> = {}
    const failures: FileOutcome['failures'] = []
    for (const a of r.assertionResults) {
      counts[a.status] = (counts[a.status] ?? 0) + 1
      if (a.status === 'failed') {
        failures.push({
          test: [...a.ancestorTitles, a.title].join(' > '),
          message: firstLine(a.failureMessages?.[0] ?? ''),
        })
      }
    }
    // A file can fail outside its tests (a hook, an import): its own message says why.
    if (r.status === 'failed' && failures.length === 0) {
      failures.push({ test: '(the file itself)', message: firstLine(r.message ?? '') })
    }
    const passed = counts.passed ?? 0
    const status: FileOutcome['status'] =
      r.status === 'failed' || failures.length > 0 ? 'failed' : passed === 0 ? 'skipped' : 'passed'
    const seconds =
      r.startTime !== undefined && r.endTime !== undefined
        ? (r.endTime - r.startTime) / 1000
        : undefined
    return { file: relative(ROOT, r.name), status, counts, seconds, failures }
  })
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? ''
  return line.length > 300 ? `${line.slice(0, 300)}…` : line
}

function readRows(path: string): RecordedResult[] {
  if (!existsSync(path)) return []
  const rows: RecordedResult[] = []
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue
    try {
      rows.push(JSON.parse(line) as RecordedResult)
    } catch {
      console.warn(`reliability-report: skipped a line that is not JSON: ${line.slice(0, 120)}`)
    }
  }
  return rows
}

/** Text made safe for a Markdown table cell: no HTML, no emphasis, no invisible characters. */
function cell(text: string): string {
  return text
    .replace(/[\\`*_[\]|~]/g, (c) => `\\${c}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r?\n/g, ' ')
    .replace(
      /[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/gu,
      (c) => `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`,
    )
}

/** Version strings of the outside programs the tests use, where they are installed. */
function toolVersions(): string[] {
  const out: string[] = []
  const probe = (cmd: string, args: string[], pattern: RegExp): string | undefined => {
    try {
      const text = execFileSync(cmd, args, {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 10_000,
      })
      return pattern.exec(text)?.[1]
    } catch (e) {
      // `mosquitto -h` prints its version and exits with status 3.
      const text = `${(e as { stdout?: string }).stdout ?? ''}`
      return pattern.exec(text)?.[1]
    }
  }
  const mosquitto = existsSync('/usr/sbin/mosquitto')
    ? probe('/usr/sbin/mosquitto', ['-h'], /mosquitto version (\S+)/)
    : undefined
  out.push(
    mosquitto
      ? `Mosquitto ${mosquitto}`
      : 'no Mosquitto (the in-process aedes broker; the Mosquitto-only fault tests are skipped)',
  )
  try {
    const require = createRequire(join(ROOT, 'package.json'))
    const version = (require('better-sqlite3/package.json') as { version: string }).version
    out.push(`better-sqlite3 ${version}`)
  } catch {
    // not installed: the tests will say so
  }
  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
  const browser = existsSync(chromium)
    ? probe(chromium, ['--version'], /Chromium (\S+)/)
    : undefined
  out.push(browser ? `Chromium ${browser}` : 'no Chromium (the browser test is skipped)')
  return out
}

function formatSeconds(s: number | undefined): string {
  if (s === undefined) return ''
  if (s < 60) return `${s.toFixed(1)} s`
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
}

function heading(group: string): string {
  return group.charAt(0).toUpperCase() + group.slice(1)
}

function renderSection(options: {
  machine: MachineInfo
  revision: string | undefined
  tools: string[]
  others: number | undefined
  seconds: number
  outcomes: FileOutcome[]
  broken: BrokenRun[]
  rows: RecordedResult[]
}): string {
  const { machine, outcomes, rows, broken } = options
  const failedFiles = outcomes.filter((o) => o.status === 'failed')
  const tests = outcomes.reduce((n, o) => n + Object.values(o.counts).reduce((a, b) => a + b, 0), 0)
  const knobs = KNOBS.filter((k) => process.env[k] !== undefined).map(
    (k) => `\`${k}=${process.env[k]}\``,
  )
  const date = `${machine.date.slice(0, 16).replace('T', ' ')} UTC`
  const lines: string[] = [
    START,
    '<!-- Generated by `pnpm reliability` (scripts/reliability-report.ts); the next run replaces everything between these markers. -->',
    '',
    `Run of ${date} on ${formatMachine(machine)}; load average ${machine.loadAvg1} at the start${
      options.others === undefined
        ? ''
        : `, other processes used ${Math.round(options.others * 100)} % of the machine during the run`
    }. ${options.tools.join(', ')}. Code: ${options.revision ?? 'not a git checkout'}.${
      knobs.length > 0 ? ` Settings: ${knobs.join(', ')}.` : ''
    }`,
    '',
    failedFiles.length === 0 && broken.length === 0
      ? `**All ${outcomes.length} test files passed** (${tests} tests, ${formatSeconds(options.seconds)} in all).`
      : `**${failedFiles.length} of ${outcomes.length} test files FAILED**${
          broken.length > 0 ? ` and ${broken.length} vitest run(s) gave no report` : ''
        } (${tests} tests, ${formatSeconds(options.seconds)} in all). Rows from a failed test are marked.`,
    '',
    '| test file | result | tests | time |',
    '| --- | --- | --- | --- |',
  ]
  for (const o of outcomes) {
    const counts = Object.entries(o.counts)
      .map(([status, n]) => `${n} ${status}`)
      .join(', ')
    const result = o.status === 'failed' ? '**FAILED**' : o.status
    lines.push(`| \`${o.file}\` | ${result} | ${counts} | ${formatSeconds(o.seconds)} |`)
  }
  for (const b of broken) {
    lines.push(
      `| ${b.run.files.map((f) => `\`${f}\``).join(', ')} | **no report** (vitest exited with ${b.code}) | | |`,
    )
  }
  const failures = outcomes.flatMap((o) => o.failures.map((f) => ({ file: o.file, ...f })))
  if (failures.length > 0) {
    lines.push('', 'Failures:', '')
    for (const f of failures) lines.push(`- \`${f.file}\`, ${cell(f.test)}: ${cell(f.message)}`)
  }

  // Groups in the order of the files that reported them, rows in the order they were reported.
  const fileOrder = new Map(outcomes.map((o, i) => [o.file, i]))
  const failed = new Set(failures.map((f) => `${f.file}\n${f.test}`))
  const groups = new Map<string, RecordedResult[]>()
  const rank = (r: RecordedResult) => fileOrder.get(r.file ?? '') ?? Number.MAX_SAFE_INTEGER
  // A stable sort: the rows of one file keep their order; workers interleave files in the log.
  for (const r of [...rows].sort((a, b) => rank(a) - rank(b))) {
    const list = groups.get(r.group) ?? []
    groups.set(r.group, list)
    list.push(r)
  }
  const orderOf = (list: RecordedResult[]) => Math.min(...list.map(rank))
  const sorted = [...groups].sort((a, b) => orderOf(a[1]) - orderOf(b[1]))
  if (sorted.length === 0) lines.push('', 'No test reported a row.')
  for (const [group, list] of sorted) {
    const files = [...new Set(list.map((r) => r.file).filter((f) => f !== undefined))]
    const withFigures = list.some((r) => r.figures && Object.keys(r.figures).length > 0)
    lines.push('', `### ${heading(group)}`, '')
    if (files.length > 0) lines.push(`From ${files.map((f) => `\`${f}\``).join(', ')}.`, '')
    lines.push(
      withFigures ? '| input | result | figures |' : '| input | result |',
      withFigures ? '| --- | --- | --- |' : '| --- | --- |',
    )
    for (const r of list) {
      const testFailed = r.test !== undefined && failed.has(`${r.file}\n${r.test}`)
      const result = `${testFailed ? '**test failed:** ' : ''}${cell(r.result)}`
      const figures = withFigures
        ? ` ${cell(
            Object.entries(r.figures ?? {})
              .map(([k, v]) => `${k} ${v}`)
              .join(', '),
          )} |`
        : ''
      lines.push(`| ${cell(r.input)} | ${result} |${figures}`)
    }
  }
  lines.push(END)
  return lines.join('\n')
}

function replaceSection(section: string): void {
  const doc = readFileSync(DOC, 'utf8')
  const start = doc.indexOf(START)
  const end = doc.indexOf(END)
  if (start < 0 || end < start) {
    throw new Error(
      `reliability-report: ${relative(ROOT, DOC)} has no ${START} … ${END} section to replace`,
    )
  }
  writeFileSync(DOC, `${doc.slice(0, start)}${section}${doc.slice(end + END.length)}`)
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'meshtap-reliability-'))
  try {
    const reportFile = join(dir, 'rows.jsonl')
    const machine = describeMachine()
    const revision = describeRevision(ROOT)
    const busy = startBusyProbe()
    const t0 = performance.now()
    const outcomes: FileOutcome[] = []
    const broken: BrokenRun[] = []
    let worst = 0
    for (const [i, run] of RUNS.entries()) {
      const jsonFile = join(dir, `vitest-${i}.json`)
      const code = await runVitest(run, reportFile, jsonFile)
      if (code !== 0) worst = 1
      if (!existsSync(jsonFile)) {
        broken.push({ run, code })
        continue
      }
      const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as JsonReport
      outcomes.push(...fileOutcomes(report).sort((x, y) => x.file.localeCompare(y.file)))
    }
    const seconds = (performance.now() - t0) / 1000
    const others = busy.stop()?.others
    if (outcomes.some((o) => o.status === 'failed')) worst = 1
    const section = renderSection({
      machine,
      revision,
      tools: toolVersions(),
      others,
      seconds,
      outcomes,
      broken,
      rows: readRows(reportFile),
    })
    replaceSection(section)
    const failed = outcomes.filter((o) => o.status === 'failed').length
    console.log(
      `\nreliability-report: ${outcomes.length} test files, ${failed} failed${
        broken.length > 0 ? `, ${broken.length} run(s) without a report` : ''
      }; wrote the results section of ${relative(ROOT, DOC)}`,
    )
    return worst
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (e: unknown) => {
    console.error(e)
    process.exitCode = 1
  },
)
