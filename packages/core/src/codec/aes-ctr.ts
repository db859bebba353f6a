import { type Cipher, createCipheriv } from 'node:crypto'

/**
 * AES-CTR as Meshtastic channels use it, with one reusable AES-ECB cipher per key that produces the
 * keystream: creating a `Decipher` per packet costs more than the decryption itself.
 *
 * Nonce (16 bytes): packet id as u64 little-endian, sender as u32 little-endian, then a 32-bit
 * big-endian block counter starting at 0 (firmware `CryptoEngine::initNonce`, counter size 4).
 * @internal
 */
export interface AesCtr {
  /** Decrypts (= encrypts) `input[start, end)` for packet `id` from `from` into a new array. */
  crypt(input: Uint8Array, start: number, end: number, from: number, id: number): Uint8Array
}

const MAX_BLOCKS = 64 // 1 KiB: more than any LoRa frame; longer inputs are processed in chunks.

/** Creates the CTR engine for a 16- or 32-byte key. */
export function createAesCtr(key: Uint8Array): AesCtr {
  const algo = key.length === 32 ? 'aes-256-ecb' : 'aes-128-ecb'
  const ecb: Cipher = createCipheriv(algo, key, null)
  ecb.setAutoPadding(false)
  const counters = new Uint8Array(MAX_BLOCKS * 16)
  /** The keystream for `blocks` counter blocks from `first`: AES-ECB of the counter blocks. */
  function keystream(first: number, blocks: number, from: number, id: number): Uint8Array {
    for (let b = 0; b < blocks; b++) {
      const o = b * 16
      counters[o] = id & 0xff
      counters[o + 1] = (id >>> 8) & 0xff
      counters[o + 2] = (id >>> 16) & 0xff
      counters[o + 3] = (id >>> 24) & 0xff
      counters[o + 4] = 0
      counters[o + 5] = 0
      counters[o + 6] = 0
      counters[o + 7] = 0
      counters[o + 8] = from & 0xff
      counters[o + 9] = (from >>> 8) & 0xff
      counters[o + 10] = (from >>> 16) & 0xff
      counters[o + 11] = (from >>> 24) & 0xff
      const c = first + b
      counters[o + 12] = (c >>> 24) & 0xff
      counters[o + 13] = (c >>> 16) & 0xff
      counters[o + 14] = (c >>> 8) & 0xff
      counters[o + 15] = c & 0xff
    }
    return ecb.update(counters.subarray(0, blocks * 16))
  }
  return {
    crypt(input, start, end, from, id) {
      const len = end - start
      if (len <= MAX_BLOCKS * 16) {
        // One keystream call; XOR into the keystream buffer we own, saving an allocation.
        const ks = keystream(0, (len + 15) >>> 4, from, id)
        for (let i = 0; i < len; i++) ks[i] = (ks[i] as number) ^ (input[start + i] as number)
        return new Uint8Array(ks.buffer, ks.byteOffset, len)
      }
      const out = new Uint8Array(len)
      let done = 0
      let block = 0
      while (done < len) {
        const chunk = Math.min(len - done, MAX_BLOCKS * 16)
        const blocks = (chunk + 15) >>> 4
        const ks = keystream(block, blocks, from, id)
        for (let i = 0; i < chunk; i++) {
          out[done + i] = (input[start + done + i] as number) ^ (ks[i] as number)
        }
        done += chunk
        block += blocks
      }
      return out
    },
  }
}
