import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { codecBenchmark } from './codec.bench.js'
import { httpBenchmark } from './http.bench.js'
import { ingestBenchmark } from './ingest.bench.js'
import { type Benchmark, renderText, writeSection } from './lib/report.js'
import { pgBenchmark } from './pg.bench.js'
import { scaleoutBenchmark } from './scaleout.bench.js'
import { storeBenchmark } from './store.bench.js'
import { wsBenchmark } from './ws.bench.js'

/** Every benchmark, in the order `pnpm bench` runs them. Register new ones here. */
const BENCHMARKS: readonly Benchmark[] = [
  codecBenchmark,
  ingestBenchmark,
  storeBenchmark,
  wsBenchmark,
  pgBenchmark,
  scaleoutBenchmark,
  httpBenchmark,
]

const DOCS = resolve(fileURLToPath(new URL('.', import.meta.url)), '../docs/benchmarks.md')

function usage(): string {
  const names = BENCHMARKS.map((b) => `  ${b.name.padEnd(10)} ${b.description}`).join('\n')
  return `usage: pnpm bench [name…] [--quick] [--no-write]

  --quick      short rounds (smoke test; the figures are not meaningful)
  --no-write   do not update docs/benchmarks.md

benchmarks:
${names}`
}

async function main(argv: string[]): Promise<number> {
  let quick = false
  let write = true
  const names: string[] = []
  for (const arg of argv) {
    if (arg === '--') continue
    if (arg === '--quick') quick = true
    else if (arg === '--no-write') write = false
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${usage()}\n`)
      return 0
    } else if (arg.startsWith('-')) {
      process.stderr.write(`unknown option ${arg}\n\n${usage()}\n`)
      return 2
    } else names.push(arg)
  }
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n))
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown benchmark ${unknown.map((n) => `"${n}"`).join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}\n`,
    )
    return 2
  }
  const selected = names.length > 0 ? BENCHMARKS.filter((b) => names.includes(b.name)) : BENCHMARKS
  for (const bench of selected) {
    const report = await bench.run({ quick })
    process.stdout.write(`${renderText(report)}\n\n`)
    if (write) {
      writeSection(DOCS, report)
      process.stderr.write(`${bench.name}: updated ${DOCS}\n`)
    }
  }
  return 0
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? error.message : String(error)}\n`,
    )
    process.exitCode = 1
  },
)
