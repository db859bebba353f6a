import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'

const src = join(import.meta.dirname, '..', 'src')
const files = readdirSync(src).filter((f) => /\.tsx?$/.test(f) && !/\.test\.tsx?$/.test(f))

it('imports only React and @meshtap/protocol at run time (browser-safe, MIT)', () => {
  const allowed = new Set(['react', '@meshtap/protocol'])
  for (const f of files) {
    const code = readFileSync(join(src, f), 'utf8')
    for (const m of code.matchAll(/^import\s+(type\s+)?[^'"]*from\s+'([^']+)'/gm)) {
      const [, isType, spec] = m as unknown as [string, string | undefined, string]
      if (spec.startsWith('./')) continue
      if (isType) continue
      expect(allowed, `${f} imports ${spec}`).toContain(spec)
    }
  }
})

it('touches no browser global at import time', () => {
  for (const f of files) {
    const code = readFileSync(join(src, f), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '')
    // No DOM global is used (`window` is only ever a parameter name here); requestAnimationFrame
    // is looked up on globalThis inside a function, when an update is scheduled.
    expect(code, f).not.toMatch(/\b(window|document|navigator|localStorage)\s*[.[]/)
    expect(code, f).not.toMatch(/\b(document|navigator|localStorage)\b/)
  }
})

it("starts the provider module with 'use client'", () => {
  const code = readFileSync(join(src, 'meshtap-provider.tsx'), 'utf8')
  expect(code.startsWith("'use client'\n")).toBe(true)
})

it('documents every export with JSDoc and an @example', () => {
  // index.ts re-exports all of client.ts (`export *`) and adds the React parts.
  const index = ['index.ts', 'client.ts'].map((f) => readFileSync(join(src, f), 'utf8')).join('\n')
  expect(index).toContain("export * from './client.js'")
  const names = [...index.matchAll(/export (?:type )?\{([^}]*)\}/g)].flatMap((m) =>
    (m[1] as string)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
  expect(names.length).toBeGreaterThan(50)
  const code = files.map((f) => readFileSync(join(src, f), 'utf8')).join('\n')
  const missing = names.filter((name) => {
    const decl = new RegExp(
      `/\\*\\*((?:(?!\\*/)[\\s\\S])*)\\*/\\s*export (?:declare )?(?:async )?(?:function|const|class|interface|type) ${name}\\b`,
    ).exec(code)
    return !decl || !(decl[1] as string).includes('@example')
  })
  expect(missing).toEqual([])
})
