import { base64ToBytes } from '@meshtap/protocol'

/** The firmware's default channel key (PSK `AQ==`, index 1), as 16 bytes. */
export const DEFAULT_KEY: Uint8Array = new Uint8Array([
  0xd4, 0xf1, 0xbb, 0x3a, 0x20, 0x29, 0x07, 0x59, 0xf0, 0xbc, 0xff, 0xab, 0xcf, 0x4e, 0x69, 0x01,
])

/** The default channel's name under the default modem preset. */
export const DEFAULT_CHANNEL_NAME = 'LongFast'

/**
 * Expands a channel PSK the way the firmware does (`Channels::getKey`):
 * - empty, or the single byte 0: no encryption → returns an empty array;
 * - one byte N (1–255): the default key with its last byte increased by N − 1;
 * - 2–15 bytes: zero-padded to 16 (AES-128); 17–31 bytes: zero-padded to 32 (AES-256);
 * - 16 or 32 bytes: used as is. Longer keys are an error.
 *
 * @example
 * expandPsk(new Uint8Array([1])) // the default key, d4f1bb3a…4e6901
 */
export function expandPsk(psk: Uint8Array): Uint8Array {
  if (psk.length === 0) return new Uint8Array(0)
  if (psk.length === 1) {
    const index = psk[0] as number
    if (index === 0) return new Uint8Array(0)
    const key = DEFAULT_KEY.slice()
    key[15] = ((key[15] as number) + index - 1) & 0xff
    return key
  }
  if (psk.length > 32) {
    throw new RangeError(`a channel key has at most 32 bytes, got ${psk.length}`)
  }
  const size = psk.length <= 16 ? 16 : 32
  if (psk.length === size) return psk.slice()
  const key = new Uint8Array(size)
  key.set(psk)
  return key
}

/** XOR of all bytes (the firmware's `xorHash`). */
export function xorHash(bytes: Uint8Array): number {
  let h = 0
  for (let i = 0; i < bytes.length; i++) h ^= bytes[i] as number
  return h
}

const encoder = new TextEncoder()

/** XOR of a channel name's UTF-8 bytes. */
export function nameHash(name: string): number {
  return xorHash(encoder.encode(name))
}

/**
 * The 8-bit channel hash carried in `MeshPacket.channel` of encrypted packets:
 * `xorHash(name) ^ xorHash(expandedKey)` (LongFast with the default key = 8).
 */
export function channelHash(name: string, expandedKey: Uint8Array): number {
  return nameHash(name) ^ xorHash(expandedKey)
}

/** A channel as the user gives it: a name and a PSK (bytes, or base64 text like `AQ==`). */
export interface ChannelKeyInput {
  /** Channel name as configured on the nodes (`LongFast`, `Private`, …). */
  name: string
  /** The channel PSK: base64 text or bytes; `''`/`AA==` for an unencrypted channel. */
  psk: string | Uint8Array
}

/** A channel in the key ring, with its expanded key and hash precomputed. */
export interface ChannelKey {
  readonly name: string
  /** The expanded key (16 or 32 bytes), or empty for an unencrypted channel. */
  readonly key: Uint8Array
  /** The channel hash carried by its packets. */
  readonly hash: number
  /** XOR of the key bytes, to compute the hash for other channel names on the same key. */
  readonly keyXor: number
  /** Stable identity of the key bytes (hex), shared by channels on the same key. */
  readonly keyId: string
}

/** Parses `NAME=PSK` (PSK in base64) as the CLI's `--key` takes it. */
export function parseChannelKeySpec(spec: string): ChannelKeyInput {
  const eq = spec.indexOf('=')
  if (eq <= 0) {
    throw new TypeError(
      `bad channel key "${spec}": expected NAME=PSK with the PSK in base64, e.g. LongFast=AQ==`,
    )
  }
  return { name: spec.slice(0, eq), psk: spec.slice(eq + 1) }
}

/**
 * Builds a channel key from a name and PSK; throws a `TypeError`/`RangeError` that names the channel
 * when the PSK is not base64 or too long.
 */
export function createChannelKey(input: ChannelKeyInput): ChannelKey {
  let psk: Uint8Array | undefined
  if (typeof input.psk === 'string') {
    psk = input.psk === '' ? new Uint8Array(0) : base64ToBytes(input.psk)
    if (!psk) {
      throw new TypeError(
        `channel "${input.name}": the PSK "${input.psk}" is not base64 (use e.g. AQ== for the default key)`,
      )
    }
  } else {
    psk = input.psk
  }
  let key: Uint8Array
  try {
    key = expandPsk(psk)
  } catch (cause) {
    throw new RangeError(`channel "${input.name}": ${(cause as Error).message}`, { cause })
  }
  let keyId = ''
  for (const b of key) keyId += b.toString(16).padStart(2, '0')
  const keyXor = xorHash(key)
  return { name: input.name, key, hash: nameHash(input.name) ^ keyXor, keyXor, keyId }
}

/** The channels meshtap knows, indexed for decryption. */
export interface KeyRing {
  /** All channels, in the order given (the default channel first). */
  readonly channels: readonly ChannelKey[]
  /** Distinct encryption keys (one channel per key, the first that uses it). */
  readonly keys: readonly ChannelKey[]
  /** Channels whose hash is `hash`. */
  byHash(hash: number): readonly ChannelKey[]
  /** Whether an unencrypted channel with this hash is configured. */
  hasPlaintextHash(hash: number): boolean
}

/**
 * Creates a key ring. The default channel (`LongFast`, PSK `AQ==`) is always present, first, unless
 * the same key is given under another name too (then both are kept).
 *
 * @example
 * const ring = createKeyRing([{ name: 'Private', psk: 'q2J5c2VjcmV0a2V5MTIzNA==' }])
 */
export function createKeyRing(inputs: readonly ChannelKeyInput[] = []): KeyRing {
  const channels: ChannelKey[] = [
    createChannelKey({ name: DEFAULT_CHANNEL_NAME, psk: 'AQ==' }),
    ...inputs.map(createChannelKey),
  ]
  const unique: ChannelKey[] = []
  const seen = new Set<string>()
  const keys: ChannelKey[] = []
  const seenKeys = new Set<string>()
  const hashes = new Map<number, ChannelKey[]>()
  const plaintextHashes = new Set<number>()
  for (const ch of channels) {
    const id = `${ch.name}\u0000${ch.keyId}`
    if (seen.has(id)) continue
    seen.add(id)
    unique.push(ch)
    if (ch.key.length === 0) {
      plaintextHashes.add(ch.hash)
      continue
    }
    const list = hashes.get(ch.hash)
    if (list) list.push(ch)
    else hashes.set(ch.hash, [ch])
    if (!seenKeys.has(ch.keyId)) {
      seenKeys.add(ch.keyId)
      keys.push(ch)
    }
  }
  const none: readonly ChannelKey[] = []
  return {
    channels: unique,
    keys,
    byHash: (hash) => hashes.get(hash) ?? none,
    hasPlaintextHash: (hash) => plaintextHashes.has(hash),
  }
}
