import { type PointerEvent, useEffect, useMemo, useRef, useState, type WheelEvent } from 'react'

/** A node to draw: its position and the radius of its precision circle. */
export interface MapNode {
  num: number
  id: string
  label: string
  latitude: number
  longitude: number
  /** Precision radius in metres (absent: exact). */
  radiusM?: number
  isGateway: boolean
  stale: boolean
}

export interface MapLine {
  key: string
  points: [number, number][]
  kind: 'link' | 'route' | 'trail'
  title?: string
}

export interface MeshMapProps {
  nodes: readonly MapNode[]
  lines?: readonly MapLine[]
  tileUrl?: string | null
  attribution?: string | null
  height?: number | string
  /** Nodes link to `${linkPrefix}${id}`. */
  linkPrefix?: string
  /** Highlighted node id. */
  focus?: string
  testId?: string
}

const TILE = 256

/** Web Mercator: degrees → world units in [0, 1]. */
function project(lat: number, lon: number): [number, number] {
  const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180)
  return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)]
}

interface View {
  x: number
  y: number
  zoom: number
}

function fitView(points: [number, number][], w: number, h: number, minSpan = 0): View {
  if (points.length === 0) return { x: 0.5, y: 0.5, zoom: 1 }
  let [minX, minY, maxX, maxY] = [1, 1, 0, 0]
  for (const [x, y] of points) {
    minX = Math.min(minX, x)
    maxX = Math.max(maxX, x)
    minY = Math.min(minY, y)
    maxY = Math.max(maxY, y)
  }
  const span = Math.max(maxX - minX, (maxY - minY) * (w / h), minSpan * Math.max(1, w / h), 1e-6)
  const zoom = Math.min(16, Math.log2((w * 0.8) / (span * TILE)))
  return { x: (minX + maxX) / 2, y: (minY + maxY) / 2, zoom }
}

/**
 * A map on a plain SVG background (Web Mercator), with optional raster tiles behind it: nodes as
 * precision circles, links, traceroutes and position trails. Drag to pan, wheel to zoom.
 */
export function MeshMap({
  nodes,
  lines = [],
  tileUrl,
  attribution,
  height = '100%',
  linkPrefix = '#/node/',
  focus,
  testId = 'map',
}: MeshMapProps) {
  const box = useRef<HTMLDivElement>(null)
  const [size, setSize] = useState({ w: 800, h: 600 })
  const [view, setView] = useState<View | undefined>()
  const touched = useRef(false)
  const drag = useRef<{ x: number; y: number; view: View } | undefined>(undefined)

  useEffect(() => {
    const el = box.current
    if (!el) return
    const ro = new ResizeObserver(() =>
      setSize({ w: el.clientWidth || 800, h: el.clientHeight || 600 }),
    )
    ro.observe(el)
    return () => ro.disconnect()
  }, [])

  const projected = useMemo(
    () => nodes.map((n) => ({ n, p: project(n.latitude, n.longitude) })),
    [nodes],
  )
  const trail = useMemo(
    () =>
      lines
        .filter((l) => l.kind === 'trail')
        .flatMap((l) => l.points.map(([la, lo]) => project(la, lo))),
    [lines],
  )

  // Fit the view to what there is until the user moves the map.
  useEffect(() => {
    if (touched.current) return
    const pts = trail.length > 0 ? trail : projected.map((x) => x.p)
    // Keep the largest precision circle in view (a world unit is 40,075 km at the equator).
    const radius = Math.max(
      0,
      ...projected.map(
        ({ n }) => (n.radiusM ?? 0) / (40_075_016 * Math.cos((n.latitude * Math.PI) / 180)),
      ),
    )
    if (pts.length > 0) setView(fitView(pts, size.w, size.h, radius * 3))
  }, [projected, trail, size.w, size.h])

  const v = view ?? { x: 0.5, y: 0.5, zoom: 1 }
  const scale = TILE * 2 ** v.zoom
  const toScreen = ([x, y]: [number, number]): [number, number] => [
    (x - v.x) * scale + size.w / 2,
    (y - v.y) * scale + size.h / 2,
  ]

  const onWheel = (e: WheelEvent) => {
    touched.current = true
    const rect = (e.currentTarget as HTMLElement).getBoundingClientRect()
    const mx = e.clientX - rect.left - size.w / 2
    const my = e.clientY - rect.top - size.h / 2
    const dz = e.deltaY < 0 ? 0.5 : -0.5
    const zoom = Math.max(1, Math.min(19, v.zoom + dz))
    const k = 1 / scale - 1 / (TILE * 2 ** zoom)
    setView({ x: v.x + mx * k, y: v.y + my * k, zoom })
  }
  const onDown = (e: PointerEvent) => {
    if ((e.target as Element).closest('[data-node]')) return
    touched.current = true
    drag.current = { x: e.clientX, y: e.clientY, view: v }
    ;(e.currentTarget as Element).setPointerCapture(e.pointerId)
  }
  const onMove = (e: PointerEvent) => {
    const d = drag.current
    if (!d) return
    const s = TILE * 2 ** d.view.zoom
    setView({ ...d.view, x: d.view.x - (e.clientX - d.x) / s, y: d.view.y - (e.clientY - d.y) / s })
  }

  const tiles = useMemo(() => {
    if (!tileUrl) return []
    const z = Math.max(0, Math.min(19, Math.round(v.zoom)))
    const n = 2 ** z
    const ts = (TILE * 2 ** v.zoom) / n
    const x0 = Math.floor((v.x - size.w / 2 / scale) * n)
    const x1 = Math.floor((v.x + size.w / 2 / scale) * n)
    const y0 = Math.max(0, Math.floor((v.y - size.h / 2 / scale) * n))
    const y1 = Math.min(n - 1, Math.floor((v.y + size.h / 2 / scale) * n))
    const out: { key: string; href: string; x: number; y: number; s: number }[] = []
    for (let tx = x0; tx <= x1 && out.length < 200; tx++) {
      for (let ty = y0; ty <= y1; ty++) {
        const wx = ((tx % n) + n) % n
        const sx = (tx / n - v.x) * scale + size.w / 2
        const sy = (ty / n - v.y) * scale + size.h / 2
        out.push({
          key: `${z}/${tx}/${ty}`,
          href: tileUrl
            .replace('{z}', String(z))
            .replace('{x}', String(wx))
            .replace('{y}', String(ty)),
          x: sx,
          y: sy,
          s: ts,
        })
      }
    }
    return out
  }, [tileUrl, v, size, scale])

  const metresPerPixel = (lat: number) => (40_075_016 * Math.cos((lat * Math.PI) / 180)) / scale

  return (
    <div className="map" ref={box} style={{ height }} data-testid={testId}>
      <svg
        width={size.w}
        height={size.h}
        onWheel={onWheel}
        onPointerDown={onDown}
        onPointerMove={onMove}
        onPointerUp={() => (drag.current = undefined)}
        role="img"
        aria-label="mesh map"
      >
        <rect width={size.w} height={size.h} className="map-bg" />
        {tiles.map((t) => (
          <image
            key={t.key}
            href={t.href}
            x={t.x}
            y={t.y}
            width={t.s + 0.5}
            height={t.s + 0.5}
            onError={(e) => ((e.target as SVGImageElement).style.display = 'none')}
          />
        ))}
        {lines.map((l) => (
          <polyline
            key={l.key}
            className={`line-${l.kind}`}
            points={l.points.map(([la, lo]) => toScreen(project(la, lo)).join(',')).join(' ')}
          >
            {l.title && <title>{l.title}</title>}
          </polyline>
        ))}
        {projected.map(({ n, p }) => {
          const [x, y] = toScreen(p)
          if (x < -200 || y < -200 || x > size.w + 200 || y > size.h + 200) return null
          const r = n.radiusM ? n.radiusM / metresPerPixel(n.latitude) : 0
          const cls = `node ${n.isGateway ? 'gw' : ''} ${n.stale ? 'stale' : ''} ${focus === n.id ? 'focus' : ''}`
          return (
            <a
              key={n.num}
              href={`${linkPrefix}${n.id}`}
              className={cls}
              data-node={n.id}
              data-testid="map-node"
            >
              <title>{`${n.label} (${n.id})${n.radiusM ? ` ±${Math.round(n.radiusM)} m` : ''}`}</title>
              {r > 3 && <circle cx={x} cy={y} r={Math.min(r, 4000)} className="precision" />}
              <circle cx={x} cy={y} r={n.isGateway ? 6 : 4.5} className="dot" />
              {v.zoom > 11 && (
                <text x={x + 8} y={y + 4} className="label">
                  {n.label}
                </text>
              )}
            </a>
          )
        })}
      </svg>
      <div className="map-attr">
        {tileUrl ? (attribution ?? 'map tiles') : 'plain background (no tile URL configured)'} ·{' '}
        {nodes.length} nodes
      </div>
    </div>
  )
}
