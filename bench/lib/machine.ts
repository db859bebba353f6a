import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'

/** What the benchmark ran on. */
export interface MachineInfo {
  cpuModel: string
  cores: number
  totalMemGiB: number
  node: string
  os: string
  arch: string
  /** 1-minute load average when the run started. */
  loadAvg1: number
  /** ISO 8601, UTC. */
  date: string
}

/** Describes this machine. */
export function describeMachine(): MachineInfo {
  const cpus = os.cpus()
  return {
    cpuModel: (cpus[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim(),
    cores: cpus.length,
    totalMemGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    loadAvg1: Math.round(os.loadavg()[0]! * 100) / 100,
    date: new Date().toISOString(),
  }
}

/** One line: `AMD EPYC 7B13, 2 cores, 7.8 GiB, Node v20.19.5, Linux 6.1.0 (x64)`. */
export function formatMachine(m: MachineInfo): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.totalMemGiB} GiB RAM, Node ${m.node}, ${m.os} (${m.arch})`
}

/** CPU use of the whole machine over an interval, split into this process and everyone else. */
export interface BusySample {
  wallMs: number
  /** CPU used by other processes, as a fraction of the whole machine (all cores), 0..1. */
  others: number
  /** CPU used by this process (all its threads: JS, GC, libuv), as a fraction of the whole machine. */
  self: number
}

/** A running measurement; `stop()` ends it. */
export interface BusyProbe {
  stop(): BusySample | undefined
}

/** Jiffies of the whole machine: busy and total (busy + idle + iowait). */
export interface StatTotals {
  busy: number
  total: number
}

/** Jiffies from the aggregate `cpu` line of /proc/stat, or undefined off Linux. */
export function readProcStat(): StatTotals | undefined {
  let text: string
  try {
    text = readFileSync('/proc/stat', 'utf8')
  } catch {
    return undefined
  }
  const line = text.slice(0, text.indexOf('\n'))
  if (!line.startsWith('cpu ')) return undefined
  // user nice system idle iowait irq softirq steal (guest and guest_nice are already in user/nice)
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v
  const busy = user + nice + system + irq + softirq + steal
  return { busy, total: busy + idle + iowait }
}

/**
 * Starts measuring how busy the machine is. The share used by other processes is the machine's
 * busy share (from /proc/stat) minus this process's own (`process.cpuUsage`), so a run that shared
 * the CPU with a build or a test suite can be flagged. Returns a probe whose `stop()` gives
 * `undefined` where /proc/stat does not exist.
 */
export function startBusyProbe(): BusyProbe {
  const cores = Math.max(1, os.cpus().length)
  const stat0 = readProcStat()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  return {
    stop() {
      const stat1 = readProcStat()
      const cpu = process.cpuUsage(cpu0)
      const wallMs = performance.now() - t0
      if (!stat0 || !stat1 || wallMs <= 0) return undefined
      const total = stat1.total - stat0.total
      if (total <= 0) return undefined
      const machineBusy = (stat1.busy - stat0.busy) / total
      const self = (cpu.user + cpu.system) / 1000 / (wallMs * cores)
      return { wallMs, self, others: Math.min(1, Math.max(0, machineBusy - self)) }
    },
  }
}

/** Above this share of the machine used by other processes, a run is reported as noisy. */
export const NOISY_THRESHOLD = 0.15

/**
 * Waits until other processes use less than `threshold` of the machine over one `sampleMs`
 * sample, for at most `maxWaitMs`. Returns the last sample's share (undefined without /proc/stat)
 * and how long it waited.
 */
export async function waitForQuiet(
  maxWaitMs: number,
  threshold = NOISY_THRESHOLD,
  sampleMs = 1000,
): Promise<{ others: number | undefined; waitedMs: number }> {
  const t0 = performance.now()
  for (;;) {
    const probe = startBusyProbe()
    await new Promise((r) => setTimeout(r, sampleMs))
    const s = probe.stop()
    const waitedMs = performance.now() - t0
    if (!s || s.others < threshold || waitedMs >= maxWaitMs) return { others: s?.others, waitedMs }
  }
}

/**
 * The code that was measured: the commit, and which files under `packages/` differ from it
 * (benchmarks often run on a working tree). `undefined` outside a git checkout.
 */
export function describeRevision(cwd = process.cwd()): string | undefined {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    const head = git('rev-parse', '--short', 'HEAD').trim()
    const dirty = git('status', '--porcelain', '--', 'packages')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.slice(3))
    if (dirty.length === 0) return `commit ${head}`
    const shown = dirty.slice(0, 4).map((f) => `\`${f}\``)
    const more = dirty.length > 4 ? ` and ${dirty.length - 4} more` : ''
    return `commit ${head} with uncommitted changes under packages/ (${shown.join(', ')}${more})`
  } catch {
    return undefined
  }
}
