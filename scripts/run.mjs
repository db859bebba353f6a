#!/usr/bin/env node
// One entry point for the README's quick start, on a machine that has only Node.js:
//   node scripts/run.mjs start   install everything, then run the main job
//   node scripts/run.mjs test    install everything, then run the whole check (build, lint, types, tests, docs)
// It uses pnpm 12.4.2 through npx (no global install), and points native builds (better-sqlite3)
// at this Node's own headers, so nothing is downloaded from outside the npm registry.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const what = process.argv[2]
const rest = process.argv.slice(3)
if (what !== 'start' && what !== 'test') {
  console.error('usage: node scripts/run.mjs start|test [args…]')
  process.exit(2)
}
const env = { ...process.env }
const prefix = dirname(dirname(process.execPath))
if (!env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node.h'))) {
  env.npm_config_nodedir = prefix
}
/** `npx` arguments that run the pinned pnpm. */
const PNPM = ['-y', 'pnpm@12.4.2']
const pnpm = (...args) => {
  const r = spawnSync('npx', [...PNPM, ...args], { stdio: 'inherit', env })
  if (r.error) throw r.error
  if (r.status !== 0) process.exit(r.status ?? 1)
}
pnpm('install', '--frozen-lockfile')

/**
 * The main job. `start` runs what the root `pnpm start` script runs (the reference server's start
 * script with the flags after its `--`), without pnpm in between: pnpm reports a stop by signal as
 * a failed command (`ELIFECYCLE`), which is not what a clean Ctrl-C is.
 */
function mainJob() {
  if (what === 'test') return ['npx', [...PNPM, 'check', ...rest], {}]
  const script = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts?.start ?? ''
  const m = /^pnpm --filter @meshtap\/reference-server start -- (.*)$/.exec(script)
  if (!m) return ['npx', [...PNPM, 'start', ...rest], {}]
  const server = join(root, 'examples/reference-server')
  const args = [join(server, 'scripts/start.mjs'), ...m[1].split(/\s+/), ...rest]
  return [process.execPath, args, { cwd: server }]
}

// The main job runs in a process group of its own, and SIGINT/SIGTERM sent to this script go to
// the whole group (as Ctrl-C in a terminal would): stopping `run.mjs` stops the server it started,
// which drains and flushes, instead of leaving it running without a parent.
const [command, args, options] = mainJob()
const child = spawn(command, args, { stdio: 'inherit', env, detached: true, ...options })
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    try {
      process.kill(-child.pid, signal)
    } catch {
      // The group is gone already.
    }
  })
}
child.on('error', (error) => {
  console.error(error.message)
  process.exit(1)
})
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
