#!/usr/bin/env node
// `pnpm start -- [flags]`: builds the web UI when it is missing or older than its sources, then
// runs the server from TypeScript (the meshtap packages' sources, no package build needed).
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const args = process.argv.slice(2)
if (args[0] === '--') args.shift()

function newest(dir) {
  let t = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}

const built = join(root, 'web/dist/index.html')
const sources = Math.max(
  newest(join(root, 'web/src')),
  statSync(join(root, 'web/index.html')).mtimeMs,
)
if (
  !args.includes('--help') &&
  !args.includes('-h') &&
  (!existsSync(built) || statSync(built).mtimeMs < sources)
) {
  process.stdout.write('Building the web UI…\n')
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'node_modules/vite/bin/vite.js'),
      'build',
      '--config',
      join(root, 'web/vite.config.ts'),
      '--logLevel',
      'warn',
    ],
    { stdio: 'inherit', cwd: root, env: { ...process.env, NODE_ENV: 'production' } },
  )
  if (r.status !== 0) process.exit(r.status ?? 1)
}

const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--conditions=@meshtap/source', join(root, 'src/main.ts'), ...args],
  {
    stdio: 'inherit',
  },
)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
