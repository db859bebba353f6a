/**
 * Runs one soak: the reference server (from its TypeScript sources, in its own process) fed by its
 * mesh simulator at a steady rate through its embedded MQTT broker, watched by WebSocket viewers
 * and sampled from the outside every few seconds. Writes `soak.csv`, `soak.png` and
 * `summary.json` into the output folder.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createCsvWriter } from './csv.js'
import type { ProbeReply, ProbeRequest } from './probe.js'
import {
  chartTitle,
  renderSoakChart,
  type SoakLimits,
  type SoakSummary,
  summarise,
} from './report.js'
import { createSampler, SampleError, type SoakSample } from './sampler.js'
import { connectWsViewers, type WsViewers } from './ws-viewers.js'

/** The repository root (the server is started from there, from its sources). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** Options of {@link runSoak}. */
export interface SoakOptions {
  /** Length of the run, in minutes. @default 10 */
  minutes?: number
  /** Envelopes per second the simulator publishes. @default 200 */
  ratePerS?: number
  /** Seconds between samples. @default 10 */
  intervalS?: number
  /** Output folder (created; an old soak's files in it are replaced). */
  outDir: string
  /** Simulated nodes. @default 200 */
  nodes?: number
  /** Simulated gateways (each packet reaches several of them). @default 6 */
  gateways?: number
  /** WebSocket viewers subscribed to the live feed. @default 2 */
  wsViewers?: number
  /** Verdict limits. */
  limits?: SoakLimits
  /** Progress lines (one per sample). @default no output */
  log?: (line: string) => void
  /** Stops the run early (the results so far are still analysed and written). */
  signal?: AbortSignal
}

/** What a run produced. */
export interface SoakResult {
  summary: SoakSummary
  samples: SoakSample[]
  csvPath: string
  pngPath: string
  summaryPath: string
  /** The server's stdout and stderr. */
  logPath: string
  /** Whether the run was stopped early through the signal. */
  aborted: boolean
}

/** The soak could not run (the server did not start, or stopped answering). */
export class SoakError extends Error {
  override readonly name = 'SoakError'
}

interface StartedServer {
  child: ChildProcess
  url: string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Asks the preloaded probe for a full collection and the memory left. */
  probe(): Promise<ProbeReply>
}

const PROBE = fileURLToPath(new URL('./probe.ts', import.meta.url))

async function startServer(args: string[], logPath: string): Promise<StartedServer> {
  const env: NodeJS.ProcessEnv = {}
  // The server reads MESHTAP_* variables: a developer's own settings must not change the soak.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MESHTAP_')) env[k] = v
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      '--import',
      'tsx',
      '--import',
      PROBE,
      '--conditions=@meshtap/source',
      join(REPO_ROOT, 'examples/reference-server/src/main.ts'),
      ...args,
    ],
    { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  )
  const log = createWriteStream(logPath)
  child.stderr?.pipe(log, { end: false })
  // 'close' comes after the output streams are drained (unlike 'exit'), so the log can be ended.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('close', (code, signal) => {
      log.end()
      done({ code, signal })
    }),
  )
  let out = ''
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new SoakError(`the reference server did not start within 90 s; see ${logPath}`))
    }, 90_000)
    child.stdout?.on('data', (chunk: Buffer) => {
      log.write(chunk)
      if (out.length < 10_000) out += String(chunk)
      const m = /open (http:\/\/\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolveUrl(m[1] as string)
      }
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(
        new SoakError(
          `the reference server exited before it was ready (code ${code}, signal ${signal}); see ${logPath}`,
        ),
      )
    })
  })
  let nextId = 1
  const waiting = new Map<number, (r: ProbeReply) => void>()
  child.on('message', (m: unknown) => {
    const r = m as Partial<ProbeReply> | null
    if (r?.type === 'meshtap-soak-probe' && typeof r.id === 'number') {
      waiting.get(r.id)?.(r as ProbeReply)
      waiting.delete(r.id)
    }
  })
  const probe = () =>
    new Promise<ProbeReply>((resolveProbe, reject) => {
      const id = nextId++
      const timer = setTimeout(() => {
        waiting.delete(id)
        reject(new SoakError('the server probe did not answer within 10 s'))
      }, 10_000)
      waiting.set(id, (r) => {
        clearTimeout(timer)
        resolveProbe(r)
      })
      const req: ProbeRequest = { type: 'meshtap-soak-probe', id }
      child.send(req)
    })
  return { child, url, exited, probe }
}

async function stopServer(
  server: StartedServer,
): Promise<{ exitCode: number | null; signal: string | null; ms: number }> {
  const t = Date.now()
  if (server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGTERM')
  }
  const kill = setTimeout(() => server.child.kill('SIGKILL'), 30_000)
  const { code, signal } = await server.exited
  clearTimeout(kill)
  return { exitCode: code, signal, ms: Date.now() - t }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((done) => {
    if (signal?.aborted) return done()
    const onAbort = () => {
      clearTimeout(timer)
      done()
    }
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort)
        done()
      },
      Math.max(0, ms),
    )
    signal?.addEventListener('abort', onAbort, { once: true })
  })

/** Runs a soak and writes its CSV, PNG and summary JSON; see {@link SoakOptions}. */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const minutes = options.minutes ?? 10
  const ratePerS = options.ratePerS ?? 200
  const intervalS = options.intervalS ?? 10
  const nodes = options.nodes ?? 200
  const gateways = options.gateways ?? 6
  const viewerCount = options.wsViewers ?? 2
  const log = options.log ?? (() => {})
  if (!(minutes > 0) || !(ratePerS >= 1) || !(intervalS > 0) || !(nodes >= gateways)) {
    throw new RangeError(
      'soak: minutes and interval must be positive, rate at least 1, nodes at least gateways',
    )
  }
  const outDir = resolve(options.outDir)
  mkdirSync(outDir, { recursive: true })
  const dbPath = join(outDir, 'soak.db')
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbPath}${suffix}`, { force: true })
  const csvPath = join(outDir, 'soak.csv')
  const pngPath = join(outDir, 'soak.png')
  const summaryPath = join(outDir, 'summary.json')
  const logPath = join(outDir, 'server.log')

  const server = await startServer(
    [
      '--simulate',
      `--simulate-rate=${Math.round(ratePerS)}`,
      `--simulate-nodes=${nodes}`,
      `--simulate-gateways=${gateways}`,
      '--port=0',
      '--mqtt-port=0',
      `--data-dir=${outDir}`,
      `--db=${dbPath}`,
      '--log-level=warn',
      '--rate-limit=0',
    ],
    logPath,
  )
  let viewers: WsViewers | undefined
  const samples: SoakSample[] = []
  let shutdown: SoakSummary['shutdown'] | undefined
  let sampleErrors = 0
  try {
    viewers = await connectWsViewers(server.url, viewerCount)
    const v = viewers
    const sampler = createSampler({
      url: server.url,
      dbPath,
      wsEvents: () => v.events(),
      probe: server.probe,
    })
    const csv = createCsvWriter(csvPath)
    const count = Math.floor((minutes * 60) / intervalS)
    let missedInARow = 0
    const start = performance.now()
    log(
      `soak: ${server.url}, ${ratePerS} envelopes/s, ${nodes} nodes, ${gateways} gateways, ${viewerCount} viewers, ${minutes} min, a sample every ${intervalS} s → ${outDir}`,
    )
    for (let i = 0; i <= count; i++) {
      await sleep(start + i * intervalS * 1000 - performance.now(), options.signal)
      if (options.signal?.aborted) break
      if (server.child.exitCode !== null || server.child.signalCode !== null) {
        throw new SoakError(`the reference server stopped during the soak; see ${logPath}`)
      }
      const t = (performance.now() - start) / 1000
      let s: SoakSample
      try {
        s = await sampler.sample(Math.round(t * 10) / 10)
      } catch (e) {
        // One slow scrape on a busy machine is not a failure of the server; several in a row are.
        if (!(e instanceof SampleError) || ++missedInARow >= 3) throw e
        sampleErrors++
        log(`  ${t.toFixed(0).padStart(5)} s  sample skipped: ${e.message}`)
        continue
      }
      missedInARow = 0
      samples.push(s)
      csv.append(s)
      log(
        `  ${s.t.toFixed(0).padStart(5)} s  rss ${s.rssMb.toFixed(1)} MB  heap ${s.heapUsedMb.toFixed(1)} MB (live ${s.heapLiveMb.toFixed(1)}, gc ${s.gcMs.toFixed(0)} ms)  loop p99 ${s.loopP99Ms.toFixed(1)} ms  queue ${s.queueDepth}  in ${s.receivedPerS.toFixed(0)}/s  written ${s.writtenPerS.toFixed(0)}/s  db ${(s.dbMb + s.walMb).toFixed(1)} MB`,
      )
    }
  } finally {
    await viewers?.close()
    shutdown = await stopServer(server)
  }
  if (samples.length < 2) {
    throw new SoakError(`soak: only ${samples.length} sample(s) taken; nothing to analyse`)
  }
  const summary = summarise({
    samples,
    shutdown,
    ...(options.limits ? { limits: options.limits } : {}),
    run: {
      startedAt: new Date(Date.now() - (samples.at(-1)?.t ?? 0) * 1000).toISOString(),
      durationS: samples.at(-1)?.t ?? 0,
      intervalS,
      samples: samples.length,
      sampleErrors,
      ratePerS,
      nodes,
      gateways,
      wsViewers: viewerCount,
      node: process.version,
      cpus: availableParallelism(),
      loadAverage1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    },
  })
  writeFileSync(summaryPath, `${JSON.stringify(summary, null, 2)}\n`)
  writeFileSync(pngPath, renderSoakChart(samples, chartTitle(summary)))
  return {
    summary,
    samples,
    csvPath,
    pngPath,
    summaryPath,
    logPath,
    aborted: options.signal?.aborted ?? false,
  }
}
