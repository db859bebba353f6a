import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { formatMachine, type MachineInfo, NOISY_THRESHOLD } from './machine.js'
import type { Spread } from './timing.js'

/** Options every benchmark receives. */
export interface BenchOptions {
  /** Short runs for smoke tests: the figures are not meaningful. */
  quick: boolean
}

/** A table of the report. Cells are markdown; `**bold**` is stripped for the terminal. */
export interface Table {
  caption?: string
  header: string[]
  rows: string[][]
  /** Per column; default: first column left, the others right. */
  align?: ('l' | 'r')[]
}

/** How much CPU other processes took during the timed rounds. */
export interface BusySummary {
  /** Median and maximum over the rounds, as a share of the whole machine (0..1). */
  medianOthers: number
  maxOthers: number
  /** Rounds in which others used more than {@link NOISY_THRESHOLD}. */
  noisyRounds: number
  rounds: number
}

/** What a benchmark returns: enough to print a summary and to write its section of the docs. */
export interface BenchReport {
  /** Registry name, also the marker name in docs/benchmarks.md. */
  name: string
  title: string
  /** Markdown paragraphs: what was measured and how. */
  what: string[]
  machine: MachineInfo
  /** The code measured (commit, uncommitted changes). */
  revision: string | undefined
  busy: BusySummary | undefined
  tables: Table[]
  /** Markdown bullet points after the tables. */
  notes: string[]
  /** One line for the terminal, e.g. the ratio. */
  headline: string
  /** How it was timed, e.g. `7 rounds × 1.0 s each, alternating`. */
  settings: string
  quick: boolean
}

/** A registered benchmark. */
export interface Benchmark {
  name: string
  description: string
  run(options: BenchOptions): Promise<BenchReport>
}

// ---------------------------------------------------------------------------------------------
// Number formatting

/** `123 k`, `87.4 k`, `1.16 M`, `950`: three significant digits. */
export function formatRate(v: number): string {
  if (!Number.isFinite(v)) return String(v)
  const [div, unit] = v >= 1e6 ? [1e6, ' M'] : v >= 1e3 ? [1e3, ' k'] : [1, '']
  const x = v / div
  const digits = x >= 100 ? 0 : x >= 10 ? 1 : 2
  return `${x.toFixed(digits)}${unit}`
}

/** `110..130 k` (the unit of the larger value). */
export function formatRange(s: Spread): string {
  const lo = formatRate(s.min)
  const hi = formatRate(s.max)
  const unit = hi.endsWith(' M') ? ' M' : hi.endsWith(' k') ? ' k' : ''
  if (unit && lo.endsWith(unit)) return `${lo.slice(0, -unit.length)}..${hi}`
  return `${lo}..${hi}`
}

/** `1.85×` */
export function formatRatio(v: number): string {
  return `${v.toFixed(2)}×`
}

/** `12 %` */
export function formatPercent(v: number): string {
  return `${(v * 100).toFixed(v < 0.1 ? 1 : 0)} %`
}

export function formatBusy(b: BusySummary | undefined): string {
  if (!b) return 'not measured (no /proc/stat)'
  const verdict =
    b.noisyRounds === 0
      ? 'quiet'
      : `**NOISY**: ${b.noisyRounds} of ${b.rounds} rounds above ${formatPercent(NOISY_THRESHOLD)}, treat the absolute figures as low`
  return `other processes used ${formatPercent(b.medianOthers)} of the machine (median over ${b.rounds} timed rounds, max ${formatPercent(b.maxOthers)}): ${verdict}`
}

// ---------------------------------------------------------------------------------------------
// Markdown

function markdownTable(t: Table): string {
  const align = t.header.map((_, i) => t.align?.[i] ?? (i === 0 ? 'l' : 'r'))
  const lines = [
    `| ${t.header.join(' | ')} |`,
    `|${align.map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.join(' | ')} |`),
  ]
  return lines.join('\n')
}

/** The section body between the markers, markers included. */
export function renderSection(r: BenchReport): string {
  const out: string[] = [`<!-- bench:${r.name}:start -->`, `## \`${r.name}\`: ${r.title}`, '']
  if (r.quick) {
    out.push('> **Smoke run (`--quick`)**: rounds too short for the figures to mean anything.', '')
  }
  for (const p of r.what) out.push(p, '')
  out.push(
    `**Machine:** ${formatMachine(r.machine)}; load average ${r.machine.loadAvg1} at the start.`,
    '',
  )
  if (r.revision) out.push(`**Code:** ${r.revision}.`, '')
  out.push(`**Noise:** ${formatBusy(r.busy)}.`, '')
  for (const t of r.tables) {
    if (t.caption) out.push(t.caption, '')
    out.push(markdownTable(t), '')
  }
  for (const n of r.notes) out.push(`- ${n}`)
  if (r.notes.length > 0) out.push('')
  out.push(`_Measured ${r.machine.date} with \`pnpm bench ${r.name}\` (${r.settings})._`)
  out.push(`<!-- bench:${r.name}:end -->`)
  return out.join('\n')
}

const INTRO = `# Benchmarks

Run them from the repository root:

\`\`\`sh
pnpm bench            # every benchmark
pnpm bench codec      # one of them
pnpm bench codec --quick --no-write   # smoke test: short rounds, leaves this file alone
\`\`\`

Each benchmark replaces its own section of this file (between its \`bench:<name>\` markers) and
leaves the rest alone, so sections can come from different runs and dates.

**Read ratios, not absolute speeds.** The machines this project runs on are small shared VMs: a busy
neighbour costs 30–40 % of the throughput, so packets per second move a lot from one run to the next.
Every speed is therefore also given as a ratio to a baseline that is measured in the same run, on the
same bytes, with rounds alternating between the two, and each section records how much CPU other
processes used while it was timed (above 15 % of the machine the run is marked noisy). Under
contention even a ratio moves, by 10–20 % from run to run on a 2-core VM, because the two sides
suffer differently (a chain that allocates more also loses the spare core its garbage collector ran
on): prefer quiet runs, and repeat a run before reading anything into a change smaller than that.
Speeds are single-threaded unless a section says otherwise.
`

/**
 * Writes (or replaces) the section of `report` in the markdown file, creating the file with an
 * introduction when it does not exist.
 */
export function writeSection(file: string, report: BenchReport): void {
  const start = `<!-- bench:${report.name}:start -->`
  const end = `<!-- bench:${report.name}:end -->`
  const section = renderSection(report)
  let text = existsSync(file) ? readFileSync(file, 'utf8') : INTRO
  const a = text.indexOf(start)
  const b = text.indexOf(end)
  if (a >= 0 && b > a) {
    text = text.slice(0, a) + section + text.slice(b + end.length)
  } else {
    text = `${text.trimEnd()}\n\n${section}\n`
  }
  writeFileSync(file, text)
}

// ---------------------------------------------------------------------------------------------
// Terminal

function plain(cell: string): string {
  return cell.replace(/\*\*/g, '').replace(/`/g, '')
}

function textTable(t: Table): string {
  const rows = [t.header, ...t.rows].map((r) => r.map(plain))
  const widths = t.header.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  const align = t.header.map((_, i) => t.align?.[i] ?? (i === 0 ? 'l' : 'r'))
  const line = (r: string[]) =>
    r
      .map((c, i) => (align[i] === 'r' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  const out = [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  ')]
  for (const r of rows.slice(1)) out.push(line(r))
  return out.join('\n')
}

/** A readable summary for stdout. */
export function renderText(r: BenchReport): string {
  const out: string[] = [`== ${r.name}: ${r.title}${r.quick ? ' (--quick smoke run)' : ''}`, '']
  out.push(`machine: ${formatMachine(r.machine)}`)
  if (r.revision) out.push(`code:    ${plain(r.revision)}`)
  out.push(`noise:   ${plain(formatBusy(r.busy))}`)
  out.push(`timing:  ${r.settings}`, '')
  for (const t of r.tables) {
    if (t.caption) out.push(plain(t.caption))
    out.push(textTable(t), '')
  }
  for (const n of r.notes) out.push(`- ${plain(n)}`)
  out.push('', `=> ${plain(r.headline)}`)
  return out.join('\n')
}
