const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const DECODE = new Int16Array(128).fill(-1)
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i
DECODE['-'.charCodeAt(0)] = 62
DECODE['_'.charCodeAt(0)] = 63

/**
 * Encodes bytes as standard base64 with padding (the form protobuf JSON uses for `bytes`).
 *
 * @example
 * bytesToBase64(new Uint8Array([1])) // 'AQ=='
 */
export function bytesToBase64(bytes: Uint8Array): string {
  let out = ''
  const n = bytes.length
  let i = 0
  for (; i + 2 < n; i += 3) {
    const v =
      ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number)
    out +=
      ALPHABET[v >> 18] +
      (ALPHABET[(v >> 12) & 63] as string) +
      ALPHABET[(v >> 6) & 63] +
      ALPHABET[v & 63]
  }
  if (i < n) {
    const b0 = bytes[i] as number
    const b1 = i + 1 < n ? (bytes[i + 1] as number) : 0
    const v = (b0 << 16) | (b1 << 8)
    out += (ALPHABET[v >> 18] as string) + ALPHABET[(v >> 12) & 63]
    out += i + 1 < n ? `${ALPHABET[(v >> 6) & 63]}=` : '=='
  }
  return out
}

/**
 * Decodes standard or URL-safe base64, with or without padding; white space is ignored.
 * Returns `undefined` when the text is not base64.
 */
export function base64ToBytes(text: string): Uint8Array | undefined {
  const clean = text.replace(/[\s=]+$/g, '').replace(/\s+/g, '')
  if (clean.length % 4 === 1) return undefined
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4))
  let acc = 0
  let bits = 0
  let o = 0
  for (let i = 0; i < clean.length; i++) {
    const c = clean.charCodeAt(i)
    const v = c < 128 ? (DECODE[c] as number) : -1
    if (v < 0) return undefined
    acc = (acc << 6) | v
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[o++] = (acc >> bits) & 0xff
    }
  }
  return out.subarray(0, o)
}

/** Encodes bytes as lowercase hex. */
export function bytesToHex(bytes: Uint8Array): string {
  let out = ''
  for (let i = 0; i < bytes.length; i++) out += (bytes[i] as number).toString(16).padStart(2, '0')
  return out
}

/** Decodes hex (upper or lower case, optional white space); `undefined` when it is not hex. */
export function hexToBytes(text: string): Uint8Array | undefined {
  const clean = text.replace(/\s+/g, '')
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) return undefined
  const out = new Uint8Array(clean.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16)
  return out
}
