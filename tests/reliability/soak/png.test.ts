import { describe, expect, it } from 'vitest'
import { crc32, encodeIndexedPng } from './png.js'
import { inspectPng, PngFormatError } from './png-check.js'

describe('png', () => {
  it('computes the standard CRC-32 check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926)
    expect(crc32(new Uint8Array(0))).toBe(0)
  })

  it('encodes an indexed image that an independent reader takes back to the same pixels', () => {
    const width = 37
    const height = 11
    const pixels = new Uint8Array(width * height).map((_, i) => (i * 7 + (i % width)) % 3)
    const png = encodeIndexedPng({
      width,
      height,
      pixels,
      palette: [
        [255, 255, 255],
        [10, 20, 30],
        [200, 100, 0],
      ],
    })
    const info = inspectPng(png)
    expect(info.chunks).toEqual(['IHDR', 'PLTE', 'IDAT', 'IEND'])
    expect([info.width, info.height, info.bitDepth, info.colourType]).toEqual([width, height, 8, 3])
    expect([...info.palette]).toEqual([255, 255, 255, 10, 20, 30, 200, 100, 0])
    for (let y = 0; y < height; y++) {
      const row = info.raw.subarray(y * (width + 1) + 1, (y + 1) * (width + 1))
      expect([...row]).toEqual([...pixels.subarray(y * width, (y + 1) * width)])
    }
  })

  it('the reader catches a flipped bit, a cut file and a foreign signature', () => {
    const png = encodeIndexedPng({
      width: 4,
      height: 4,
      pixels: new Uint8Array(16),
      palette: [[1, 2, 3]],
    })
    const flipped = png.slice()
    flipped[20] = (flipped[20] as number) ^ 1 // inside IHDR
    expect(() => inspectPng(flipped)).toThrow(/bad CRC in IHDR/)
    expect(() => inspectPng(png.subarray(0, png.length - 6))).toThrow(PngFormatError)
    const foreign = png.slice()
    foreign[1] = 0x51
    expect(() => inspectPng(foreign)).toThrow(/signature/)
  })

  it('refuses images it cannot encode, with a RangeError', () => {
    const palette: [number, number, number][] = [[0, 0, 0]]
    expect(() =>
      encodeIndexedPng({ width: 0, height: 1, pixels: new Uint8Array(0), palette }),
    ).toThrow(RangeError)
    expect(() =>
      encodeIndexedPng({ width: 2, height: 1, pixels: new Uint8Array(1), palette }),
    ).toThrow(/expected 2 pixels/)
    expect(() =>
      encodeIndexedPng({ width: 1, height: 1, pixels: Uint8Array.of(1), palette }),
    ).toThrow(/beyond the palette/)
    expect(() =>
      encodeIndexedPng({ width: 1, height: 1, pixels: Uint8Array.of(0), palette: [[0, 0, 256]] }),
    ).toThrow(/out of 0–255/)
  })
})
