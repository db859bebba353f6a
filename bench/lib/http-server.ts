/**
 * Starts the reference server (examples/reference-server/src/main.ts, from its TypeScript
 * sources) in its own process on an ephemeral loopback port, on an existing SQLite file, with no
 * sources: no embedded broker, no upstream broker, no simulator, and no rate limit.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'

const MAIN = fileURLToPath(new URL('../../examples/reference-server/src/main.ts', import.meta.url))

export interface BenchServer {
  url: string
  pid: number
  /** SIGTERM, then waits for the exit (SIGKILL after 20 s). */
  stop(): Promise<void>
}

export async function startBenchServer(dir: string, file: string): Promise<BenchServer> {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
  const proc: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      tsx,
      '--conditions=@meshtap/source',
      MAIN,
      '--host=127.0.0.1',
      '--port=0',
      '--no-mqtt',
      `--data-dir=${dir}`,
      `--db=${file}`,
      '--rate-limit=0',
      '--log-level=silent',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'production' } },
  )
  let out = ''
  let err = ''
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not start in 60 s: ${err}`)),
      60_000,
    )
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /open (http:\/\/\S+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1] as string)
      }
    })
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}: ${err}`))
    })
  })
  return {
    url,
    pid: proc.pid as number,
    async stop() {
      if (proc.exitCode !== null) return
      proc.kill('SIGTERM')
      const force = setTimeout(() => proc.kill('SIGKILL'), 20_000)
      await exited
      clearTimeout(force)
    },
  }
}
