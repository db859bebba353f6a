/**
 * `pnpm bench http`: requests/s and latency of the reference server's HTTP API at 1M receptions
 * (100k with `--quick`), with autocannon on loopback: the node list, a paginated positions query
 * (first page, then the second page through the cursor) and, as baselines in the same run and on
 * the same server, a trivial route (`/api/config`, a constant object through the whole plugin
 * stack) and `/api/health`. Environment: `HTTP_BENCH_RECEPTIONS` overrides the dataset size.
 * @module
 */
import { rmSync } from 'node:fs'
import { type CannonResult, cannon } from './lib/http-autocannon.js'
import { buildHttpDataset } from './lib/http-dataset.js'
import { startBenchServer } from './lib/http-server.js'
import {
  describeMachine,
  describeRevision,
  NOISY_THRESHOLD,
  readProcStat,
  waitForQuiet,
} from './lib/machine.js'
import { processTicks } from './lib/processes.js'
import {
  type Benchmark,
  type BusySummary,
  formatPercent,
  formatRate,
  formatRatio,
} from './lib/report.js'
import { median } from './lib/timing.js'

const CONNECTIONS = 10

interface Endpoint {
  label: string
  path: string
}

interface Measured extends Endpoint {
  result: CannonResult
  bodyBytes: number
  /** Cores the server process used during the timed run. */
  serverCores: number | undefined
  /** Share of the machine used by processes other than the server and this one. */
  others: number | undefined
}

function ms(v: number): string {
  return v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2)
}

async function getJson(url: string): Promise<{ body: Record<string, unknown>; bytes: number }> {
  const res = await fetch(url)
  const text = await res.text()
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${text.slice(0, 200)}`)
  return { body: JSON.parse(text) as Record<string, unknown>, bytes: Buffer.byteLength(text) }
}

async function measure(
  base: string,
  ep: Endpoint,
  serverPid: number,
  seconds: number,
  warmupSeconds: number,
): Promise<Measured> {
  const url = `${base}${ep.path}`
  const { bytes } = await getJson(url)
  await cannon({ url, connections: CONNECTIONS, duration: warmupSeconds })
  const stat0 = readProcStat()
  const srv0 = processTicks(serverPid)
  const self0 = processTicks(process.pid)
  const result = await cannon({ url, connections: CONNECTIONS, duration: seconds })
  const stat1 = readProcStat()
  const srv1 = processTicks(serverPid)
  const self1 = processTicks(process.pid)
  let serverCores: number | undefined
  let others: number | undefined
  if (stat0 && stat1 && srv0 !== undefined && srv1 !== undefined) {
    const total = stat1.total - stat0.total
    const busy = stat1.busy - stat0.busy
    const selfTicks = self0 !== undefined && self1 !== undefined ? self1 - self0 : 0
    // Both in jiffies; total counts every core.
    const cores = Math.max(1, (await import('node:os')).cpus().length)
    if (total > 0) {
      serverCores = ((srv1 - srv0) / total) * cores
      others = Math.min(1, Math.max(0, (busy - (srv1 - srv0) - selfTicks) / total))
    }
  }
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(
      `${ep.path}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`,
    )
  }
  return { ...ep, result, bodyBytes: bytes, serverCores, others }
}

export const httpBenchmark: Benchmark = {
  name: 'http',
  description:
    'reference server HTTP API at 1M receptions: node list, positions pages (autocannon)',
  async run({ quick }) {
    const machine = describeMachine()
    const wanted = Number(process.env.HTTP_BENCH_RECEPTIONS) || (quick ? 100_000 : 1_000_000)
    const seconds = quick ? 3 : 10
    const warmupSeconds = quick ? 1 : 2
    process.stderr.write(`http: building a dataset of about ${wanted} receptions…\n`)
    const ds = await buildHttpDataset(wanted)
    process.stderr.write(
      `http: ${ds.receptions} receptions, ${ds.nodes} nodes in ${(ds.buildMs / 1000).toFixed(1)} s; starting the server…\n`,
    )
    const server = await startBenchServer(ds.dir, ds.file)
    const measured: Measured[] = []
    let limit = 100
    try {
      const node = `!${ds.busyNode.toString(16).padStart(8, '0')}`
      // 100 a page; a smaller dataset (`--quick`) has too few reports per node for two such pages.
      limit = ds.busyNodePositions > 100 ? 100 : Math.max(1, Math.floor(ds.busyNodePositions / 2))
      const first = `/api/positions?node=${encodeURIComponent(node)}&limit=${limit}`
      const page1 = await getJson(`${server.url}${first}`)
      const cursor = page1.body.nextCursor
      if (typeof cursor !== 'string') throw new Error(`no nextCursor for ${first}`)
      const second = `${first}&cursor=${encodeURIComponent(cursor)}`
      const endpoints: Endpoint[] = [
        { label: 'trivial route (baseline)', path: '/api/config' },
        { label: 'health (a key probe and the write state)', path: '/api/health' },
        { label: 'node list, first 100', path: '/api/nodes?limit=100' },
        { label: `busy node's positions, page 1 of ${limit}`, path: first },
        { label: "busy node's positions, page 2 (cursor)", path: second },
      ]
      for (const ep of endpoints) {
        if (!quick) await waitForQuiet(5000)
        process.stderr.write(`http: ${ep.path} for ${seconds} s…\n`)
        measured.push(await measure(server.url, ep, server.pid, seconds, warmupSeconds))
      }
    } finally {
      await server.stop()
      rmSync(ds.dir, { recursive: true, force: true })
    }
    const base = measured[0]?.result.requests.average ?? Number.NaN
    const baseP99 = measured[0]?.result.latency.p99 ?? Number.NaN
    const rows = measured.map((m) => [
      m.label,
      `\`${m.path.replace(/cursor=[^&]+/, 'cursor=…')}\``,
      formatRate(m.result.requests.average),
      ms(m.result.latency.p50),
      ms(m.result.latency.p99),
      formatRatio(m.result.requests.average / base),
      formatRatio(m.result.latency.p99 / baseP99),
      `${(m.bodyBytes / 1000).toFixed(1)} kB`,
      m.serverCores === undefined ? '–' : m.serverCores.toFixed(2),
    ])
    const others = measured.map((m) => m.others).filter((v): v is number => v !== undefined)
    const busy: BusySummary | undefined =
      others.length > 0
        ? {
            medianOthers: median(others),
            maxOthers: Math.max(...others),
            noisyRounds: others.filter((v) => v > NOISY_THRESHOLD).length,
            rounds: others.length,
          }
        : undefined
    const byLabel = (i: number) => measured[i]?.result
    const nodes = byLabel(2)
    const page2 = byLabel(4)
    const headline =
      nodes && page2
        ? `node list ${formatRate(nodes.requests.average)} req/s (p99 ${ms(nodes.latency.p99)} ms, ${formatRatio(nodes.requests.average / base)} of the trivial route); positions page 2 ${formatRate(page2.requests.average)} req/s (p99 ${ms(page2.latency.p99)} ms, ${formatRatio(page2.requests.average / base)})`
        : 'incomplete'
    return {
      name: 'http',
      title: 'reference server HTTP API under autocannon',
      what: [
        `The reference server (\`examples/reference-server\`, started from its sources in its own process, \`NODE_ENV=production\`, no MQTT broker, no sources, rate limit off, logging silent) serves a SQLite file of ${formatRate(ds.receptions)} receptions (${formatRate(ds.packets)} packets, ${ds.positions.toLocaleString('en-US')} positions, ${ds.nodes} nodes, three days ending at the run) written straight into the store from the workload generator.`,
        `autocannon (programmatic, in the benchmark process, ${CONNECTIONS} connections, no pipelining) hits one URL at a time on loopback for ${seconds} s after a ${warmupSeconds} s warm-up. The positions queries are for the node with the most position reports (${ds.busyNodePositions.toLocaleString('en-US')}), ${limit} a page; page 2 follows the \`nextCursor\` of page 1. The baseline is \`/api/config\`, a constant object through the same Fastify instance and hooks (helmet, CORS, metrics), so the ratio is what the query and its serialization cost on top of the HTTP stack.`,
      ],
      machine,
      revision: describeRevision(),
      busy,
      tables: [
        {
          header: [
            'endpoint',
            'URL',
            'requests/s',
            'p50 ms',
            'p99 ms',
            'req/s vs trivial',
            'p99 vs trivial',
            'body',
            'server cores',
          ],
          rows,
          align: ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
        },
      ],
      notes: [
        'Client and server share the machine: on a 2-core VM autocannon takes most of one core, so the server gets about one; the "server cores" column is the CPU the server process used (from /proc).',
        `Noise is the CPU used by processes other than the server and the benchmark, per endpoint run (${formatPercent(NOISY_THRESHOLD)} = noisy).`,
        "Every response was a 2xx (the run fails otherwise); latencies are autocannon's, in whole milliseconds (a sub-millisecond p50 reads 0, and the p99 ratios are coarse), including loopback.",
      ],
      headline,
      settings: `${measured.length} endpoints × ${seconds} s, ${CONNECTIONS} connections, ${warmupSeconds} s warm-up each, one after the other`,
      quick,
    }
  },
}
