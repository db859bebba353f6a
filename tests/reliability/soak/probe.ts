/**
 * A probe preloaded into the reference server by the soak (`node --expose-gc --import …/probe.ts`),
 * so the server's own code is not changed. On a request over the IPC channel it runs a full
 * garbage collection and answers with the memory that is still in use.
 *
 * Why: between V8's major collections the used heap climbs for a minute or more and then falls
 * back (a sawtooth tens of megabytes high at a few hundred envelopes per second), so a heap figure
 * sampled at an arbitrary moment says little about a leak in a two-minute run. The heap left after
 * a full collection is the live data: that is the series the growth verdict uses.
 */

/** The request the soak sends. */
export interface ProbeRequest {
  type: 'meshtap-soak-probe'
  id: number
}

/** The probe's answer: memory after a full collection, in bytes, and the collection's duration. */
export interface ProbeReply {
  type: 'meshtap-soak-probe'
  id: number
  /** False when the process was started without `--expose-gc` (the figures are then not after a collection). */
  collected: boolean
  gcMs: number
  heapUsed: number
  heapTotal: number
  rss: number
  external: number
  arrayBuffers: number
}

const gc = (globalThis as { gc?: () => void }).gc

if (process.send) {
  process.on('message', (m: unknown) => {
    const req = m as Partial<ProbeRequest> | null
    if (req?.type !== 'meshtap-soak-probe' || typeof req.id !== 'number') return
    const t = performance.now()
    gc?.()
    const gcMs = performance.now() - t
    const mem = process.memoryUsage()
    const reply: ProbeReply = {
      type: 'meshtap-soak-probe',
      id: req.id,
      collected: gc !== undefined,
      gcMs,
      heapUsed: mem.heapUsed,
      heapTotal: mem.heapTotal,
      rss: mem.rss,
      external: mem.external,
      arrayBuffers: mem.arrayBuffers,
    }
    process.send?.(reply)
  })
  // The channel must not keep the server alive once it wants to exit.
  process.channel?.unref()
}
