/**
 * The CI soak: two minutes of the reference server fed by its simulator at a steady 200 envelopes
 * per second (ten times the average public traffic), with two live WebSocket viewers, sampled every
 * 5 s. It fails when the live heap, the memory outside the heap or the ingest queue keeps growing,
 * when memory passes its bound, when the store falls behind or sheds records, or when the server
 * does not shut down cleanly. `pnpm soak` runs the same thing for longer.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { csvHeader, parseCsv } from './csv.js'
import { inspectPng } from './png-check.js'
import { runSoak, type SoakResult } from './run-soak.js'

const MINUTES = 2
const INTERVAL_S = 5

const dir = mkdtempSync(join(tmpdir(), 'meshtap-soak-'))
const stop = new AbortController()
let result: SoakResult | undefined

afterAll(() => {
  // Ends a run cut short by a timeout (the server is stopped in runSoak's `finally`).
  stop.abort()
  if (result?.summary.pass) rmSync(dir, { recursive: true, force: true })
  else process.stderr.write(`soak: output kept in ${dir}\n`)
})

describe('soak (2 minutes)', () => {
  it(
    'keeps memory and queue depth flat at a steady rate, and writes a valid CSV, PNG and summary',
    async () => {
      result = await runSoak({
        minutes: MINUTES,
        ratePerS: 200,
        intervalS: INTERVAL_S,
        outDir: dir,
        wsViewers: 2,
        signal: stop.signal,
      })
      const { summary, samples } = result
      const failed = summary.checks.filter((c) => !c.ok)
      expect(failed, JSON.stringify(failed, null, 2)).toEqual([])
      expect(summary.pass).toBe(true)
      expect(result.aborted).toBe(false)

      // Every sample was taken (a rare slow scrape on a busy machine is skipped, not fatal), and
      // the WebSocket viewers got live events all along.
      expect(samples.length + summary.run.sampleErrors).toBe((MINUTES * 60) / INTERVAL_S + 1)
      expect(summary.run.sampleErrors).toBeLessThanOrEqual(2)
      expect(summary.throughput.wsEventsPerS).toBeGreaterThan(0)
      expect(samples.slice(1).every((s) => s.wsEventsPerS > 0)).toBe(true)
      // The verdict was decided on real data: the growth windows were populated.
      expect(summary.heapLiveMb.growth.decided).toBe(true)
      expect(summary.heapLiveMb.growth.counts.last).toBeGreaterThanOrEqual(6)

      // The CSV holds one row per sample, with the header and increasing times.
      const csv = parseCsv(readFileSync(result.csvPath, 'utf8'))
      expect(csv.header.join(',')).toBe(csvHeader())
      expect(csv.rows).toHaveLength(samples.length)
      const t = csv.rows.map((r) => r[0] as number)
      expect(t.every((v, i) => i === 0 || v > (t[i - 1] as number))).toBe(true)
      const rss = csv.header.indexOf('rss_mb')
      expect(csv.rows.every((r) => (r[rss] as number) > 10)).toBe(true)

      // The PNG is valid (signature, chunk CRCs, header, data size) and small.
      const png = new Uint8Array(readFileSync(result.pngPath))
      const info = inspectPng(png)
      expect(info.chunks).toEqual(['IHDR', 'PLTE', 'IDAT', 'IEND'])
      expect(info.width).toBe(960)
      expect(info.height).toBeGreaterThan(500)
      expect(statSync(result.pngPath).size).toBeLessThan(100 * 1024)

      // The summary file is the summary returned.
      expect(JSON.parse(readFileSync(result.summaryPath, 'utf8'))).toEqual(
        JSON.parse(JSON.stringify(summary)),
      )
    },
    // Start-up (tsx compiles the server) + 2 min + shutdown, on a busy machine.
    (MINUTES * 60 + 60) * 1000,
  )
})
