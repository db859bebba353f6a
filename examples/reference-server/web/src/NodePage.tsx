import type { NodeDetail, PositionRow, TelemetryRow } from '@meshtap/protocol'
import { useNode, usePositions, useTelemetry } from '@meshtap/react-hooks'
import { useMemo, useState } from 'react'
import { ago, type Page, useApi } from './api.js'
import { MeshMap } from './MeshMap.js'
import type { UiConfig } from './pages.js'

interface GatewayHearing {
  gatewayId: string
  count: number
  lastHeard: number
  lastSnr?: number
  lastRssi?: number
  medianSnr?: number
  medianRssi?: number
  direct: number
  minHops?: number
}

interface Diagnosis {
  onMap: boolean
  findings: { code: string; severity: 'info' | 'warning' | 'error'; message: string }[]
  sinceStart?: { envelopes: number; packets: number; copies: number }
}

const SERIES = [
  { key: 'batteryLevel', label: 'Battery %', color: '#2e7d32', variant: 'device' },
  { key: 'voltage', label: 'Voltage V', color: '#1565c0', variant: 'device' },
  { key: 'channelUtilization', label: 'Channel util %', color: '#ef6c00', variant: 'device' },
  { key: 'airUtilTx', label: 'Air util TX %', color: '#6a1b9a', variant: 'device' },
  { key: 'temperature', label: 'Temperature °C', color: '#c62828', variant: 'environment' },
  { key: 'relativeHumidity', label: 'Humidity %', color: '#00838f', variant: 'environment' },
] as const

/** A hand-made SVG line chart of one metric over time. */
export function TelemetryChart({
  points,
  color,
  label,
}: {
  points: { at: number; v: number }[]
  color: string
  label: string
}) {
  const w = 640
  const h = 180
  const pad = 36
  if (points.length === 0) return <p className="muted">No {label} samples yet.</p>
  const t0 = Math.min(...points.map((p) => p.at))
  const t1 = Math.max(...points.map((p) => p.at), t0 + 1)
  let v0 = Math.min(...points.map((p) => p.v))
  let v1 = Math.max(...points.map((p) => p.v))
  if (v1 - v0 < 1e-9) {
    v0 -= 1
    v1 += 1
  }
  const x = (t: number) => pad + ((t - t0) / (t1 - t0)) * (w - pad - 8)
  const y = (v: number) => h - 20 - ((v - v0) / (v1 - v0)) * (h - 30)
  const path = points
    .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.at).toFixed(1)},${y(p.v).toFixed(1)}`)
    .join(' ')
  const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2))
  return (
    <svg
      viewBox={`0 0 ${w} ${h}`}
      className="chart"
      data-testid="telemetry-chart"
      role="img"
      aria-label={`${label} over time`}
    >
      <line x1={pad} y1={h - 20} x2={w - 8} y2={h - 20} className="axis" />
      <line x1={pad} y1={10} x2={pad} y2={h - 20} className="axis" />
      <text x={pad - 4} y={y(v1) + 4} className="tick" textAnchor="end">
        {fmt(v1)}
      </text>
      <text x={pad - 4} y={y(v0) + 4} className="tick" textAnchor="end">
        {fmt(v0)}
      </text>
      <text x={pad} y={h - 4} className="tick">
        {new Date(t0).toLocaleTimeString()}
      </text>
      <text x={w - 8} y={h - 4} className="tick" textAnchor="end">
        {new Date(t1).toLocaleTimeString()}
      </text>
      <path d={path} fill="none" stroke={color} strokeWidth={2} data-testid="telemetry-line" />
      {points.length < 60 &&
        points.map((p) => <circle key={p.at} cx={x(p.at)} cy={y(p.v)} r={2.5} fill={color} />)}
    </svg>
  )
}

export function NodePage({ id, config }: { id: string; config: UiConfig }) {
  const live = useNode(id)
  const detail = useApi<NodeDetail & { gateways: GatewayHearing[] }>(`/api/nodes/${id}`, 5000)
  const diagnosis = useApi<Diagnosis>(`/api/nodes/${id}/diagnostics`, 10_000)
  const [series, setSeries] = useState<(typeof SERIES)[number]['key']>('batteryLevel')
  const s = SERIES.find((x) => x.key === series) ?? SERIES[0]
  const storedTel = useApi<Page<TelemetryRow>>(
    `/api/telemetry?node=${id}&variant=${s.variant}&limit=1000`,
    15_000,
  )
  const liveTel = useTelemetry(id, s.variant)
  const storedPos = useApi<Page<PositionRow>>(`/api/positions?node=${id}&limit=1000`, 15_000)
  const livePos = usePositions(id)

  const points = useMemo(() => {
    const by = new Map<string, { at: number; v: number }>()
    for (const r of [...(storedTel.data?.items ?? []), ...liveTel]) {
      const v = (r.metrics as Record<string, unknown>)[series]
      if (typeof v === 'number') by.set(r.key, { at: r.at, v })
    }
    return [...by.values()].sort((a, b) => a.at - b.at)
  }, [storedTel.data, liveTel, series])

  const trail = useMemo(() => {
    const by = new Map<string, { at: number; p: [number, number]; radiusM?: number }>()
    for (const r of [...(storedPos.data?.items ?? []), ...livePos])
      by.set(r.key, {
        at: r.at,
        p: [r.latitude, r.longitude],
        ...(r.radiusM !== undefined ? { radiusM: r.radiusM } : {}),
      })
    return [...by.values()].sort((a, b) => a.at - b.at)
  }, [storedPos.data, livePos])

  const d = detail.data
  const name = d?.longName ?? live?.user?.longName ?? id
  const last = trail.at(-1)
  const gateways = useMemo(() => {
    const rows = [...(d?.gateways ?? [])]
    // Live hearings since the last refresh.
    for (const [gw, h] of Object.entries(live?.gateways ?? {})) {
      const row = rows.find((r) => r.gatewayId === gw)
      if (row && h.lastHeard > row.lastHeard)
        Object.assign(row, { lastHeard: h.lastHeard, lastSnr: h.rxSnr, lastRssi: h.rxRssi })
      else if (!row)
        rows.push({
          gatewayId: gw,
          count: h.count,
          lastHeard: h.lastHeard,
          lastSnr: h.rxSnr,
          lastRssi: h.rxRssi,
          direct: 0,
        })
    }
    return rows.sort((a, b) => b.lastHeard - a.lastHeard)
  }, [d, live])

  if (detail.error?.status === 404 && !live) {
    return (
      <div className="page">
        <h2>{id}</h2>
        <p>This node is not known yet.</p>
        <Findings diagnosis={diagnosis.data} />
      </div>
    )
  }
  const dm = d?.deviceMetrics ?? live?.telemetry.device?.metrics
  return (
    <div className="page node-page" data-testid="node-page">
      <h2>
        {name} <span className="mono muted">{id}</span>{' '}
        {d?.isGateway && <span className="tag">gateway</span>}
      </h2>
      <p className="muted">
        {[
          d?.shortName,
          d?.hwModel,
          d?.role,
          d?.firmwareVersion,
          `last heard ${ago(d?.lastHeard ?? live?.lastHeard)}`,
          `${d?.packets ?? live?.packets ?? 0} packets`,
          dm?.batteryLevel !== undefined ? `battery ${dm.batteryLevel}%` : undefined,
        ]
          .filter(Boolean)
          .join(' · ')}
      </p>
      <div className="cols">
        <section>
          <h3>Telemetry</h3>
          <div className="tabs">
            {SERIES.map((x) => (
              <button
                type="button"
                key={x.key}
                className={x.key === series ? 'active' : ''}
                onClick={() => setSeries(x.key)}
              >
                {x.label}
              </button>
            ))}
          </div>
          <TelemetryChart points={points} color={s.color} label={s.label} />
          <h3>Positions ({trail.length})</h3>
          {trail.length > 0 ? (
            <MeshMap
              testId="trail-map"
              height={260}
              tileUrl={config.tileUrl}
              attribution={config.tileAttribution}
              nodes={
                last
                  ? [
                      {
                        num: 0,
                        id,
                        label: d?.shortName ?? id,
                        latitude: last.p[0],
                        longitude: last.p[1],
                        ...(last.radiusM !== undefined ? { radiusM: last.radiusM } : {}),
                        isGateway: false,
                        stale: false,
                      },
                    ]
                  : []
              }
              lines={[{ key: 'trail', kind: 'trail', points: trail.map((t) => t.p) }]}
            />
          ) : (
            <p className="muted">No positions received.</p>
          )}
        </section>
        <section>
          <h3>Heard by</h3>
          <table className="grid" data-testid="node-gateways">
            <thead>
              <tr>
                <th>Gateway</th>
                <th>Copies</th>
                <th>Last SNR</th>
                <th>Last RSSI</th>
                <th>Median SNR</th>
                <th>Hops</th>
                <th>Last</th>
              </tr>
            </thead>
            <tbody>
              {gateways.map((g) => (
                <tr key={g.gatewayId} data-testid="node-gateway-row">
                  <td className="mono">
                    <a href={`#/node/${g.gatewayId}`}>{g.gatewayId}</a>
                  </td>
                  <td>{g.count}</td>
                  <td>{g.lastSnr !== undefined ? `${g.lastSnr} dB` : '—'}</td>
                  <td>{g.lastRssi !== undefined ? `${g.lastRssi} dBm` : '—'}</td>
                  <td>{g.medianSnr !== undefined ? `${g.medianSnr} dB` : '—'}</td>
                  <td>{g.minHops ?? '—'}</td>
                  <td>{ago(g.lastHeard)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {gateways.length === 0 && <p className="muted">No gateway copies stored.</p>}
          <h3>Diagnostics</h3>
          <Findings diagnosis={diagnosis.data} />
        </section>
      </div>
    </div>
  )
}

function Findings({ diagnosis }: { diagnosis: Diagnosis | undefined }) {
  if (!diagnosis) return <p className="muted">Loading…</p>
  return (
    <div data-testid="diagnostics">
      <p>
        <strong>{diagnosis.onMap ? 'On the map.' : 'Not on the map.'}</strong>{' '}
        {diagnosis.sinceStart && (
          <span className="muted">
            Since start: {diagnosis.sinceStart.envelopes} envelopes, {diagnosis.sinceStart.packets}{' '}
            packets, {diagnosis.sinceStart.copies} extra copies.
          </span>
        )}
      </p>
      <ul className="findings">
        {diagnosis.findings.map((f) => (
          <li key={f.code} className={`finding-${f.severity}`}>
            {f.message}
          </li>
        ))}
      </ul>
    </div>
  )
}
