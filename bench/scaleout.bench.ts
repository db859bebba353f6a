import { execFileSync, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { postgresReachable } from '@meshtap/pg-store/testing'
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
  type BenchOptions,
  type BenchReport,
  type BusySummary,
  formatPercent,
  formatRange,
  formatRate,
  formatRatio,
} from './lib/report.js'
import { type DeployPids, type DeployTestResult, deployTest } from './lib/scaleout-deploy.js'
import { median, spread } from './lib/timing.js'

/**
 * `pnpm bench scaleout`: how fast one and two `meshtap ingest --pg --share --qos 1 --persistent`
 * workers drain a backlog queued for them at the broker, on this machine, through the deployment
 * of `scripts/deploy-test.ts` in its backlog mode (so the publisher's rate does not count).
 */

const ADMIN_URL = process.env.MESHTAP_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

const log = (s: string) => process.stderr.write(`scaleout: ${s}\n`)

let clockTicks: number | undefined
/** Milliseconds per /proc clock tick. */
function msPerTick(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return 1000 / clockTicks
}

/** Every `postgres` process (server, backends, WAL writer, checkpointer). */
function postgresPids(): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'postgres') out.push(Number(d))
    } catch {
      // Gone meanwhile.
    }
  }
  return out
}

/** CPU ticks of the processes of one drain, and of the whole machine, at one moment. */
interface Snapshot {
  t: number
  busy: number
  total: number
  workers: Map<number, number>
  postgres: Map<number, number>
  mosquitto: number
  self: number
}

function ticksOf(pids: readonly number[]): Map<number, number> {
  const m = new Map<number, number>()
  for (const pid of pids) {
    const t = processTicks(pid)
    if (t !== undefined) m.set(pid, t)
  }
  return m
}

function snapshot(pids: DeployPids): Snapshot | undefined {
  const stat = readProcStat()
  if (!stat) return undefined
  return {
    t: performance.now(),
    busy: stat.busy,
    total: stat.total,
    workers: ticksOf(pids.workers),
    postgres: ticksOf(postgresPids()),
    mosquitto: pids.mosquitto === undefined ? 0 : (processTicks(pids.mosquitto) ?? 0),
    self: processTicks(process.pid) ?? 0,
  }
}

/** CPU over a drain, each as a share of one core; `others` as a share of the machine. */
interface DrainCpu {
  workers: number
  postgres: number
  mosquitto: number
  others: number
}

function cpuBetween(a: Snapshot, b: Snapshot): DrainCpu | undefined {
  const wallMs = b.t - a.t
  const total = b.total - a.total
  if (wallMs <= 0 || total <= 0) return undefined
  // Processes born during the drain (the workers, the backends of their pools) count from zero.
  const delta = (x: Map<number, number>, y: Map<number, number>) => {
    let n = 0
    for (const [pid, t] of y) n += t - (x.get(pid) ?? 0)
    return n
  }
  const workers = delta(a.workers, b.workers)
  const postgres = delta(a.postgres, b.postgres)
  const mosquitto = b.mosquitto - a.mosquitto
  const self = b.self - a.self
  const core = (ticks: number) => (ticks * msPerTick()) / wallMs
  const ours = workers + postgres + mosquitto + self
  return {
    workers: core(workers),
    postgres: core(postgres),
    mosquitto: core(mosquitto),
    others: Math.min(1, Math.max(0, (b.busy - a.busy - ours) / total)),
  }
}

interface Round {
  workers: number
  receptions: number
  packets: number
  drainMs: number
  firstStoredMs: number
  receivedByWorker: number[]
  publishPerSec: number
  cpu: DrainCpu | undefined
}

async function round(workers: number, envelopes: number, quick: boolean): Promise<Round> {
  let pids: DeployPids | undefined
  let start: Snapshot | undefined
  let end: Snapshot | undefined
  const result: DeployTestResult = await deployTest({
    envelopes,
    workers,
    kill: false,
    adminUrl: ADMIN_URL,
    keep: false,
    timeoutS: 60,
    web: false,
    backlog: true,
    log: (line) => log(`  ${line}`),
    beforeDrain: quick ? undefined : async () => void (await waitForQuiet(5000)),
    onDrainStart: (p) => {
      pids = p
      start = snapshot(p)
    },
    onDrainEnd: () => {
      if (pids) end = snapshot(pids)
    },
  })
  if (!result.ok || !result.backlog) {
    throw new Error(
      `${workers} worker(s): the round failed its checks: ${result.failures.join('; ') || 'no backlog result'}`,
    )
  }
  return {
    workers,
    receptions: result.stored.receptions,
    packets: result.stored.packets,
    drainMs: result.backlog.drainMs,
    firstStoredMs: result.backlog.firstStoredMs,
    receivedByWorker: result.backlog.receivedByWorker,
    publishPerSec: (result.published.envelopes * 1000) / result.published.ms,
    cpu: start && end ? cpuBetween(start, end) : undefined,
  }
}

const rate = (r: Round) => (r.receptions * 1000) / r.drainMs
/** From the first reception stored: the workers' start-up left out. */
const rateRunning = (r: Round) => (r.receptions * 1000) / Math.max(1, r.drainMs - r.firstStoredMs)
const pct = (v: number) => `${Math.round(v * 100)} %`

function busySummary(rounds: readonly Round[]): BusySummary | undefined {
  const v = rounds.flatMap((r) => (r.cpu ? [r.cpu.others] : []))
  if (v.length === 0) return undefined
  return {
    medianOthers: median(v),
    maxOthers: Math.max(...v),
    noisyRounds: v.filter((x) => x > NOISY_THRESHOLD).length,
    rounds: v.length,
  }
}

async function run(options: BenchOptions): Promise<BenchReport> {
  const quick = options.quick
  const machine = describeMachine()
  const base = {
    name: 'scaleout',
    title: 'ingest workers draining a backlog into PostgreSQL (one vs two)',
    machine,
    revision: describeRevision(),
    quick,
  }
  const envelopes = quick ? 20_000 : 100_000
  const rounds = quick ? 1 : 3
  const mosquitto = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' })
  const broker = mosquitto.error
    ? undefined
    : (/mosquitto version (\S+)/.exec(mosquitto.stdout)?.[1] ?? 'unknown')
  const pgOk = await postgresReachable(ADMIN_URL)
  if (!broker || !pgOk) {
    const missing = [
      broker ? '' : 'the `mosquitto` binary',
      pgOk ? '' : `PostgreSQL at \`${ADMIN_URL.replace(/:[^:@/]*@/, ':***@')}\``,
    ].filter(Boolean)
    log(`skipping: ${missing.join(' and ')} not available`)
    return {
      ...base,
      what: [
        `**Skipped**: ${missing.join(' and ')} not available on this machine. Install or start them (or set \`MESHTAP_PG_URL\`) and run \`pnpm bench scaleout\` again.`,
      ],
      busy: undefined,
      tables: [],
      notes: [],
      headline: `skipped: ${missing.join(' and ')} not available`,
      settings: 'skipped',
    }
  }
  let quietNote: string | undefined
  if (!quick) {
    const q = await waitForQuiet(20_000)
    if (q.others !== undefined) {
      quietNote = `Waited ${(q.waitedMs / 1000).toFixed(0)} s for a quiet machine before starting (others then at ${formatPercent(q.others)}), and up to 5 s before each drain.`
    }
  }
  const results: Round[] = []
  for (let r = 0; r < rounds; r++) {
    for (const workers of r % 2 === 0 ? [1, 2] : [2, 1]) {
      log(`round ${r + 1}/${rounds}, ${workers} worker(s): ${envelopes} envelopes`)
      const res = await round(workers, envelopes, quick)
      results.push(res)
      const c = res.cpu
      log(
        `round ${r + 1}/${rounds}, ${workers} worker(s): ${formatRate(rate(res))} receptions/s (${res.receptions} in ${res.drainMs} ms, first stored after ${res.firstStoredMs} ms; by worker ${res.receivedByWorker.join(' / ')}; CPU workers ${c ? pct(c.workers) : '–'}, postgres ${c ? pct(c.postgres) : '–'}, mosquitto ${c ? pct(c.mosquitto) : '–'}, others ${c ? formatPercent(c.others) : '–'})`,
      )
    }
  }

  const one = results.filter((x) => x.workers === 1)
  const two = results.filter((x) => x.workers === 2)
  const a = spread(one.map(rate))
  const b = spread(two.map(rate))
  const paired = spread(two.map((x, i) => rate(x) / rate(one[i] as Round)))
  const cpu = (list: Round[]) => {
    const c = list.flatMap((x) => (x.cpu ? [x.cpu] : []))
    if (c.length === 0) return '–'
    return `${pct(median(c.map((x) => x.workers)))} / ${pct(median(c.map((x) => x.postgres)))} / ${pct(median(c.map((x) => x.mosquitto)))}`
  }
  const row = (list: Round[], s: typeof a, ratio: string) => [
    String(list[0]?.workers ?? ''),
    `**${formatRate(s.median)}**`,
    formatRange(s),
    formatRate(median(list.map(rateRunning))),
    `${(median(list.map((x) => x.drainMs)) / 1000).toFixed(1)} s (${(median(list.map((x) => x.firstStoredMs)) / 1000).toFixed(1)} s)`,
    cpu(list),
    ratio,
  ]
  const sample = results[0] as Round
  const what = [
    `Two ingest workers against one, on one machine: \`scripts/deploy-test.ts\` in its backlog mode starts Mosquitto ${broker} (its own, \`max_queued_messages 0\`, \`max_inflight_messages 0\`: nothing dropped), a fresh PostgreSQL database at \`${ADMIN_URL.replace(/:[^:@/]*@/, ':***@').replace(/\/[^/]*$/, '/…')}\` (the server's defaults, \`fsync\` on) and N \`meshtap ingest --pg … --share g --qos 1 --persistent\` workers (MQTT 5, fixed client ids, one shared group, acknowledgements after the commit, no web instance). The workers connect once and stop; ${formatRate(envelopes)} envelopes of a simulated mesh (300 nodes, 12 gateways: ${sample.packets.toLocaleString('en-US')} packets, ${sample.receptions.toLocaleString('en-US')} receptions) are then published at QoS 1 into the broker, which queues them for the stopped sessions (split round-robin between the two sessions of the group); then the workers start again and the clock runs from their start until every reception is stored (a \`count(*)\` polled every 50 ms). A worker pauses reading when its ingest queue is 80 % full, so the backlog waits at the broker and nothing is shed.`,
    `**Rate** = receptions stored ÷ drain time, from spawning the worker processes (so it includes their start-up: Node, tsx, the connection to PostgreSQL and to the broker, until the first reception is seen stored, given in parentheses) until the last reception is stored; "after the first write" leaves that start-up out (receptions ÷ time from the first to the last stored, both polled). **Baseline**: one worker, measured in the same run, rounds alternating (1 2, 2 1, …). Every round is checked like the deployment test: every distinct packet stored exactly once, every (packet, gateway) copy stored as one reception, nothing extra; a round that fails the check fails the benchmark.`,
  ]
  const notes = [
    `Every round passed the exactly-once check. With two workers the broker split the backlog ${two.map((x) => x.receivedByWorker.join(' / ')).join(', ')} (envelopes received by worker 1 / worker 2).`,
    'CPU is every worker process, every `postgres` process (backends, WAL writer, checkpointer) and the broker, each as a share of one core over the drain, from /proc; the machine has 2 cores in all, shared by the workers, PostgreSQL and the broker.',
    `Publishing (QoS 1, 500 acknowledgements outstanding, before the clock) ran at ${formatRate(median(results.map((x) => x.publishPerSec)))} envelopes/s (median): the rate \`pnpm deploy-test\` is limited by, which is why this benchmark drains a backlog instead.`,
  ]
  if (quietNote) notes.push(quietNote)
  return {
    ...base,
    what,
    busy: busySummary(results),
    tables: [
      {
        caption: `Receptions stored per second while draining a backlog of ${sample.receptions.toLocaleString('en-US')} receptions, ${rounds} round${rounds > 1 ? 's' : ''} per contender:`,
        header: [
          'workers',
          'receptions/s (median)',
          'min..max',
          'after the first write',
          'drain (to first write)',
          'CPU workers / PostgreSQL / Mosquitto (of one core)',
          'ratio',
        ],
        rows: [
          row(one, a, '1.00×'),
          row(
            two,
            b,
            `**${formatRatio(b.median / a.median)}**${rounds > 1 ? ` (paired ${formatRatio(paired.median)})` : ''}`,
          ),
        ],
      },
    ],
    notes,
    headline: `two workers vs one draining a backlog: ${formatRatio(b.median / a.median)} (${formatRate(b.median)} vs ${formatRate(a.median)} receptions/s)`,
    settings: `${rounds} round${rounds > 1 ? 's' : ''} per contender, alternating, ${formatRate(envelopes)} envelopes per round`,
  }
}

/** One against two ingest workers draining a broker backlog into PostgreSQL. */
export const scaleoutBenchmark: Benchmark = {
  name: 'scaleout',
  description: 'one vs two ingest workers draining a QoS 1 backlog into PostgreSQL',
  run,
}
