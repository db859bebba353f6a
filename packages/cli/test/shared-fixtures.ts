import { existsSync, readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** One captured vector from `../shared/fixtures/meshtastic-vectors.json`. */
export interface Vector {
  id: string
  kind: string
  topic: string | null
  encoding: string
  payload: string
  psk?: string
  expected: Record<string, unknown>
  notes?: string
}

const here = dirname(fileURLToPath(import.meta.url))

/** Where the shared fixtures live: `$MESHTAP_SHARED_DIR`, else `../shared` beside the repo. */
export const SHARED_DIR = process.env.MESHTAP_SHARED_DIR ?? resolve(here, '../../../../shared')
const VECTORS = resolve(SHARED_DIR, 'fixtures/meshtastic-vectors.json')

/** The shared vectors, or `undefined` (with a visible notice) when `../shared` is not there. */
export function loadVectors(): Vector[] | undefined {
  if (!existsSync(VECTORS)) {
    const msg = `NOTICE: ${VECTORS} not found: the shared-fixture tests are skipped`
    if (process.env.CI) throw new Error(`${msg} (they are required when CI is set)`)
    console.warn(msg)
    return undefined
  }
  return JSON.parse(readFileSync(VECTORS, 'utf8')) as Vector[]
}

/** Deep equality with a relative tolerance for non-integers (float32 values widened to double). */
export function approxEqual(a: unknown, b: unknown, path = ''): string | undefined {
  if (typeof a === 'number' && typeof b === 'number') {
    if (a === b) return undefined
    if (Number.isInteger(a) && Number.isInteger(b)) return `${path}: ${a} !== ${b}`
    return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(a), Math.abs(b))
      ? undefined
      : `${path}: ${a} !≈ ${b}`
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path}: length ${a.length} !== ${b.length}`
    for (let i = 0; i < a.length; i++) {
      const d = approxEqual(a[i], b[i], `${path}[${i}]`)
      if (d) return d
    }
    return undefined
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort()
    const kb = Object.keys(b).sort()
    if (ka.join() !== kb.join()) return `${path}: keys [${ka}] !== [${kb}]`
    for (const k of ka) {
      const d = approxEqual(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        `${path}.${k}`,
      )
      if (d) return d
    }
    return undefined
  }
  return a === b ? undefined : `${path}: ${JSON.stringify(a)} !== ${JSON.stringify(b)}`
}
