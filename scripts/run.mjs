#!/usr/bin/env node
// One entry point for the README's quick start, on a machine that has only Node.js:
//   node scripts/run.mjs start   install everything, then run the main job
//   node scripts/run.mjs test    install everything, then run the whole check (build, lint, types, tests, docs)
// It uses pnpm 12.4.2 through npx (no global install), and points native builds (better-sqlite3)
// at this Node's own headers, so nothing is downloaded from outside the npm registry.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

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

// The main job runs in a process group of its own, and SIGINT/SIGTERM sent to this script go to
// the whole group (as Ctrl-C in a terminal would): stopping `run.mjs` stops the server it started,
// which drains and flushes, instead of leaving it running without a parent.
const child = spawn('npx', [...PNPM, what === 'test' ? 'check' : 'start', ...rest], {
  stdio: 'inherit',
  env,
  detached: true,
})
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
