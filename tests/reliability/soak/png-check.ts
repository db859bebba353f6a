/**
 * An independent reader of the PNG files the soak writes, for its tests: it checks the signature,
 * the chunk layout and every CRC with zlib's own CRC-32 (not the encoder's), and inflates the
 * image data to check its size. Enough to tell a valid file from a broken one; not a decoder.
 */
import { inflateSync, crc32 as zlibCrc32 } from 'node:zlib'
import { PNG_SIGNATURE } from './png.js'

/** What {@link inspectPng} read. */
export interface PngInfo {
  width: number
  height: number
  bitDepth: number
  colourType: number
  /** Chunk types in file order. */
  chunks: string[]
  /** The inflated scanlines (one filter byte, then the row). */
  raw: Uint8Array
  /** The PLTE chunk's bytes (empty when there is none). */
  palette: Uint8Array
}

/** The file is not a valid PNG; the message says why. */
export class PngFormatError extends Error {
  override readonly name = 'PngFormatError'
}

/**
 * Checks a PNG file and returns its header, chunk list and image data.
 * @throws PngFormatError on a bad signature, chunk, CRC, header or data size.
 */
export function inspectPng(png: Uint8Array): PngInfo {
  if (png.length < 8 || PNG_SIGNATURE.some((b, i) => png[i] !== b)) {
    throw new PngFormatError('not a PNG signature')
  }
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength)
  const chunks: string[] = []
  const idat: Uint8Array[] = []
  let ihdr: Uint8Array | undefined
  let palette: Uint8Array = new Uint8Array(0)
  let o = 8
  while (o < png.length) {
    if (o + 12 > png.length) throw new PngFormatError(`truncated chunk at byte ${o}`)
    const len = view.getUint32(o)
    if (o + 12 + len > png.length) throw new PngFormatError(`chunk at byte ${o} overruns the file`)
    const type = String.fromCharCode(...png.subarray(o + 4, o + 8))
    const data = png.subarray(o + 8, o + 8 + len)
    if (view.getUint32(o + 8 + len) !== zlibCrc32(png.subarray(o + 4, o + 8 + len))) {
      throw new PngFormatError(`bad CRC in ${type} at byte ${o}`)
    }
    chunks.push(type)
    if (type === 'IHDR') ihdr = data
    else if (type === 'PLTE') palette = data
    else if (type === 'IDAT') idat.push(data)
    o += 12 + len
  }
  if (chunks[0] !== 'IHDR' || !ihdr || ihdr.length !== 13) {
    throw new PngFormatError('the first chunk is not a 13-byte IHDR')
  }
  if (chunks[chunks.length - 1] !== 'IEND') throw new PngFormatError('the last chunk is not IEND')
  if (idat.length === 0) throw new PngFormatError('no IDAT chunk')
  const h = new DataView(ihdr.buffer, ihdr.byteOffset, 13)
  const width = h.getUint32(0)
  const height = h.getUint32(4)
  const bitDepth = ihdr[8] as number
  const colourType = ihdr[9] as number
  if (width === 0 || height === 0) throw new PngFormatError('zero width or height')
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colourType]
  if (channels === undefined) throw new PngFormatError(`colour type ${colourType} is not valid`)
  const joined = new Uint8Array(idat.reduce((n, d) => n + d.length, 0))
  let k = 0
  for (const d of idat) {
    joined.set(d, k)
    k += d.length
  }
  let raw: Uint8Array
  try {
    raw = new Uint8Array(inflateSync(joined))
  } catch (e) {
    throw new PngFormatError(`IDAT does not inflate: ${(e as Error).message}`)
  }
  const rowBytes = Math.ceil((width * channels * bitDepth) / 8)
  if (raw.length !== height * (rowBytes + 1)) {
    throw new PngFormatError(
      `image data is ${raw.length} bytes, expected ${height * (rowBytes + 1)}`,
    )
  }
  for (let y = 0; y < height; y++) {
    if ((raw[y * (rowBytes + 1)] as number) > 4) throw new PngFormatError(`row ${y}: bad filter`)
  }
  if (colourType === 3 && (palette.length === 0 || palette.length % 3 !== 0)) {
    throw new PngFormatError('an indexed image needs a PLTE chunk')
  }
  return { width, height, bitDepth, colourType, chunks, raw, palette }
}
