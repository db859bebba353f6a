import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { StoreCounts, WriteBatch } from '@meshtap/protocol'
import { afterAll } from 'vitest'
import { createSqliteStore } from '../src/sqlite-store.js'

const dirs: string[] = []

/** A fresh SQLite file path in a temp directory removed after the test file. */
export function tmpFile(name = 'mesh.db'): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshtap-sqlite-'))
  dirs.push(dir)
  return join(dir, name)
}

afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/**
 * Runs a program of this package's `test/` directory under tsx (sources, as the tests see them)
 * with `args`; resolves to what it printed, fails if it exits with an error or outlives `timeoutMs`.
 */
export function runChild(script: string, args: string[], timeoutMs = 25_000): Promise<string> {
  const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..')
  const tsx = resolve(pkg, '../../node_modules/.bin/tsx')
  return new Promise<string>((done, fail) =>
    execFile(
      tsx,
      ['--conditions=@meshtap/source', `test/${script}`, ...args],
      { cwd: pkg, timeout: timeoutMs },
      (err, stdout) => (err ? fail(err) : done(stdout)),
    ),
  )
}

/** The counts of a fresh store that wrote `batches` on its own connection: what another must match. */
export async function inlineCounts(batches: readonly WriteBatch[]): Promise<StoreCounts> {
  const reference = createSqliteStore({ path: tmpFile(), retention: false })
  try {
    for (const b of batches) await reference.writeBatch(b)
    return await reference.counts()
  } finally {
    await reference.close()
  }
}
