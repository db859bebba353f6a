import { type ChildProcess, spawn } from 'node:child_process'
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs'
import { createServer, connect as tcpConnect } from 'node:net'
import { join } from 'node:path'
import { startAedes, type TestBroker } from '@meshtap/core/testing'

/** Where Debian installs the broker. */
export const MOSQUITTO_BIN = '/usr/sbin/mosquitto'

/**
 * The broker settings the no-loss guarantee needs (docs/reliability.md, "Broker settings for no
 * loss"): no per-client queue limit (Mosquitto's default of 1000 drops QoS 1 messages for a slow or
 * absent subscriber), no in-flight limit for MQTT 3.1.1 clients (default 20), and an on-disk
 * database so sessions and their queued messages survive a broker restart.
 */
export const NO_LOSS_SETTINGS: Readonly<Record<string, string>> = {
  persistence: 'true',
  autosave_interval: '1',
  max_queued_messages: '0',
  max_queued_bytes: '0',
  max_inflight_messages: '0',
}

/**
 * {@link NO_LOSS_SETTINGS} plus a database save after every change (every queued message,
 * subscription…) instead of every second: what it takes to lose (almost) nothing when the broker
 * itself crashes. Slow: every QoS 1 message rewrites the whole database.
 */
export const BROKER_CRASH_SETTINGS: Readonly<Record<string, string>> = {
  ...NO_LOSS_SETTINGS,
  autosave_on_changes: 'true',
}

/** Options of {@link startMosquitto}. */
export interface MosquittoOptions {
  /** A directory of its own: the config file, the log and the persistence database go there. */
  dir: string
  /** Listen here (to restart on the same port). @default a free loopback port */
  port?: number
  /** Settings written into the config file. @default NO_LOSS_SETTINGS */
  settings?: Readonly<Record<string, string>>
}

/** A Mosquitto process started by {@link startMosquitto}. */
export interface MosquittoProcess {
  readonly url: string
  readonly port: number
  readonly pid: number
  /** Everything it logged so far. */
  log(): string
  /** Resolves after its next save of the in-memory database to disk (persistence on). */
  nextSave(): Promise<void>
  /** SIGKILL: no final save of its database, like a crash or a power cut. */
  kill(): Promise<void>
  /** SIGTERM (it saves its database) and waits for the exit. Idempotent. */
  stop(): Promise<void>
}

/** Whether the Mosquitto binary is installed and executable here. */
export function hasMosquitto(): boolean {
  try {
    accessSync(MOSQUITTO_BIN, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * Whether the Mosquitto cases run: yes when the binary is installed; when it is not, an error if
 * `CI` is set (CI must run them), otherwise `false` with a visible notice so the caller skips.
 */
export function requireMosquitto(what: string): boolean {
  if (hasMosquitto()) return true
  if (process.env.CI) {
    throw new Error(
      `${what}: Mosquitto is required in CI but ${MOSQUITTO_BIN} is missing (apt-get install mosquitto)`,
    )
  }
  console.warn(
    `NOTICE: ${what} skipped: ${MOSQUITTO_BIN} is not installed (set CI to fail instead)`,
  )
  return false
}

/** A loopback TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Resolves once something accepts TCP connections on the port. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect({ host: '127.0.0.1', port })
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    if (Date.now() > end)
      throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/**
 * Starts a Mosquitto process of its own on a loopback port, with a config file and a persistence
 * directory under `dir`; resolves when it accepts connections. Call `stop()` or `kill()` in
 * `afterAll`.
 *
 * @example
 * const broker = await startMosquitto({ dir })
 * await broker.kill()
 * const again = await startMosquitto({ dir, port: broker.port }) // reloads its database
 */
export async function startMosquitto(options: MosquittoOptions): Promise<MosquittoProcess> {
  const port = options.port ?? (await freePort())
  const data = join(options.dir, 'data')
  mkdirSync(data, { recursive: true })
  const settings = options.settings ?? NO_LOSS_SETTINGS
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    // As root, Mosquitto switches to the user "mosquitto", who cannot write the temp directory.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    `persistence_location ${data}/`,
    ...Object.entries(settings).map(([k, v]) => `${k} ${v}`),
  ]
  const conf = join(options.dir, 'mosquitto.conf')
  writeFileSync(conf, `${lines.join('\n')}\n`)
  const child = spawn(MOSQUITTO_BIN, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout?.on('data', (d) => (log += d))
  child.stderr?.on('data', (d) => (log += d))
  const failed = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) =>
      reject(new Error(`mosquitto exited (${code ?? signal}) while starting:\n${log}`)),
    )
    child.once('error', reject)
  })
  try {
    await Promise.race([waitForPort(port), failed])
  } catch (e) {
    child.kill('SIGKILL')
    throw e
  }
  failed.catch(() => {})
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? -1,
    log: () => log,
    async nextSave() {
      const saves = () => log.match(/Saving in-memory database/g)?.length ?? 0
      const before = saves()
      const end = Date.now() + 15_000
      while (saves() <= before) {
        if (Date.now() > end) throw new Error(`mosquitto did not save its database:\n${log}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    async kill() {
      child.kill('SIGKILL')
      await exited(child)
    },
    async stop() {
      child.kill('SIGTERM')
      await exited(child)
    },
  }
}

/**
 * A broker that can be killed and restarted on the same port: Mosquitto when installed, else (only
 * outside CI) the in-process aedes, whose sessions die with it.
 */
export interface RestartableBroker {
  readonly kind: 'mosquitto' | 'aedes'
  readonly url: string
  /**
   * Resolves once the broker's state so far is on disk (Mosquitto saves every `autosave_interval`
   * seconds; aedes keeps nothing, so it resolves at once).
   */
  saved(): Promise<void>
  /** Kills it abruptly (SIGKILL for Mosquitto; aedes is closed, dropping every socket). */
  kill(): Promise<void>
  /** Starts it again on the same port (Mosquitto reloads its on-disk database). */
  restart(): Promise<void>
  /** Stops whatever is running. Idempotent. */
  close(): Promise<void>
}

/**
 * Starts a {@link RestartableBroker} (see there for the choice of broker); Mosquitto runs with
 * {@link BROKER_CRASH_SETTINGS}.
 */
export async function startRestartableBroker(dir: string): Promise<RestartableBroker> {
  if (hasMosquitto()) {
    const settings = BROKER_CRASH_SETTINGS
    let m = await startMosquitto({ dir, settings })
    const port = m.port
    return {
      kind: 'mosquitto',
      url: m.url,
      saved: () => m.nextSave(),
      kill: () => m.kill(),
      async restart() {
        m = await startMosquitto({ dir, port, settings })
      },
      close: () => m.stop(),
    }
  }
  requireMosquitto('broker restart with Mosquitto')
  let a: TestBroker = await startAedes()
  const port = a.port
  return {
    kind: 'aedes',
    url: a.url,
    saved: async () => {},
    kill: () => a.close(),
    async restart() {
      a = await startAedes({ port })
    },
    close: () => a.close(),
  }
}

/** A broker for tests that do not kill it: Mosquitto with {@link NO_LOSS_SETTINGS}, else aedes. */
export async function startTestBroker(
  dir: string,
): Promise<{ kind: 'mosquitto' | 'aedes'; url: string; close(): Promise<void> }> {
  if (hasMosquitto()) {
    const m = await startMosquitto({ dir })
    return { kind: 'mosquitto', url: m.url, close: () => m.stop() }
  }
  requireMosquitto('the fault tests with Mosquitto')
  const a = await startAedes()
  return { kind: 'aedes', url: a.url, close: () => a.close() }
}
