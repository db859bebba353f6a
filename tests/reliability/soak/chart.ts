/**
 * A small line-chart rasteriser for the soak report: one panel per metric, stacked, sharing the
 * time axis, drawn into an indexed-colour image for {@link encodeIndexedPng}.
 */
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyph, textWidth } from './font.js'
import type { IndexedImage, Rgb } from './png.js'

/** Palette indices of the chart's colours. */
export const COLOURS = {
  background: 0,
  text: 1,
  grid: 2,
  axis: 3,
  band: 4,
  blue: 5,
  red: 6,
  green: 7,
  orange: 8,
  purple: 9,
} as const

const PALETTE: readonly Rgb[] = [
  [255, 255, 255],
  [32, 32, 32],
  [228, 228, 228],
  [140, 140, 140],
  [244, 246, 252],
  [31, 119, 180],
  [214, 39, 40],
  [44, 160, 44],
  [255, 127, 14],
  [148, 103, 189],
]

/** One line of a panel. */
export interface ChartSeries {
  label: string
  /** One value per sample; `null` or a non-finite value leaves a gap. */
  values: readonly (number | null)[]
  /** A palette index from {@link COLOURS}. */
  colour: number
}

/** One panel: a metric (or a few metrics with the same unit) over time. */
export interface ChartPanel {
  title: string
  series: readonly ChartSeries[]
  /** Lower end of the y axis; by default the smallest value (0 when all values are positive and `zeroBased`). */
  zeroBased?: boolean
}

/** What to draw. */
export interface ChartSpec {
  title: string
  /** Sample times in seconds since the start, ascending. */
  times: readonly number[]
  panels: readonly ChartPanel[]
  /** Shades the time range the verdict looks at (e.g. the second half). */
  highlightFromS?: number
  /** Image width in pixels. @default 960 */
  width?: number
  /** Height of one panel in pixels. @default 130 */
  panelHeight?: number
}

/** A drawing surface of palette indices. */
export class Canvas {
  /** One palette index per pixel, row by row; starts as {@link COLOURS.background}. */
  readonly pixels: Uint8Array
  /** A blank canvas of `width × height` pixels. */
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.pixels = new Uint8Array(width * height)
  }

  /** Paints one pixel (coordinates are rounded; outside the canvas nothing happens). */
  set(x: number, y: number, colour: number): void {
    const xi = Math.round(x)
    const yi = Math.round(y)
    if (xi < 0 || yi < 0 || xi >= this.width || yi >= this.height) return
    this.pixels[yi * this.width + xi] = colour
  }

  /** Paints a `w × h` rectangle with its top-left corner at (x, y). */
  fillRect(x: number, y: number, w: number, h: number, colour: number): void {
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) this.set(x + i, y + j, colour)
  }

  /** A line from (x0, y0) to (x1, y1), `thickness` pixels wide (Bresenham, widened vertically). */
  line(x0: number, y0: number, x1: number, y1: number, colour: number, thickness = 1): void {
    let ax = Math.round(x0)
    let ay = Math.round(y0)
    const bx = Math.round(x1)
    const by = Math.round(y1)
    const dx = Math.abs(bx - ax)
    const dy = -Math.abs(by - ay)
    const sx = ax < bx ? 1 : -1
    const sy = ay < by ? 1 : -1
    let err = dx + dy
    for (;;) {
      for (let t = 0; t < thickness; t++) {
        if (dx >= -dy) this.set(ax, ay + t, colour)
        else this.set(ax + t, ay, colour)
      }
      if (ax === bx && ay === by) break
      const e2 = 2 * err
      if (e2 >= dy) {
        err += dy
        ax += sx
      }
      if (e2 <= dx) {
        err += dx
        ay += sy
      }
    }
  }

  /** Text with its top-left corner at (x, y). */
  text(x: number, y: number, text: string, colour: number, scale = 1): void {
    let cx = Math.round(x)
    for (const ch of text) {
      const rows = glyph(ch)
      for (let r = 0; r < GLYPH_HEIGHT; r++) {
        for (let c = 0; c < GLYPH_WIDTH; c++) {
          if (rows[r]?.[c]) this.fillRect(cx + c * scale, y + r * scale, scale, scale, colour)
        }
      }
      cx += (GLYPH_WIDTH + 1) * scale
    }
  }
}

/** Formats an axis value with at most four significant characters (1.25, 120, 3.4K, 1.2M). */
export function formatTick(v: number): string {
  const a = Math.abs(v)
  if (a === 0) return '0'
  if (a >= 1e6) return `${trim(v / 1e6)}M`
  if (a >= 1e4) return `${trim(v / 1e3)}K`
  return trim(v)
}

function trim(v: number): string {
  const a = Math.abs(v)
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3
  return Number(v.toFixed(digits)).toString()
}

/** A "nice" axis range and step (1, 2 or 5 × 10^k) covering [lo, hi] in about four steps. */
export function niceRange(lo: number, hi: number): { min: number; max: number; step: number } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { min: 0, max: 1, step: 0.25 }
  if (hi - lo < 1e-12) {
    const pad = Math.abs(hi) > 0 ? Math.abs(hi) * 0.1 : 1
    lo -= pad
    hi += pad
  }
  const raw = (hi - lo) / 4
  const mag = 10 ** Math.floor(Math.log10(raw))
  const norm = raw / mag
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag
  return { min: Math.floor(lo / step) * step, max: Math.ceil(hi / step) * step, step }
}

const TOP = 30
const LEFT = 56
const RIGHT = 14
const PANEL_GAP = 8

/** Draws the chart and returns the image (encode it with {@link encodeIndexedPng}). */
export function renderChart(spec: ChartSpec): IndexedImage {
  const width = spec.width ?? 960
  const panelHeight = spec.panelHeight ?? 130
  const height = TOP + spec.panels.length * (panelHeight + PANEL_GAP) + 4
  const c = new Canvas(width, height)
  c.text(LEFT, 8, spec.title, COLOURS.text, 2)
  const axis = 'TIME AXIS IN MINUTES'
  c.text(width - RIGHT - textWidth(axis), 12, axis, COLOURS.axis)

  const times = spec.times
  const t0 = times[0] ?? 0
  const t1 = Math.max(times[times.length - 1] ?? 1, t0 + 1)
  const plotW = width - LEFT - RIGHT
  const xOf = (t: number) => LEFT + ((t - t0) / (t1 - t0)) * plotW
  const xStepS = niceRange(0, (t1 - t0) / 60).step * 60 || 60

  spec.panels.forEach((panel, pi) => {
    const top = TOP + pi * (panelHeight + PANEL_GAP)
    const plotTop = top + 12
    const plotBottom = top + panelHeight - 12
    const plotH = plotBottom - plotTop

    // Title and legend.
    c.text(LEFT, top, panel.title, COLOURS.text)
    let lx = LEFT + textWidth(panel.title) + 14
    if (panel.series.length > 1) {
      for (const s of panel.series) {
        c.fillRect(lx, top + 2, 10, 3, s.colour)
        c.text(lx + 13, top, s.label, s.colour)
        lx += 13 + textWidth(s.label) + 12
      }
    }

    // Range over every series of the panel.
    let lo = Number.POSITIVE_INFINITY
    let hi = Number.NEGATIVE_INFINITY
    for (const s of panel.series) {
      for (const v of s.values) {
        if (v === null || !Number.isFinite(v)) continue
        lo = Math.min(lo, v)
        hi = Math.max(hi, v)
      }
    }
    if (lo === Number.POSITIVE_INFINITY) {
      lo = 0
      hi = 1
    }
    if (panel.zeroBased && lo > 0) lo = 0
    const r = niceRange(lo, hi)
    const yOf = (v: number) => plotBottom - ((v - r.min) / (r.max - r.min)) * plotH

    // Highlighted window, grid, axes and labels.
    if (spec.highlightFromS !== undefined && spec.highlightFromS < t1) {
      const hx = Math.max(LEFT, xOf(spec.highlightFromS))
      c.fillRect(hx, plotTop, LEFT + plotW - hx, plotH, COLOURS.band)
    }
    for (let v = r.min; v <= r.max + r.step / 2; v += r.step) {
      const y = yOf(v)
      c.line(LEFT, y, LEFT + plotW, y, COLOURS.grid)
      const label = formatTick(v)
      c.text(LEFT - 6 - textWidth(label), Math.round(y) - 3, label, COLOURS.text)
    }
    for (let t = 0; t0 + t <= t1 + 1e-9; t += xStepS) {
      const x = xOf(t0 + t)
      c.line(x, plotTop, x, plotBottom, COLOURS.grid)
      const label = `${formatTick(t / 60)}`
      c.text(x - textWidth(label) / 2, plotBottom + 3, label, COLOURS.axis)
    }
    c.line(LEFT, plotTop, LEFT, plotBottom, COLOURS.axis)
    c.line(LEFT, plotBottom, LEFT + plotW, plotBottom, COLOURS.axis)

    // The lines, with a dot per sample.
    for (const s of panel.series) {
      let prev: [number, number] | undefined
      s.values.forEach((v, i) => {
        const t = times[i]
        if (v === null || !Number.isFinite(v) || t === undefined) {
          prev = undefined
          return
        }
        const p: [number, number] = [xOf(t), yOf(v)]
        if (prev) c.line(prev[0], prev[1], p[0], p[1], s.colour, 2)
        c.fillRect(p[0] - 1, p[1] - 1, 3, 3, s.colour)
        prev = p
      })
    }
  })
  return { width, height, pixels: c.pixels, palette: PALETTE }
}
