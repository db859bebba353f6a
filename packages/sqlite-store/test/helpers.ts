import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'

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
