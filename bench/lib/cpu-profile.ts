interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string }
  hitCount?: number
}

/** A V8 CPU profile (`Profiler.stop` over the inspector protocol, or a `.cpuprofile` file). */
export interface CpuProfile {
  nodes: ProfileNode[]
  samples?: number[]
  timeDeltas?: number[]
}

/** Self time of a function or an area, as a share of the profile's busy (non-idle) time. */
export interface ProfileEntry {
  label: string
  share: number
}

export interface ProfileSummary {
  /** Busy time sampled, ms. */
  busyMs: number
  /** Self time grouped by area of the code (codec, store, replay source, GC, …). */
  areas: ProfileEntry[]
  /** The functions with the most self time. */
  functions: ProfileEntry[]
}

/** Which part of the system a sampled frame belongs to. */
function areaOf(functionName: string, url: string): string {
  if (functionName === '(garbage collector)') return 'garbage collection'
  if (functionName === '(program)') return 'V8 / native (program)'
  if (url.includes('/packages/core/src/codec/')) return 'codec (envelope, decrypt, decode)'
  if (url.includes('/packages/core/src/store/')) return 'memory store (structuredClone, maps)'
  if (url.includes('/packages/core/src/pipeline/')) return 'ingest glue (push, receptions, batches)'
  if (url.includes('/packages/core/src/dedup/')) return 'dedup'
  if (url.includes('/packages/core/src/queue/')) return 'priority queue'
  if (url.includes('/packages/core/src/cache/')) return 'hot node cache'
  if (url.includes('/packages/core/src/metrics/')) return 'metrics'
  if (url.includes('/packages/core/src/source/') || url.includes('/packages/protocol/src/capture'))
    return 'replay source (read lines, JSON.parse, base64)'
  if (url.includes('/packages/protocol/src/')) return 'protocol helpers'
  if (url.includes('eventemitter3')) return 'events'
  if (url.includes('readline') || url.includes('internal/fs') || url.includes('internal/streams'))
    return 'replay source (read lines, JSON.parse, base64)'
  if (url.startsWith('node:')) return 'node internals'
  if (url === '') return `native: ${functionName || '(anonymous)'}`
  return 'other JS'
}

function shortUrl(url: string): string {
  const i = url.indexOf('/packages/')
  if (i >= 0) return url.slice(i + '/packages/'.length)
  const n = url.lastIndexOf('/node_modules/')
  if (n >= 0) return url.slice(n + '/node_modules/'.length)
  return url.replace(/^file:\/\//, '')
}

/** Sums the self time of a profile by area and by function. */
export function summarizeCpuProfile(profile: CpuProfile, top = 6): ProfileSummary | undefined {
  const byId = new Map<number, ProfileNode>()
  for (const n of profile.nodes) byId.set(n.id, n)
  const self = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  for (let i = 0; i < samples.length; i++) {
    // The delta before sample i+1 is the time spent in sample i.
    const dt = deltas[i + 1] ?? 0
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + Math.max(0, dt))
  }
  const areas = new Map<string, number>()
  const functions = new Map<string, number>()
  let busy = 0
  for (const [id, us] of self) {
    const n = byId.get(id)
    if (!n) continue
    const { functionName, url } = n.callFrame
    if (functionName === '(idle)') continue
    busy += us
    const area = areaOf(functionName, url)
    areas.set(area, (areas.get(area) ?? 0) + us)
    const label = url
      ? `\`${functionName || '(anonymous)'}\` (${shortUrl(url)})`
      : `\`${functionName || '(anonymous)'}\``
    functions.set(label, (functions.get(label) ?? 0) + us)
  }
  if (busy <= 0) return undefined
  const rank = (m: Map<string, number>, k: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([label, us]) => ({ label, share: us / busy }))
  return { busyMs: busy / 1000, areas: rank(areas, top), functions: rank(functions, top) }
}
