/**
 * `pnpm soak`: runs the reference server with its simulator at a steady rate for a while and
 * records memory, event-loop delay, queue depth, rates and database size. Exit code 0 when every
 * check passed, 1 when one failed, 2 on a usage error.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { readSamples } from './csv.js'
import { chartTitle, renderSoakChart, type SoakSummary, summarise } from './report.js'
import { runSoak } from './run-soak.js'

const USAGE = `Usage: pnpm soak [options]

  --minutes N      length of the run (default 10)
  --rate N         envelopes per second from the simulator (default 200)
  --interval N     seconds between samples (default 10)
  --nodes N        simulated nodes (default 200)
  --gateways N     simulated gateways (default 6)
  --ws N           WebSocket viewers on the live feed (default 2)
  --rss-limit N    resident memory bound in MB (default 640)
  --out DIR        output folder (default test-output/soak): soak.csv, soak.png, summary.json, server.log
  --reanalyse DIR  recompute DIR/summary.json and DIR/soak.png from DIR/soak.csv (no new run)
  -h, --help       this help`

function number(value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n < min) {
    process.stderr.write(`soak: --${name} expects a number ≥ ${min}, got "${value}"\n${USAGE}\n`)
    process.exit(2)
  }
  return n
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      options: {
        minutes: { type: 'string' },
        rate: { type: 'string' },
        interval: { type: 'string' },
        nodes: { type: 'string' },
        gateways: { type: 'string' },
        ws: { type: 'string' },
        'rss-limit': { type: 'string' },
        out: { type: 'string' },
        reanalyse: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      // `pnpm soak -- --minutes 2` passes the `--` through.
      args: process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--')),
      strict: true,
    }).values
  } catch (e) {
    process.stderr.write(`soak: ${(e as Error).message}\n${USAGE}\n`)
    process.exit(2)
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  const str = (k: string) => values[k] as string | undefined
  const again = str('reanalyse')
  if (again !== undefined) {
    const old = JSON.parse(readFileSync(join(again, 'summary.json'), 'utf8')) as SoakSummary
    const samples = readSamples(readFileSync(join(again, 'soak.csv'), 'utf8'))
    const s = summarise({
      samples,
      run: old.run,
      shutdown: old.shutdown,
      limits: { rssLimitMb: number(str('rss-limit'), 'rss-limit', 640, 16) },
    })
    writeFileSync(join(again, 'summary.json'), `${JSON.stringify(s, null, 2)}\n`)
    writeFileSync(join(again, 'soak.png'), renderSoakChart(samples, chartTitle(s)))
    report(s, join(again, 'soak.csv'), join(again, 'soak.png'), join(again, 'summary.json'), false)
    return
  }
  const controller = new AbortController()
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`soak: ${sig}: stopping early, writing what was sampled…\n`)
      controller.abort()
    })
  }
  const result = await runSoak({
    minutes: number(str('minutes'), 'minutes', 10, 0.1),
    ratePerS: number(str('rate'), 'rate', 200, 1),
    intervalS: number(str('interval'), 'interval', 10, 0.5),
    nodes: number(str('nodes'), 'nodes', 200, 1),
    gateways: number(str('gateways'), 'gateways', 6, 1),
    wsViewers: number(str('ws'), 'ws', 2, 0),
    limits: { rssLimitMb: number(str('rss-limit'), 'rss-limit', 640, 16) },
    outDir: str('out') ?? 'test-output/soak',
    log: (line) => process.stdout.write(`${line}\n`),
    signal: controller.signal,
  })
  report(result.summary, result.csvPath, result.pngPath, result.summaryPath, result.aborted)
}

function report(
  s: SoakSummary,
  csvPath: string,
  pngPath: string,
  summaryPath: string,
  aborted: boolean,
): void {
  process.stdout.write(
    [
      '',
      `${s.pass ? 'PASS' : 'FAIL'}: ${s.run.samples} samples over ${(s.run.durationS / 60).toFixed(1)} min${aborted ? ' (stopped early)' : ''}`,
      ...s.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`),
      `  throughput (second half): ${s.throughput.receivedPerS} envelopes/s in, ${s.throughput.writtenPerS} records/s written, server CPU ${s.throughput.cpuPct} %`,
      `  event-loop delay: p50 ${s.loopDelayMs.p50Median} ms, p99 ${s.loopDelayMs.p99Median} ms (worst interval ${s.loopDelayMs.p99Worst} ms), max ${s.loopDelayMs.maxWorst} ms`,
      `  files: ${csvPath}, ${pngPath}, ${summaryPath}`,
      '',
    ].join('\n'),
  )
  process.exitCode = s.pass ? 0 : 1
}

main().catch((e: unknown) => {
  process.stderr.write(`soak: ${(e as Error)?.stack ?? String(e)}\n`)
  process.exit(1)
})
