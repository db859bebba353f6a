/**
 * A minimal PNG encoder for indexed-colour images (colour type 3, 8 bits per pixel), written for
 * the soak chart: a palette of a few colours compresses to a few tens of kilobytes with zlib.
 *
 * Layout of the file (PNG specification, ISO/IEC 15948): the 8-byte signature, then chunks of
 * `length (4 bytes, big-endian) · type (4 ASCII bytes) · data · CRC-32 of type + data`:
 * `IHDR` (size and format), `PLTE` (the palette), `IDAT` (the zlib stream of the scanlines, each
 * prefixed by its filter byte) and `IEND`.
 */
import { deflateSync } from 'node:zlib'

/** The eight bytes every PNG file starts with. */
export const PNG_SIGNATURE: readonly number[] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]

/** An RGB colour, each channel 0–255. */
export type Rgb = readonly [number, number, number]

/** An indexed image: one palette index per pixel, row by row. */
export interface IndexedImage {
  width: number
  height: number
  /** `width × height` palette indices. */
  pixels: Uint8Array
  /** At most 256 colours. */
  palette: readonly Rgb[]
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/**
 * CRC-32 (the polynomial of PNG and zlib, reflected, initial and final XOR 0xffffffff).
 * @example crc32(new TextEncoder().encode('IEND')) // 0xae426082
 */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff
  for (let i = start; i < end; i++) {
    c = (CRC_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8)
  }
  return (c ^ 0xffffffff) >>> 0
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, data.length)
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i)
  out.set(data, 8)
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length))
  return out
}

/**
 * Encodes an indexed image as a PNG file. Scanlines use filter 0 (none): with a small palette and
 * large flat areas, zlib alone does well.
 * @throws RangeError when the size, the palette or an index is out of range.
 * @example
 * const png = encodeIndexedPng({ width: 2, height: 1, pixels: Uint8Array.of(0, 1), palette: [[0, 0, 0], [255, 255, 255]] })
 */
export function encodeIndexedPng(image: IndexedImage): Uint8Array {
  const { width, height, pixels, palette } = image
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`png: width and height must be positive integers, got ${width}×${height}`)
  }
  if (width > 2 ** 31 - 1 || height > 2 ** 31 - 1) throw new RangeError('png: image too large')
  if (palette.length < 1 || palette.length > 256) {
    throw new RangeError(`png: the palette must have 1–256 colours, got ${palette.length}`)
  }
  if (pixels.length !== width * height) {
    throw new RangeError(`png: expected ${width * height} pixels, got ${pixels.length}`)
  }
  const ihdr = new Uint8Array(13)
  const hv = new DataView(ihdr.buffer)
  hv.setUint32(0, width)
  hv.setUint32(4, height)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 3 // colour type: indexed
  ihdr[10] = 0 // compression: deflate
  ihdr[11] = 0 // filter method 0
  ihdr[12] = 0 // no interlace

  const plte = new Uint8Array(palette.length * 3)
  palette.forEach((c, i) => {
    for (let k = 0; k < 3; k++) {
      const v = c[k] as number
      if (!Number.isInteger(v) || v < 0 || v > 255) {
        throw new RangeError(`png: palette colour ${i} has a channel out of 0–255`)
      }
      plte[i * 3 + k] = v
    }
  })

  const raw = new Uint8Array(height * (width + 1))
  for (let y = 0; y < height; y++) {
    const row = y * (width + 1)
    raw[row] = 0
    for (let x = 0; x < width; x++) {
      const p = pixels[y * width + x] as number
      if (p >= palette.length) {
        throw new RangeError(`png: pixel (${x}, ${y}) uses colour ${p} beyond the palette`)
      }
      raw[row + 1 + x] = p
    }
  }
  const idat = new Uint8Array(deflateSync(raw, { level: 9 }))

  const parts = [
    Uint8Array.from(PNG_SIGNATURE),
    chunk('IHDR', ihdr),
    chunk('PLTE', plte),
    chunk('IDAT', idat),
    chunk('IEND', new Uint8Array(0)),
  ]
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}
