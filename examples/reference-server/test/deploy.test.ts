import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { getJson, until } from './helpers.js'

const pkg = fileURLToPath(new URL('..', import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'meshtap-deploy-'))
let child: ChildProcess | undefined

/** pnpm as the test runner was started with it (CI runs it through npx), else from PATH. */
function pnpm(args: string[], cwd: string) {
  const exec = process.env.npm_execpath
  const [cmd, pre] =
    exec && basename(exec).includes('pnpm')
      ? /\.[cm]?js$/.test(exec)
        ? [process.execPath, [exec]]
        : [exec, []]
      : ['pnpm', []]
  execFileSync(cmd, [...pre, ...args], {
    cwd,
    stdio: 'pipe',
    env: { ...process.env, npm_config_nodedir: process.env.npm_config_nodedir ?? '/usr' },
  })
}

afterAll(() => {
  child?.kill('SIGKILL')
  rmSync(work, { recursive: true, force: true })
})

describe('production install (the Dockerfile steps)', () => {
  it('builds, deploys with production dependencies only, starts, answers /api/health, stops on SIGTERM with 0', async () => {
    // 1. build (Dockerfile stage "build"): the server bundle and the web UI.
    execFileSync(join(pkg, 'node_modules/.bin/tsup'), { cwd: pkg, stdio: 'pipe' })
    execFileSync(
      process.execPath,
      [
        join(pkg, 'node_modules/vite/bin/vite.js'),
        'build',
        '--config',
        'web/vite.config.ts',
        '--logLevel',
        'warn',
      ],
      { cwd: pkg, stdio: 'pipe', env: { ...process.env, NODE_ENV: 'production' } },
    )
    // 2. pnpm deploy --prod into a fresh folder (Dockerfile: COPY --from=build /prod/app).
    const app = join(work, 'app')
    pnpm(['--filter', '@meshtap/reference-server', 'deploy', '--prod', app], pkg)
    expect(existsSync(join(app, 'dist/main.js'))).toBe(true)
    expect(existsSync(join(app, 'web/dist/index.html'))).toBe(true)
    expect(existsSync(join(app, 'node_modules/vitest'))).toBe(false)
    expect(existsSync(join(app, 'node_modules/react'))).toBe(false)

    // 3. run it as the image does: node dist/main.js, data in a volume.
    const data = join(work, 'data')
    child = spawn(
      process.execPath,
      [
        'dist/main.js',
        '--host=127.0.0.1',
        '--port=0',
        '--mqtt-port=0',
        '--simulate',
        '--simulate-rate=100',
        `--data-dir=${data}`,
      ],
      {
        cwd: app,
        env: { PATH: process.env.PATH, MESHTAP_TOKEN: 'deploy-test-token-0123456789' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let out = ''
    let err = ''
    child.stdout?.on('data', (d) => (out += d))
    child.stderr?.on('data', (d) => (err += d))
    const url = await until(async () => {
      if (child?.exitCode !== null) throw new Error(`server exited: ${err}`)
      return /open (http:\/\/\S+)/.exec(out)?.[1]
    })
    expect(out).not.toContain('deploy-test-token')
    // Healthy, and the simulator's traffic committed (health no longer counts rows; stats does).
    const health = await until(async () => {
      const h = await getJson(`${url}/api/health`)
      const s = await getJson(`${url}/api/stats`)
      return h.status === 200 && s.body.store.packets > 0 ? h : undefined
    })
    expect(health.body).toMatchObject({ status: 'ok', websocket: { ok: true } })
    const index = await fetch(url)
    expect(index.status).toBe(200)
    expect(await index.text()).toContain('<div id="root">')
    const stats = await getJson(`${url}/api/stats`)
    const seen = stats.body.ingest.packets as number

    // 4. SIGTERM: drain, flush, exit 0.
    const exit = new Promise<number | null>((resolve) =>
      child?.once('exit', (code) => resolve(code)),
    )
    child.kill('SIGTERM')
    expect(await exit).toBe(0)
    expect(out).toContain('stopped')
    const db = new Database(join(data, 'meshtap.db'), { readonly: true })
    const stored = db.prepare('SELECT count(*) AS n FROM packets').get() as { n: number }
    db.close()
    expect(stored.n).toBeGreaterThanOrEqual(seen)
  }, 90_000)
})
