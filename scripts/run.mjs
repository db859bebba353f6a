#!/usr/bin/env node
// One entry point for the README's quick start, on a machine that has only Node.js:
//   node scripts/run.mjs start   install everything, then run the main job
//   node scripts/run.mjs test    install everything, then run the whole check (build, lint, types, tests, docs)
// It uses pnpm 12.4.2 through npx (no global install), and points native builds (better-sqlite3)
// at this Node's own headers, so nothing is downloaded from outside the npm registry.
import { spawnSync } from 'node:child_process'
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
const pnpm = (...args) => {
  const r = spawnSync('npx', ['-y', 'pnpm@12.4.2', ...args], { stdio: 'inherit', env })
  if (r.error) throw r.error
  if (r.status !== 0) process.exit(r.status ?? 1)
}
pnpm('install', '--frozen-lockfile')
pnpm(what === 'test' ? 'check' : 'start', ...rest)
