import type { Ingest } from '@meshtap/core'
import {
  type NodeDetail,
  nodeIdFromNum,
  type QueryableStore,
  type ReceptionRow,
} from '@meshtap/protocol'

/** What the ingest saw from one node that the store does not keep (drops, failures). */
interface NodeTrace {
  firstSeen: number
  lastSeen: number
  /** Every envelope from the node: first copies, other copies, undecoded, dropped. */
  envelopes: number
  packets: number
  copies: number
  undecoded: Record<string, number>
  /** Channel hashes (or channel ids) of what could not be decrypted. */
  undecodedChannels: Record<string, number>
  drops: Record<string, { count: number; last: number; message?: string }>
  gateways: Record<string, number>
}

/** One finding of the diagnosis. */
export interface Finding {
  code:
    | 'never-seen'
    | 'not-since-restart'
    | 'no-key'
    | 'pki'
    | 'rate-limited'
    | 'dropped'
    | 'decode-failed'
    | 'no-position'
    | 'map-report-only'
    | 'position-precision'
    | 'position-stale'
    | 'on-map'
  severity: 'info' | 'warning' | 'error'
  message: string
  count?: number
}

const MAX_GATEWAYS = 32

/**
 * Keeps, per node, what the ingest saw and did not store (drops by reason, decode failures,
 * undecodable channels), in a bounded map (least recently seen nodes are forgotten first).
 */
export function createDiagnostics(ingest: Ingest, maxNodes = 10_000) {
  const traces = new Map<number, NodeTrace>()
  const startedAt = Date.now()

  function trace(from: number | undefined, gateway?: string): NodeTrace | undefined {
    if (from === undefined || from === 0) return undefined
    const t = Date.now()
    let tr = traces.get(from)
    if (tr) {
      traces.delete(from) // re-insert: Map order is the recency order
    } else {
      tr = {
        firstSeen: t,
        lastSeen: t,
        envelopes: 0,
        packets: 0,
        copies: 0,
        undecoded: {},
        undecodedChannels: {},
        drops: {},
        gateways: {},
      }
      if (traces.size >= maxNodes) traces.delete(traces.keys().next().value as number)
    }
    traces.set(from, tr)
    tr.lastSeen = t
    tr.envelopes++
    if (gateway) {
      if (tr.gateways[gateway] === undefined && Object.keys(tr.gateways).length >= MAX_GATEWAYS) {
        return tr
      }
      tr.gateways[gateway] = (tr.gateways[gateway] ?? 0) + 1
    }
    return tr
  }
  const fromKey = (key: string) => Number(key.split(':')[0])

  const unsubscribe = [
    ingest.on('packet', ({ packet, reception }) => {
      const tr = trace(packet.packet.from, reception.gatewayId)
      if (tr) tr.packets++
    }),
    ingest.on('reception', ({ reception }) => {
      const tr = trace(fromKey(reception.packetKey), reception.gatewayId)
      if (tr) tr.copies++
    }),
    ingest.on('undecoded', ({ undecoded }) => {
      const p = undecoded.failure.packet
      const tr = trace(p.from, p.gatewayId)
      if (!tr) return
      const code = undecoded.failure.error.code
      tr.undecoded[code] = (tr.undecoded[code] ?? 0) + 1
      const channel =
        p.channelId && p.channelId !== 'PKI' ? p.channelId : `hash ${p.channel ?? '?'}`
      if (code === 'NO_MATCHING_KEY')
        tr.undecodedChannels[channel] = (tr.undecodedChannels[channel] ?? 0) + 1
    }),
    ingest.on('drop', (e) => {
      const from = e.from ?? (e.key ? fromKey(e.key) : undefined)
      const tr = trace(from)
      if (!tr) return
      const reason = e.reason === 'decode-failed' ? `decode-failed:${e.code ?? '?'}` : e.reason
      const d = tr.drops[reason] ?? { count: 0, last: 0 }
      tr.drops[reason] = d
      d.count += e.count
      d.last = Date.now()
      if (e.message) d.message = e.message.slice(0, 200)
    }),
  ]

  /** Explains why a node is (or is not) on the map, from the store and the traces. */
  async function diagnose(store: QueryableStore, num: number) {
    const id = nodeIdFromNum(num)
    const [node, receptions] = await Promise.all([
      store.getNode(num),
      store.listReceptions({ node: num, limit: 500 }),
    ])
    const tr = traces.get(num)
    const cached = ingest.cache.get(num)
    const findings: Finding[] = []
    const gateways = gatewaysOf(receptions.items, cached?.gateways)

    if (!node && !tr) {
      findings.push({
        code: 'never-seen',
        severity: 'error',
        message: `No envelope from ${id} reached this server. Check that a gateway in range has MQTT uplink enabled on the node's channel, publishes to a broker this server subscribes to, and uses a topic root it subscribes to.`,
      })
    } else if (!tr) {
      findings.push({
        code: 'not-since-restart',
        severity: 'info',
        message: `Nothing from ${id} since this server started (${new Date(startedAt).toISOString()}); the stored history is below.`,
      })
    }
    const noKey = tr?.undecoded.NO_MATCHING_KEY ?? 0
    if (noKey > 0) {
      const channels = Object.entries(tr?.undecodedChannels ?? {})
        .map(([c, n]) => `${c} (${n})`)
        .join(', ')
      findings.push({
        code: 'no-key',
        severity: 'error',
        count: noKey,
        message: `${noKey} packet(s) could not be decrypted: no configured key opens channel ${channels}. Add the channel key (--key NAME=PSK, or POST /api/control/keys, which also re-decrypts what was kept).`,
      })
    }
    const pki = tr?.undecoded.PKI_ENCRYPTED ?? 0
    if (pki > 0) {
      findings.push({
        code: 'pki',
        severity: 'info',
        count: pki,
        message: `${pki} direct message(s) are PKI-encrypted: only their recipient can read them. They never carry positions for the map.`,
      })
    }
    for (const [reason, d] of Object.entries(tr?.drops ?? {})) {
      if (reason === 'rate-limited') {
        findings.push({
          code: 'rate-limited',
          severity: 'warning',
          count: d.count,
          message: `${d.count} packet(s) dropped: the node sends faster than the per-node rate limit (last ${new Date(d.last).toISOString()}).`,
        })
      } else if (reason.startsWith('decode-failed:')) {
        findings.push({
          code: 'decode-failed',
          severity: 'warning',
          count: d.count,
          message: `${d.count} envelope(s) could not be decoded (${reason.slice(14)}${d.message ? `: ${d.message}` : ''}).`,
        })
      } else {
        findings.push({
          code: 'dropped',
          severity: 'warning',
          count: d.count,
          message: `${d.count} record(s) dropped (${reason}): the server was overloaded or its store failed.`,
        })
      }
    }
    if (node || tr) {
      const pos = node?.position
      if (!pos) {
        findings.push({
          code: 'no-position',
          severity: 'error',
          message:
            'No position received: the node has no GPS fix or fixed position, position broadcasts are off, or the channel shares positions with precision 0 (Position precision in the channel settings). Other nodes still hear it.',
        })
      } else {
        if (pos.source === 'mapreport') {
          findings.push({
            code: 'map-report-only',
            severity: 'info',
            message: 'Its position comes from its map report only (coarse, about hourly).',
          })
        }
        if (pos.radiusM !== undefined && pos.radiusM > 0) {
          findings.push({
            code: 'position-precision',
            severity: 'info',
            message: `It shares an approximate position (${pos.precisionBits ?? '?'} precision bits): drawn as a circle of ${Math.round(pos.radiusM)} m radius, not a point.`,
          })
        }
        if (Date.now() - pos.at > 86_400_000) {
          findings.push({
            code: 'position-stale',
            severity: 'warning',
            message: `Its latest position is from ${new Date(pos.at).toISOString()}; the map shows the last 24 hours by default.`,
          })
        }
        findings.push({
          code: 'on-map',
          severity: 'info',
          message: `On the map at ${pos.latitude.toFixed(4)}, ${pos.longitude.toFixed(4)}.`,
        })
      }
    }
    return {
      node: id,
      num,
      onMap: Boolean(node?.position),
      lastHeard: node?.lastHeard ?? tr?.lastSeen,
      stored: node ? summarize(node) : undefined,
      sinceStart: tr
        ? {
            envelopes: tr.envelopes,
            packets: tr.packets,
            copies: tr.copies,
            undecoded: tr.undecoded,
            drops: tr.drops,
            gateways: tr.gateways,
          }
        : undefined,
      gateways,
      findings,
    }
  }

  return {
    diagnose,
    /** How many nodes are traced. */
    size: () => traces.size,
    close: () => {
      for (const u of unsubscribe) u()
    },
  }
}

function summarize(n: NodeDetail) {
  return {
    packets: n.packets,
    firstSeen: n.firstSeen,
    lastHeard: n.lastHeard,
    position: n.position,
    hopsAway: n.hopsAway,
    isGateway: n.isGateway,
  }
}

/** The gateways that heard a node, with their latest and median signal. */
export function gatewaysOf(
  receptions: readonly ReceptionRow[],
  cached?: Record<string, { lastHeard: number; rxSnr: number; rxRssi: number; count: number }>,
) {
  const by = new Map<
    string,
    {
      gatewayId: string
      count: number
      lastHeard: number
      lastSnr?: number
      lastRssi?: number
      snrs: number[]
      rssis: number[]
      direct: number
      minHops?: number
    }
  >()
  for (const r of receptions) {
    const gw = r.gatewayId ?? r.topic ?? '?'
    let g = by.get(gw)
    if (!g) {
      g = { gatewayId: gw, count: 0, lastHeard: 0, snrs: [], rssis: [], direct: 0 }
      by.set(gw, g)
    }
    g.count++
    if (r.receptionClass === 'direct') g.direct++
    if (r.hopsAway !== undefined) g.minHops = Math.min(g.minHops ?? 99, r.hopsAway)
    const radio = r.receptionClass !== 'self' && r.receptionClass !== 'injected'
    if (radio && (r.rxSnr !== 0 || r.rxRssi !== 0)) {
      g.snrs.push(r.rxSnr)
      g.rssis.push(r.rxRssi)
    }
    if (r.receivedAt > g.lastHeard) {
      g.lastHeard = r.receivedAt
      if (radio) {
        g.lastSnr = r.rxSnr
        g.lastRssi = r.rxRssi
      }
    }
  }
  for (const [gw, h] of Object.entries(cached ?? {})) {
    if (by.has(gw)) continue
    by.set(gw, {
      gatewayId: gw,
      count: h.count,
      lastHeard: h.lastHeard,
      lastSnr: h.rxSnr,
      lastRssi: h.rxRssi,
      snrs: [h.rxSnr],
      rssis: [h.rxRssi],
      direct: 0,
    })
  }
  const median = (xs: number[]) => {
    if (xs.length === 0) return undefined
    const s = [...xs].sort((a, b) => a - b)
    return s[Math.floor(s.length / 2)]
  }
  return [...by.values()]
    .map(({ snrs, rssis, ...g }) => ({ ...g, medianSnr: median(snrs), medianRssi: median(rssis) }))
    .sort((a, b) => b.lastHeard - a.lastHeard)
}
