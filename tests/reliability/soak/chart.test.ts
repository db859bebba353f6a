import { describe, expect, it } from 'vitest'
import { COLOURS, formatTick, niceRange, renderChart } from './chart.js'

describe('chart', () => {
  it('picks nice ranges and short tick labels', () => {
    expect(niceRange(3, 97)).toEqual({ min: 0, max: 100, step: 50 })
    const r = niceRange(170, 290)
    expect(r.min).toBeLessThanOrEqual(170)
    expect(r.max).toBeGreaterThanOrEqual(290)
    expect(
      [1, 2, 5].some((k) => Math.abs(r.step / 10 ** Math.floor(Math.log10(r.step)) - k) < 1e-9),
    ).toBe(true)
    expect(niceRange(5, 5).max).toBeGreaterThan(5)
    expect([
      formatTick(0),
      formatTick(1.25),
      formatTick(120),
      formatTick(34_000),
      formatTick(2.5e6),
    ]).toEqual(['0', '1.25', '120', '34K', '2.5M'])
  })

  it('draws each series in its colour, rising lines going up the image', () => {
    const times = Array.from({ length: 13 }, (_, i) => i * 10)
    const image = renderChart({
      title: 'TEST',
      times,
      width: 400,
      panelHeight: 120,
      panels: [
        {
          title: 'UP',
          series: [{ label: 'A', values: times.map((t) => t), colour: COLOURS.blue }],
        },
        {
          title: 'FLAT',
          series: [{ label: 'B', values: times.map(() => 7), colour: COLOURS.red }],
        },
      ],
    })
    expect(image.pixels.length).toBe(image.width * image.height)
    expect(image.width).toBe(400)
    const where = (colour: number) => {
      const pts: [number, number][] = []
      image.pixels.forEach((p, i) => {
        if (p === colour) pts.push([i % image.width, Math.floor(i / image.width)])
      })
      return pts
    }
    const blue = where(COLOURS.blue)
    expect(blue.length).toBeGreaterThan(200)
    // The rising series: the leftmost points are lower (larger y) than the rightmost.
    const left = blue.filter(([x]) => x < 100).map(([, y]) => y)
    const right = blue.filter(([x]) => x > 300).map(([, y]) => y)
    expect(Math.min(...left)).toBeGreaterThan(Math.max(...right))
    // The flat series is one band of rows, in the second panel.
    const redRows = new Set(where(COLOURS.red).map(([, y]) => y))
    expect(Math.min(...redRows)).toBeGreaterThan(Math.max(...blue.map(([, y]) => y)))
    expect(Math.max(...redRows) - Math.min(...redRows)).toBeLessThanOrEqual(3)
  })
})
