import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { readProcStat } from './machine.js'

/** Absolute wall-clock time in ms with sub-ms resolution, comparable across processes. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now()
}

// ---------------------------------------------------------------------------------------------
// CPU of processes, from /proc

let clockTicks: number | undefined

/** Kernel clock ticks per second (the unit of /proc/stat and /proc/<pid>/stat), usually 100. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** CPU time (user + system, every thread) of a process in clock ticks, or undefined when gone. */
export function processTicks(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return Number(rest[11]) + Number(rest[12])
  } catch {
    return undefined
  }
}

/** The pid of the running Mosquitto broker, from its pid file or by scanning /proc. */
export function findMosquittoPid(): number | undefined {
  for (const file of ['/run/mosquitto/mosquitto.pid', '/var/run/mosquitto/mosquitto.pid']) {
    try {
      const pid = Number(readFileSync(file, 'utf8').trim())
      if (pid > 0 && processTicks(pid) !== undefined) return pid
    } catch {
      // next
    }
  }
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'mosquitto') return Number(entry)
      } catch {
        // gone
      }
    }
  } catch {
    // no /proc
  }
  return undefined
}

interface CpuSample {
  /** {@link wallNow} time of the sample. */
  t: number
  busy: number
  total: number
  /** Ticks of each watched pid (the last known value once a process is gone). */
  ticks: Map<number, number>
}

/** CPU use over a window: other processes' share of the machine, and each watched process's. */
export interface CpuWindow {
  /** The window actually covered by the samples, ms. */
  wallMs: number
  /** Share of the whole machine used by processes that are not watched, 0..1. */
  others: number
  /** Each watched pid: its CPU as a share of one core (1 = a full core). */
  cores: Map<number, number>
}

/**
 * Samples /proc every `intervalMs`: the machine's busy and total jiffies and the CPU ticks of each
 * watched process (the benchmark's own processes and the broker), so that the CPU of each of them,
 * and of everyone else, can be read for any window afterwards. Off Linux it samples nothing and
 * `window()` returns undefined.
 */
export class CpuSampler {
  readonly #pids = new Set<number>()
  readonly #samples: CpuSample[] = []
  readonly #last = new Map<number, number>()
  #timer: ReturnType<typeof setInterval> | undefined

  constructor(readonly intervalMs = 100) {}

  watch(pid: number | undefined): void {
    if (pid === undefined) return
    this.#pids.add(pid)
    const t = processTicks(pid)
    if (t !== undefined) this.#last.set(pid, t)
    // So that every window starting from now has a sample with this process in it.
    if (this.#timer) this.sample()
  }

  /** Takes one sample now. */
  sample(): void {
    const stat = readProcStat()
    if (!stat) return
    const ticks = new Map<number, number>()
    for (const pid of this.#pids) {
      const t = processTicks(pid) ?? this.#last.get(pid)
      if (t === undefined) continue
      this.#last.set(pid, t)
      ticks.set(pid, t)
    }
    this.#samples.push({ t: wallNow(), busy: stat.busy, total: stat.total, ticks })
    // Keep the memory bounded on long runs (10 minutes at 10 samples/s).
    if (this.#samples.length > 6000) this.#samples.splice(0, 1000)
  }

  start(): void {
    if (this.#timer) return
    this.sample()
    this.#timer = setInterval(() => this.sample(), this.intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** CPU use between two {@link wallNow} times (widened to the samples around them). */
  window(t0: number, t1: number): CpuWindow | undefined {
    const s = this.#samples
    if (s.length < 2) return undefined
    let a = s[0]!
    for (const x of s) if (x.t <= t0) a = x
    let b = s[s.length - 1]!
    for (let i = s.length - 1; i >= 0; i--) if (s[i]!.t >= t1) b = s[i]!
    if (b.t <= a.t || b.total <= a.total) return undefined
    const msPerTick = 1000 / ticksPerSecond()
    const wallMs = b.t - a.t
    let ours = 0
    const cores = new Map<number, number>()
    for (const [pid, tb] of b.ticks) {
      const ta = a.ticks.get(pid) ?? tb
      ours += tb - ta
      cores.set(pid, ((tb - ta) * msPerTick) / wallMs)
    }
    const busy = b.busy - a.busy - ours
    return { wallMs, others: Math.min(1, Math.max(0, busy / (b.total - a.total))), cores }
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes

const HERE = fileURLToPath(new URL('.', import.meta.url))

/** The repository root (bench/lib/../..). */
export const REPO_ROOT = resolve(HERE, '../..')

/** A child process running a TypeScript module, with a typed message channel. */
export interface Child<In, Out> {
  readonly pid: number
  readonly process: ChildProcess
  send(message: In): void
  /** The next message matching `accept` (messages that do not match are dropped). */
  next(accept?: (m: Out) => boolean, timeoutMs?: number): Promise<Out>
  /** Asks it to exit (`exit` message), kills it after a grace period; resolves on exit. */
  close(exitMessage: In, graceMs?: number): Promise<void>
}

/**
 * Starts `node --import tsx --conditions=@meshtap/source <module> …args` with an IPC channel, so
 * that the child runs the workspace sources like `pnpm bench` does, in its own process (its own
 * event loop and heap). `nodeArgs` go before the module (e.g. `--cpu-prof`).
 */
export function startChild<In, Out>(
  module: string,
  args: readonly string[] = [],
  nodeArgs: readonly string[] = [],
): Child<In, Out> {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
  const proc = spawn(
    process.execPath,
    ['--import', tsx, '--conditions=@meshtap/source', ...nodeArgs, module, ...args],
    { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  )
  const inbox: Out[] = []
  let waiter: ((m: Out) => void) | undefined
  let exited = false
  let exitCode: number | null = null
  let onExit: (() => void)[] = []
  proc.on('message', (m) => {
    inbox.push(m as Out)
    waiter?.(m as Out)
  })
  proc.on('exit', (code) => {
    exited = true
    exitCode = code
    for (const f of onExit) f()
    onExit = []
  })
  return {
    pid: proc.pid ?? -1,
    process: proc,
    send(message) {
      if (!exited && proc.connected) proc.send(message as object)
    },
    next(accept = () => true, timeoutMs = 120_000) {
      return new Promise<Out>((resolvePromise, reject) => {
        const take = (): boolean => {
          while (inbox.length > 0) {
            const m = inbox.shift() as Out
            if (accept(m)) {
              cleanup()
              resolvePromise(m)
              return true
            }
          }
          return false
        }
        const timer = setTimeout(() => {
          cleanup()
          reject(new Error(`child ${module} ${args.join(' ')}: no answer within ${timeoutMs} ms`))
        }, timeoutMs)
        const exitListener = () => {
          if (take()) return
          cleanup()
          reject(new Error(`child ${module} ${args.join(' ')} exited (code ${exitCode})`))
        }
        const cleanup = () => {
          clearTimeout(timer)
          waiter = undefined
          onExit = onExit.filter((f) => f !== exitListener)
        }
        if (take()) return
        if (exited) {
          exitListener()
          return
        }
        waiter = () => {
          take()
        }
        onExit.push(exitListener)
      })
    },
    close(exitMessage, graceMs = 5000) {
      if (exited) return Promise.resolve()
      return new Promise<void>((resolvePromise) => {
        const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
        onExit.push(() => {
          clearTimeout(timer)
          resolvePromise()
        })
        if (proc.connected) proc.send(exitMessage as object)
        else proc.kill('SIGTERM')
      })
    },
  }
}
