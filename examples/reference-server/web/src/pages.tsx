import type {
  GatewayStatsRow,
  LinkRow,
  MessageRow,
  NodeRow,
  NodeState,
  TracerouteRow,
} from '@meshtap/protocol'
import {
  useConnection,
  useLinks,
  useMessages,
  useNodes,
  useTraceroutes,
} from '@meshtap/react-hooks'
import { useMemo, useState } from 'react'
import { ago, nameOf, type Page, useApi } from './api.js'
import { type MapLine, type MapNode, MeshMap } from './MeshMap.js'

export interface UiConfig {
  tileUrl: string | null
  tileAttribution: string | null
  livePath: string
  protectReads: boolean
}

export const go = (hash: string) => {
  location.hash = hash
}

const STALE_MS = 2 * 3_600_000

/** Nodes with a position, for the map: the live state (ws snapshot + updates). */
export function toMapNodes(nodes: readonly NodeState[], now = Date.now()): MapNode[] {
  const out: MapNode[] = []
  for (const n of nodes) {
    const p = n.position
    if (!p) continue
    out.push({
      num: n.num,
      id: n.id,
      label: n.user?.shortName || n.user?.longName || n.id,
      latitude: p.latitude,
      longitude: p.longitude,
      ...(p.radiusM !== undefined ? { radiusM: p.radiusM } : {}),
      isGateway: n.isGateway,
      stale: now - n.lastHeard > STALE_MS,
    })
  }
  return out
}

export function MapPage({ config }: { config: UiConfig }) {
  const nodes = useNodes({ hasPosition: true })
  const liveLinks = useLinks()
  const liveRoutes = useTraceroutes(undefined, { count: 30 })
  const storedLinks = useApi<Page<LinkRow>>('/api/links?limit=1000', 30_000)
  const storedRoutes = useApi<Page<TracerouteRow>>('/api/traceroutes?limit=30', 30_000)
  const [show, setShow] = useState({ links: true, routes: true })
  const mapNodes = useMemo(() => toMapNodes(nodes), [nodes])
  const lines = useMemo(() => {
    const at = new Map(mapNodes.map((n) => [n.num, [n.latitude, n.longitude] as [number, number]]))
    const out: MapLine[] = []
    if (show.links) {
      const seen = new Set<string>()
      const all = [
        ...liveLinks.map((l) => ({ from: l.from, to: l.to, snr: l.snr })),
        ...(storedLinks.data?.items ?? []).map((l) => ({ from: l.from, to: l.to, snr: l.snr })),
      ]
      for (const l of all) {
        const key = l.from < l.to ? `${l.from}-${l.to}` : `${l.to}-${l.from}`
        const a = at.get(l.from)
        const b = at.get(l.to)
        if (seen.has(key) || !a || !b) continue
        seen.add(key)
        out.push({
          key: `l${key}`,
          kind: 'link',
          points: [a, b],
          ...(l.snr !== undefined ? { title: `SNR ${l.snr} dB` } : {}),
        })
      }
    }
    if (show.routes) {
      const routes = [
        ...liveRoutes.map((r) => ({
          key: r.key + (r.gatewayId ?? ''),
          hops: [r.origin, ...r.route.map((h) => h.num), r.destination],
        })),
        ...(storedRoutes.data?.items ?? []).map((r) => ({
          key: r.key + (r.gatewayId ?? ''),
          hops: [r.from, ...r.route.map((h) => h.num), r.to],
        })),
      ]
      const seen = new Set<string>()
      for (const r of routes) {
        if (seen.has(r.key)) continue
        seen.add(r.key)
        const pts = r.hops
          .map((h) => at.get(h))
          .filter((p): p is [number, number] => p !== undefined)
        if (pts.length >= 2)
          out.push({ key: `r${r.key}`, kind: 'route', points: pts, title: 'traceroute' })
      }
    }
    return out
  }, [mapNodes, liveLinks, liveRoutes, storedLinks.data, storedRoutes.data, show])
  return (
    <div className="map-page">
      <div className="map-tools">
        <label>
          <input
            type="checkbox"
            checked={show.links}
            onChange={(e) => setShow({ ...show, links: e.target.checked })}
          />{' '}
          links
        </label>
        <label>
          <input
            type="checkbox"
            checked={show.routes}
            onChange={(e) => setShow({ ...show, routes: e.target.checked })}
          />{' '}
          traceroutes
        </label>
        <span className="muted">
          circles: shared position precision · blue: gateways · grey: not heard for 2 h
        </span>
      </div>
      <MeshMap
        nodes={mapNodes}
        lines={lines}
        tileUrl={config.tileUrl}
        attribution={config.tileAttribution}
      />
    </div>
  )
}

type SortKey = 'name' | 'id' | 'lastHeard' | 'battery' | 'snr' | 'hops' | 'packets'

export function NodeList() {
  const [search, setSearch] = useState('')
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({
    key: 'lastHeard',
    desc: true,
  })
  const nodes = useNodes(search ? { search } : undefined)
  const rows = useMemo(() => {
    const val = (n: NodeState): string | number => {
      const gw = Object.values(n.gateways).sort((a, b) => b.lastHeard - a.lastHeard)[0]
      switch (sort.key) {
        case 'name':
          return nameOf(n).toLowerCase()
        case 'id':
          return n.id
        case 'lastHeard':
          return n.lastHeard
        case 'battery':
          return Number(n.telemetry.device?.metrics.batteryLevel ?? -1)
        case 'snr':
          return gw?.rxSnr ?? -999
        case 'hops':
          return gw?.hopsAway ?? 99
        case 'packets':
          return n.packets
      }
    }
    return [...nodes].sort((a, b) => {
      const x = val(a)
      const y = val(b)
      const c = x < y ? -1 : x > y ? 1 : 0
      return sort.desc ? -c : c
    })
  }, [nodes, sort])
  const head = (key: SortKey, label: string) => (
    <th
      onClick={() =>
        setSort({ key, desc: sort.key === key ? !sort.desc : key !== 'name' && key !== 'id' })
      }
      className="sortable"
    >
      {label} {sort.key === key ? (sort.desc ? '▼' : '▲') : ''}
    </th>
  )
  return (
    <div className="page">
      <input
        className="search"
        placeholder="Search name or !id…"
        value={search}
        onChange={(e) => setSearch(e.target.value)}
        data-testid="node-search"
      />
      <table className="grid" data-testid="node-list">
        <thead>
          <tr>
            {head('name', 'Name')}
            {head('id', 'Id')}
            <th>Role / hardware</th>
            {head('lastHeard', 'Last heard')}
            {head('battery', 'Battery')}
            {head('snr', 'SNR')}
            {head('hops', 'Hops')}
            {head('packets', 'Packets')}
            <th>Map</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((n) => {
            const gw = Object.values(n.gateways).sort((a, b) => b.lastHeard - a.lastHeard)[0]
            return (
              <tr key={n.num} onClick={() => go(`#/node/${n.id}`)} data-testid="node-row">
                <td>
                  {nameOf(n)} {n.isGateway && <span className="tag">gateway</span>}
                </td>
                <td className="mono">{n.id}</td>
                <td className="muted">
                  {[n.user?.role, n.user?.hwModel].filter(Boolean).join(' · ')}
                </td>
                <td>{ago(n.lastHeard)}</td>
                <td>
                  {n.telemetry.device?.metrics.batteryLevel !== undefined
                    ? `${n.telemetry.device.metrics.batteryLevel}%`
                    : '—'}
                </td>
                <td>{gw ? `${gw.rxSnr} dB` : '—'}</td>
                <td>{gw?.hopsAway ?? '—'}</td>
                <td>{n.packets}</td>
                <td>{n.position ? '●' : <span className="muted">no position</span>}</td>
              </tr>
            )
          })}
        </tbody>
      </table>
      {rows.length === 0 && <p className="muted">No nodes {search ? 'match' : 'yet'}.</p>}
    </div>
  )
}

export function Messages() {
  const channels = useApi<Page<MessageRow>>('/api/messages?limit=500', 15_000)
  const names = useMemo(() => {
    const s = new Set<string>(['LongFast'])
    for (const m of channels.data?.items ?? []) if (m.channel && !m.direct) s.add(m.channel)
    return [...s].sort()
  }, [channels.data])
  const [channel, setChannel] = useState('LongFast')
  const stored = useApi<Page<MessageRow>>(
    `/api/messages?channel=${encodeURIComponent(channel)}&direct=false&limit=200`,
    30_000,
  )
  const live = useMessages({ channel })
  const list = useMemo(() => {
    const by = new Map<
      string,
      {
        key: string
        fromId: string
        text: string
        at: number
        isReaction: boolean
        gatewayId?: string | undefined
      }
    >()
    for (const m of stored.data?.items ?? []) by.set(m.key, m)
    for (const m of live) if (!m.direct) by.set(m.key, m)
    return [...by.values()].sort((a, b) => b.at - a.at).slice(0, 300)
  }, [stored.data, live])
  const nodes = useNodes()
  const names2 = useMemo(() => new Map(nodes.map((n) => [n.id, nameOf(n)])), [nodes])
  return (
    <div className="page">
      <div className="tabs">
        {names.map((c) => (
          <button
            type="button"
            key={c}
            className={c === channel ? 'active' : ''}
            onClick={() => setChannel(c)}
          >
            #{c}
          </button>
        ))}
      </div>
      <ul className="messages" data-testid="messages">
        {list.map((m) => (
          <li key={m.key}>
            <span className="muted">{new Date(m.at).toLocaleTimeString()}</span>{' '}
            <a href={`#/node/${m.fromId}`}>{names2.get(m.fromId) ?? m.fromId}</a>
            {m.isReaction ? ' reacted ' : ': '}
            {m.text}
          </li>
        ))}
        {list.length === 0 && <li className="muted">No messages on #{channel} yet.</li>}
      </ul>
    </div>
  )
}

export function Gateways() {
  const stats = useApi<Page<GatewayStatsRow>>('/api/gateways?limit=1000', 10_000)
  const nodes = useApi<Page<NodeRow>>('/api/nodes?gateways=true&limit=1000', 30_000)
  const names = useMemo(
    () => new Map((nodes.data?.items ?? []).map((n) => [n.id, n.longName ?? n.shortName ?? n.id])),
    [nodes.data],
  )
  const rows = [...(stats.data?.items ?? [])].sort((a, b) => b.packets - a.packets)
  const max = Math.max(1, ...rows.map((r) => r.packets))
  return (
    <div className="page">
      <p className="muted">
        The last 24 hours: what each gateway published, and how well it hears (median SNR/RSSI of
        radio copies).
      </p>
      <table className="grid" data-testid="gateway-comparison">
        <thead>
          <tr>
            <th>Gateway</th>
            <th>Packets</th>
            <th />
            <th>Nodes heard</th>
            <th>Heard direct</th>
            <th>Median SNR</th>
            <th>Median RSSI</th>
            <th>Last copy</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((g) => (
            <tr key={g.gatewayId} onClick={() => go(`#/node/${g.gatewayId}`)}>
              <td>
                {names.get(g.gatewayId) ?? g.gatewayId}{' '}
                <span className="mono muted">{g.gatewayId}</span>
              </td>
              <td>{g.packets}</td>
              <td className="bar-cell">
                <div className="bar" style={{ width: `${(g.packets / max) * 100}%` }} />
              </td>
              <td>{g.nodes}</td>
              <td>{g.direct}</td>
              <td>{g.medianSnr !== undefined ? `${g.medianSnr} dB` : '—'}</td>
              <td>{g.medianRssi !== undefined ? `${g.medianRssi} dBm` : '—'}</td>
              <td>{ago(g.lastHeard)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

export function StatusBar() {
  const conn = useConnection()
  const stats = useApi<{
    rate: { envelopesPerSec: number; packetsPerSec: number }
    store: { packets: number; receptions: number }
    sources: { id: string; state: string }[]
  }>('/api/stats', 2000)
  const s = stats.data
  return (
    <footer className="status" data-testid="status-bar">
      <span className={`conn conn-${conn.state}`} data-testid="connection-state">
        ● {conn.state === 'open' ? (conn.synced ? 'live' : 'syncing') : conn.state}
      </span>
      {conn.state !== 'open' && conn.error && <span className="muted">{conn.error.message}</span>}
      {s && (
        <>
          <span data-testid="ingest-rate">
            ingest {s.rate.envelopesPerSec}/s envelopes · {s.rate.packetsPerSec}/s packets
          </span>
          <span>
            stored {s.store.packets} packets · {s.store.receptions} receptions
          </span>
          <span>sources: {s.sources.map((x) => `${x.id} ${x.state}`).join(', ') || 'none'}</span>
        </>
      )}
      {stats.error && <span className="error">API: {stats.error.message}</span>}
    </footer>
  )
}
