import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig, type ServerConfig } from '../src/config.js'
import { type ReferenceServer, startReferenceServer } from '../src/server.js'

export const TOKEN = 'test-token-0123456789abcdef'

/** A server on ephemeral ports, fed by a fast simulator, with a fresh SQLite file. */
export async function startTestServer(
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<{ server: ReferenceServer; config: ServerConfig; dir: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'meshtap-rs-'))
  const config = loadConfig(
    [
      '--port=0',
      '--mqtt-port=0',
      `--data-dir=${dir}`,
      '--simulate',
      '--simulate-rate=200',
      '--simulate-nodes=40',
      '--simulate-gateways=5',
      '--log-level=silent',
      ...args,
    ],
    { MESHTAP_TOKEN: TOKEN, MESHTAP_SIMULATE_BURST: '800', ...env },
  )
  if (config === 'help') throw new Error('unexpected help')
  const server = await startReferenceServer(config)
  return {
    server,
    config,
    dir,
    async close() {
      await server.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Polls `check` until it returns a truthy value. */
export async function until<T>(
  check: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > end)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${check.toString().slice(0, 160)}`,
      )
    await new Promise((r) => setTimeout(r, 100))
  }
}

// biome-ignore lint/suspicious/noExplicitAny: tests read the JSON bodies loosely
type Json = any

export async function getJson(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: Json; headers: Headers }> {
  const res = await fetch(url, init)
  const text = await res.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = text
  }
  return { status: res.status, body, headers: res.headers }
}

/** Debian's Chromium (driven through playwright-core), or `CHROMIUM_PATH`. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * Builds the web UI as it is now (a few seconds) into a fresh temp folder and returns it, so a
 * browser test serves its own copy (web/dist may be read by the production-install test meanwhile).
 */
export function buildWebUi(prefix = 'meshtap-web-'): string {
  const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
  const webDir = mkdtempSync(join(tmpdir(), prefix))
  execFileSync(
    process.execPath,
    [
      here('../node_modules/vite/bin/vite.js'),
      'build',
      '--config',
      here('../web/vite.config.ts'),
      '--logLevel',
      'warn',
      '--outDir',
      webDir,
      '--emptyOutDir',
    ],
    { stdio: 'inherit', cwd: here('..'), env: { ...process.env, NODE_ENV: 'production' } },
  )
  return webDir
}
