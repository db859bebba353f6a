// The scale-out deployment (issue 8, item 4): Mosquitto, a fresh PostgreSQL database, N
// `meshtap ingest --pg --share --qos 1 --persistent` workers and a web-only reference server, with
// exactly-once checks. `scripts/deploy-test.ts` (`pnpm deploy-test`) is its command line and
// `bench/scaleout.bench.ts` (`pnpm bench scaleout`) times its backlog mode. It lives under bench/lib
// because scripts/ already builds on bench/ (a reference back would be a cycle).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMeshSimulator } from '@meshtap/core'
import type { PgPool } from '@meshtap/pg-store'
import { connectAsync, type MqttClient } from 'mqtt'
import WebSocket from 'ws'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CLI = join(ROOT, 'packages/cli/src/bin.ts')
const SERVER = join(ROOT, 'examples/reference-server/src/main.ts')
// `pg` is the store's peer dependency; the deployment borrows the store package's copy.
const pg = createRequire(join(ROOT, 'packages/pg-store/package.json'))('pg') as {
  Pool: new (o: {
    connectionString: string
    max: number
  }) => PgPool & {
    end(): Promise<void>
    on(e: 'error', l: () => void): void
  }
}

/** What the script measured and checked; `--json` prints it. */
export interface DeployTestResult {
  ok: boolean
  failures: string[]
  envelopes: number
  workers: number
  published: { envelopes: number; packets: number; copies: number; ms: number }
  /** Envelopes per second from the first publish until every copy was stored. */
  endToEndPerSec: number
  endToEndMs: number
  kill?: { atEnvelope: number; downMs: number; restartedReceived: number }
  /** With `backlog`: the workers draining a backlog of `published.copies` receptions. */
  backlog?: BacklogResult
  stored: {
    packets: number
    duplicatePackets: number
    missingPackets: number
    extraPackets: number
    receptions: number
    missingCopies: number
    extraCopies: number
  }
  /** Final counters each worker process printed (a killed process prints none). */
  summaries: { worker: number; run: number; summary: Record<string, number> }[]
  /** Absent without the web instance (`web: false`). */
  websocket?: {
    events: number
    byWorker: number[]
    duplicates: number
    lagged: number
    /** Distinct (packet, gateway) copies the client saw, of all stored. */
    coverage: number
  }
  broker: string
}

/** The drain of a backlog (`--backlog`). */
export interface BacklogResult {
  /** From spawning the workers until every reception was stored (polled every 50 ms). */
  drainMs: number
  /** Receptions stored per second of `drainMs`. */
  receptionsPerSec: number
  /** From spawning the workers until each of them logged its connection to the broker. */
  connectMs: number
  /** From spawning the workers until the first reception was seen stored (start-up included). */
  firstStoredMs: number
  /** Start and end of the drain, as {@link wallNow} times (comparable with /proc samplers). */
  startWall: number
  endWall: number
  /** Envelopes each worker received while draining (from its final counters). */
  receivedByWorker: number[]
}

/** The processes of a deployment, for CPU accounting. */
export interface DeployPids {
  workers: number[]
  mosquitto: number | undefined
}

/** Options of {@link deployTest}. */
export interface DeployTestOptions {
  envelopes: number
  /** Ingest workers, 1 or 2 (one Mosquitto listener each). */
  workers: number
  /** SIGKILL worker 1 half-way and restart it (ignored with `backlog`). */
  kill: boolean
  /** An admin connection to PostgreSQL; a fresh database is created next to it. */
  adminUrl: string
  keep: boolean
  /** Give up when nothing is stored for this long. */
  timeoutS: number
  /** Start the web instance and its WebSocket client (default true). */
  web?: boolean
  /** Publish into the stopped workers' sessions, then time the drain (default false). */
  backlog?: boolean
  /** With `backlog`: awaited after publishing, before the workers start (e.g. wait for quiet). */
  beforeDrain?: () => Promise<void>
  /** With `backlog`: called right after the draining workers are spawned. */
  onDrainStart?: (pids: DeployPids) => void
  /** With `backlog`: called as soon as every reception is stored, the workers still running. */
  onDrainEnd?: () => void
  /** Progress lines (default: stderr, prefixed `deploy-test:`). */
  log?: (line: string) => void
}

/** Absolute wall-clock time in ms (`performance.timeOrigin + performance.now()`). */
export function wallNow(): number {
  return performance.timeOrigin + performance.now()
}

let log = (s: string): void => {
  process.stderr.write(`deploy-test: ${s}\n`)
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const address = server.address()
  await new Promise<void>((r) => server.close(() => r()))
  if (typeof address !== 'object' || !address) throw new Error('no free port')
  return address.port
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket()
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
      s.connect(port, '127.0.0.1')
    })
    if (ok) return
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port}`)
    await sleep(50)
  }
}

/** A child process with its output collected, and a promise of its exit. */
interface Proc {
  child: ChildProcess
  out: () => string
  err: () => string
  exited: Promise<number | null>
}

const children = new Set<ChildProcess>()

function run(cmd: string, args: string[], name: string): Proc {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let out = ''
  let err = ''
  child.stdout?.on('data', (d) => {
    out += d
  })
  child.stderr?.on('data', (d) => {
    err += d
  })
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child)
      if (code !== 0 && signal !== 'SIGKILL' && signal !== 'SIGTERM') {
        log(
          `${name} exited with ${code ?? signal}: ${err.trim().split('\n').slice(-3).join(' | ')}`,
        )
      }
      resolve(code)
    }),
  )
  return { child, out: () => out, err: () => err, exited }
}

/** Node with the workspace sources (one process: a SIGKILL reaches the worker itself). */
function tsNode(file: string, args: string[], name: string): Proc {
  return run(
    process.execPath,
    ['--conditions=@meshtap/source', '--import', 'tsx', file, ...args],
    name,
  )
}

async function waitFor<T>(
  what: string,
  check: () => T | undefined | false,
  timeoutMs: number,
  proc?: Proc,
): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = check()
    if (v) return v
    if (proc && proc.child.exitCode !== null) {
      throw new Error(
        `${what}: the process exited (${proc.err().trim().split('\n').slice(-3).join(' | ')})`,
      )
    }
    if (Date.now() > until) throw new Error(`${what}: timed out after ${timeoutMs} ms`)
    await sleep(50)
  }
}

/** SIGKILLs every process a deployment started that is still running (for signal handlers). */
export function killAll(): void {
  for (const c of children) c.kill('SIGKILL')
}

/**
 * Runs the deployment test (or, with `backlog`, times the workers draining a backlog) and checks
 * that every packet was stored exactly once with all its receptions. Cleans up after itself.
 */
export async function deployTest(options: DeployTestOptions): Promise<DeployTestResult> {
  if (options.log) log = options.log
  const withWeb = options.web !== false
  const backlog = options.backlog === true
  const killHalfWay = options.kill && !backlog
  const failures: string[] = []
  const tmp = mkdtempSync(join(tmpdir(), 'meshtap-deploy-test-'))
  const tag = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`
  const dbName = `meshtap_deploy_${tag}`
  const admin = new pg.Pool({ connectionString: options.adminUrl, max: 1 })
  admin.on('error', () => undefined)
  const dbUrlObj = new URL(options.adminUrl)
  dbUrlObj.pathname = `/${dbName}`
  const dbUrl = dbUrlObj.href
  let db: (PgPool & { end(): Promise<void>; on(e: 'error', l: () => void): void }) | undefined
  let mosquitto: Proc | undefined
  let web: Proc | undefined
  let ws: WebSocket | undefined
  let publisher: MqttClient | undefined
  const workers: (Proc | undefined)[] = []
  try {
    // 1. PostgreSQL: a fresh database.
    await admin.query({ text: `CREATE DATABASE ${dbName}` })
    db = new pg.Pool({ connectionString: dbUrl, max: 2 })
    const database = db
    db.on('error', () => undefined)
    log(`database ${dbName}`)

    // 2. Mosquitto, two listeners (one per worker: a reception's source names its worker).
    const ports = [await freePort(), await freePort()] as const
    const conf = join(tmp, 'mosquitto.conf')
    writeFileSync(
      conf,
      [
        `listener ${ports[0]} 127.0.0.1`,
        `listener ${ports[1]} 127.0.0.1`,
        'allow_anonymous true',
        'persistence false',
        // The default limits (1000 queued, 20 in flight per client) drop QoS 1 messages for a
        // subscriber that is slower than the feed, or offline: at-least-once needs no limit.
        'max_queued_messages 0',
        'max_inflight_messages 0',
        'set_tcp_nodelay true',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        '',
      ].join('\n'),
    )
    const version = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' })
    if (version.error)
      throw new Error(
        `mosquitto is not installed (apt-get install mosquitto): ${version.error.message}`,
      )
    const broker = /mosquitto version (\S+)/.exec(version.stdout)?.[1] ?? 'unknown'
    mosquitto = run('mosquitto', ['-c', conf], 'mosquitto')
    await waitForPort(ports[0], 10_000)
    await waitForPort(ports[1], 10_000)
    log(`mosquitto ${broker} on 127.0.0.1:${ports[0]} and :${ports[1]}`)

    // 3. The web-only instance (it migrates the schema) and its WebSocket client.
    const endpoint = (i: number) => `mqtt://127.0.0.1:${ports[i % 2]}`
    const seen = new Set<string>()
    const wsStats = {
      events: 0,
      byWorker: new Array<number>(options.workers).fill(0),
      duplicates: 0,
      lagged: 0,
    }
    if (withWeb) {
      web = tsNode(
        SERVER,
        [
          '--host=127.0.0.1',
          '--port=0',
          `--pg=${dbUrl}`,
          '--no-ingest',
          '--log-level=warn',
          `--data-dir=${tmp}`,
        ],
        'web instance',
      )
      const webUrl = await waitFor(
        'web instance',
        () => /open (http:\/\/\S+)/.exec(web?.out() ?? '')?.[1],
        60_000,
        web,
      )
      const count = (key: string, gw: string | undefined, source: string | undefined) => {
        wsStats.events++
        const k = `${key}|${gw}`
        if (seen.has(k)) wsStats.duplicates++
        seen.add(k)
        for (let i = 0; i < options.workers; i++) {
          if (source === endpoint(i)) wsStats.byWorker[i] = (wsStats.byWorker[i] ?? 0) + 1
        }
      }
      ws = new WebSocket(`${webUrl.replace(/^http/, 'ws')}/api/live`, ['meshtap.v1'])
      const socket = ws
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.on('message', (data) => {
          const m = JSON.parse(String(data)) as {
            type: string
            events?: {
              kind: string
              packet?: { key: string; packet: { gatewayId?: string } }
              source?: string
              reception?: { packetKey: string; gatewayId?: string; source?: string }
              undecoded?: { key: string; failure: { packet: { gatewayId?: string } } }
            }[]
          }
          if (m.type === 'subscribed') resolve()
          else if (m.type === 'lagged' || m.type === 'snapshotNeeded') wsStats.lagged++
          else if (m.type === 'batch') {
            for (const e of m.events ?? []) {
              if (e.kind === 'packet' && e.packet)
                count(e.packet.key, e.packet.packet.gatewayId, e.source)
              else if (e.kind === 'reception' && e.reception) {
                count(e.reception.packetKey, e.reception.gatewayId, e.reception.source)
              } else if (e.kind === 'undecoded' && e.undecoded) {
                // An undecoded packet's first copy (PKI, unknown key) does not say its source.
                count(e.undecoded.key, e.undecoded.failure.packet.gatewayId, undefined)
              }
            }
          }
        })
        socket.once('open', () =>
          socket.send(
            JSON.stringify({
              type: 'subscribe',
              id: 's',
              filter: { kinds: ['packet', 'reception', 'undecoded'] },
              snapshot: false,
            }),
          ),
        )
      })
      log(`web instance ${webUrl}, WebSocket client subscribed`)
    }

    // 4. The workers: one share of the feed each, persistent sessions, acks after the commit.
    const root = `msh/deploy${tag}`
    const group = `g${tag}`
    const summaries: DeployTestResult['summaries'] = []
    const runs = new Array<number>(options.workers).fill(0)
    const spawnWorker = (i: number) => {
      const w = tsNode(
        CLI,
        [
          'ingest',
          `--url=${endpoint(i)}`,
          `--topic=${root}/#`,
          `--pg=${dbUrl}`,
          `--share=${group}`,
          '--qos=1',
          `--client-id=meshtap-deploy-${tag}-w${i + 1}`,
          '--persistent',
          '--no-rate-limit',
        ],
        `worker ${i + 1}`,
      )
      workers[i] = w
      runs[i] = (runs[i] ?? 0) + 1
      return w
    }
    const connected = (i: number, w: Proc) =>
      waitFor(`worker ${i + 1}`, () => /connected to mqtt/.test(w.err()), 60_000, w)
    const startWorker = async (i: number) => {
      const w = spawnWorker(i)
      await connected(i, w)
      return w
    }
    const collect = async (i: number, w: Proc) => {
      if ((await w.exited) !== 0) {
        failures.push(
          `worker ${i + 1} exited with an error: ${w.err().trim().split('\n').slice(-2).join(' | ')}`,
        )
        return
      }
      const line = w.out().trim().split('\n').at(-1) ?? ''
      try {
        summaries.push({ worker: i + 1, run: runs[i] ?? 1, summary: JSON.parse(line) })
      } catch {
        failures.push(`worker ${i + 1} printed no summary`)
      }
    }
    // One after the other: without the web instance, the first one migrates the schema.
    for (let i = 0; i < options.workers; i++) await startWorker(i)
    log(`${options.workers} worker(s) connected, group ${group}`)
    if (backlog) {
      // Their sessions (and shared subscriptions) stay on the broker, which queues for them.
      for (const [i, w] of workers.entries()) {
        if (!w) continue
        w.child.kill('SIGTERM')
        await collect(i, w)
        workers[i] = undefined
      }
      log('worker(s) stopped; their sessions queue the envelopes')
    }

    // 5. Publish at QoS 1, a window of acknowledgements in flight; kill worker 1 half-way.
    const sim = createMeshSimulator({
      seed: 8,
      root,
      nodes: 300,
      gateways: 12,
      mapReportIntervalSecs: 0,
    })
    const expected = new Set<string>()
    const packets = new Set<string>()
    publisher = await connectAsync(endpoint(0), {
      clientId: `meshtap-deploy-${tag}-pub`,
      protocolVersion: 4,
    })
    const pub = publisher
    const started = performance.now()
    let published = 0
    let kill: DeployTestResult['kill']
    let killing: Promise<void> | undefined
    const window = new Set<Promise<unknown>>()
    const half = Math.floor(options.envelopes / 2)
    while (published < options.envelopes) {
      for (const m of sim.next()) {
        expected.add(`${m.packetKey}|${m.gatewayId}`)
        packets.add(m.packetKey)
        const p = pub.publishAsync(m.topic, Buffer.from(m.payload), { qos: 1 })
        window.add(p)
        void p.finally(() => window.delete(p))
        published++
      }
      if (window.size >= 500) await Promise.race(window)
      if (killHalfWay && !killing && published >= half) {
        const victim = workers[0] as Proc
        const t0 = performance.now()
        victim.child.kill('SIGKILL')
        const atEnvelope = published
        log(`SIGKILL worker 1 at envelope ${atEnvelope}`)
        killing = (async () => {
          await victim.exited
          await sleep(500)
          const w = await startWorker(0)
          kill = { atEnvelope, downMs: Math.round(performance.now() - t0), restartedReceived: 0 }
          log(`worker 1 restarted after ${kill.downMs} ms`)
          void w
        })()
      }
    }
    await Promise.all(window)
    const publishMs = performance.now() - started
    log(
      `published ${published} envelopes (${packets.size} packets, ${expected.size} copies) in ${Math.round(publishMs)} ms`,
    )
    await killing

    // 5b. Backlog: the workers start again and drain what the broker queued for them.
    let drain:
      | { t0: number; startWall: number; connectMs: number; firstStoredMs: number }
      | undefined
    let connecting: Promise<void> | undefined
    if (backlog) {
      await options.beforeDrain?.()
      const t0 = performance.now()
      const startWall = wallNow()
      const procs = Array.from({ length: options.workers }, (_, i) => spawnWorker(i))
      options.onDrainStart?.({
        workers: procs.map((p) => p.child.pid ?? -1),
        mosquitto: mosquitto.child.pid,
      })
      drain = { t0, startWall, connectMs: 0, firstStoredMs: Number.NaN }
      const d = drain
      connecting = Promise.all(procs.map((p, i) => connected(i, p))).then(() => {
        d.connectMs = Math.round(performance.now() - t0)
      })
      // A worker that cannot connect fails the run below rather than hanging it.
      connecting.catch((e: Error) => failures.push(e.message))
      log(`${options.workers} worker(s) started on the backlog`)
    }

    // 6. Wait until every copy is stored (or nothing more arrives for timeoutS).
    const receptions = async () => {
      const { rows } = await database.query({
        text: 'SELECT count(*)::int AS n FROM meshtap.receptions',
      })
      return Number((rows[0] as { n: number }).n)
    }
    let last = -1
    let lastChange = Date.now()
    let stored = 0
    let drainEnd: { ms: number; wall: number } | undefined
    for (;;) {
      stored = await receptions()
      if (drain && stored > 0 && Number.isNaN(drain.firstStoredMs)) {
        drain.firstStoredMs = Math.round(performance.now() - drain.t0)
      }
      if (stored >= expected.size) {
        if (drain) {
          drainEnd = { ms: performance.now() - drain.t0, wall: wallNow() }
          options.onDrainEnd?.()
        }
        break
      }
      if (stored !== last) {
        last = stored
        lastChange = Date.now()
      } else if (Date.now() - lastChange > options.timeoutS * 1000) {
        failures.push(
          `stalled at ${stored} of ${expected.size} receptions for ${options.timeoutS} s`,
        )
        break
      }
      await sleep(drain ? 50 : 100)
    }
    const endToEndMs = performance.now() - started
    log(`${stored} receptions stored after ${Math.round(endToEndMs)} ms`)
    await connecting?.catch(() => undefined)

    // 7. The WebSocket client gets the last events, then the workers stop (SIGTERM: flush, summary).
    const wsUntil = Date.now() + 20_000
    let wsLast = -1
    let wsQuiet = Date.now()
    while (withWeb && seen.size < stored && Date.now() < wsUntil) {
      if (seen.size !== wsLast) {
        wsLast = seen.size
        wsQuiet = Date.now()
      } else if (Date.now() - wsQuiet > 5000) break
      await sleep(100)
    }
    for (const [i, w] of workers.entries()) {
      if (!w) continue
      w.child.kill('SIGTERM')
      await collect(i, w)
    }
    if (kill) {
      const again = summaries.find((s) => s.worker === 1 && s.run === 2)
      kill.restartedReceived = again?.summary.received ?? 0
    }

    // 8. Checks, from the database.
    const rows = async (text: string) => (await database.query({ text })).rows
    const storedKeys = (await rows('SELECT key FROM meshtap.packets')) as { key: string }[]
    const keyCount = new Map<string, number>()
    for (const r of storedKeys) keyCount.set(r.key, (keyCount.get(r.key) ?? 0) + 1)
    const duplicatePackets = [...keyCount.values()].filter((n) => n > 1).length
    const missingPackets = [...packets].filter((k) => !keyCount.has(k)).length
    const extraPackets = [...keyCount.keys()].filter((k) => !packets.has(k)).length
    const copies = (await rows(`SELECT p.key, g.gateway_id FROM meshtap.receptions r
      JOIN meshtap.packets p ON p.id = r.packet_ref LEFT JOIN meshtap.gateways g ON g.id = r.gw`)) as {
      key: string
      gateway_id: string | null
    }[]
    const storedCopies = new Set(copies.map((c) => `${c.key}|${c.gateway_id ?? undefined}`))
    const missingCopies = [...expected].filter((k) => !storedCopies.has(k)).length
    const extraCopies = [...storedCopies].filter((k) => !expected.has(k)).length
    if (duplicatePackets > 0) failures.push(`${duplicatePackets} packets stored more than once`)
    if (missingPackets > 0) failures.push(`${missingPackets} of ${packets.size} packets not stored`)
    if (extraPackets > 0) failures.push(`${extraPackets} packets stored that were never published`)
    if (copies.length !== storedCopies.size)
      failures.push(`${copies.length - storedCopies.size} copies stored twice`)
    if (missingCopies > 0) failures.push(`${missingCopies} of ${expected.size} copies lost`)
    if (extraCopies > 0) failures.push(`${extraCopies} receptions stored that were never published`)
    const coverage =
      [...storedCopies].filter((k) => seen.has(k)).length / Math.max(1, storedCopies.size)
    if (withWeb) {
      for (const [i, n] of wsStats.byWorker.entries()) {
        if (n === 0) failures.push(`the WebSocket client got no event written by worker ${i + 1}`)
      }
    }
    if (killHalfWay && !kill) failures.push('worker 1 was not killed and restarted')
    let backlogResult: BacklogResult | undefined
    if (drain) {
      if (drainEnd) {
        log(
          `backlog drained in ${Math.round(drainEnd.ms)} ms: ${Math.round((expected.size * 1000) / drainEnd.ms)} receptions/s`,
        )
      }
      backlogResult = {
        drainMs: drainEnd ? Math.round(drainEnd.ms) : Number.NaN,
        receptionsPerSec: drainEnd ? Math.round((expected.size * 1000) / drainEnd.ms) : 0,
        connectMs: drain.connectMs,
        firstStoredMs: drain.firstStoredMs,
        startWall: drain.startWall,
        endWall: drainEnd?.wall ?? Number.NaN,
        receivedByWorker: Array.from(
          { length: options.workers },
          (_, i) => summaries.find((s) => s.worker === i + 1 && s.run === 2)?.summary.received ?? 0,
        ),
      }
    }
    return {
      ok: failures.length === 0,
      failures,
      envelopes: options.envelopes,
      workers: options.workers,
      published: {
        envelopes: published,
        packets: packets.size,
        copies: expected.size,
        ms: Math.round(publishMs),
      },
      endToEndPerSec: Math.round((published * 1000) / endToEndMs),
      endToEndMs: Math.round(endToEndMs),
      ...(kill ? { kill } : {}),
      ...(backlogResult ? { backlog: backlogResult } : {}),
      stored: {
        packets: keyCount.size,
        duplicatePackets,
        missingPackets,
        extraPackets,
        receptions: copies.length,
        missingCopies,
        extraCopies,
      },
      summaries,
      ...(withWeb
        ? { websocket: { ...wsStats, coverage: Math.round(coverage * 10_000) / 10_000 } }
        : {}),
      broker: `mosquitto ${broker}`,
    }
  } finally {
    ws?.terminate()
    await publisher?.endAsync().catch(() => undefined)
    for (const w of workers) w?.child.kill('SIGKILL')
    if (web) {
      web.child.kill('SIGTERM')
      const t = setTimeout(() => web?.child.kill('SIGKILL'), 10_000)
      await web.exited
      clearTimeout(t)
    }
    mosquitto?.child.kill('SIGTERM')
    await mosquitto?.exited
    killAll()
    await db?.end().catch(() => undefined)
    if (!options.keep) {
      await admin
        .query({ text: `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)` })
        .catch((e: Error) => log(`could not drop ${dbName}: ${e.message}`))
    } else log(`kept database ${dbName}`)
    await admin.end().catch(() => undefined)
    rmSync(tmp, { recursive: true, force: true })
  }
}
