import { createDecipheriv, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createAesCtr } from './aes-ctr.js'

function nonce(from: number, id: number): Uint8Array {
  const n = new Uint8Array(16)
  const v = new DataView(n.buffer)
  v.setUint32(0, id, true) // packet id as u64 LE (upper half 0)
  v.setUint32(8, from, true) // sender as u32 LE, then a 32-bit counter from 0
  return n
}

describe('AES-CTR with a reused ECB keystream', () => {
  it('matches Node’s aes-128/256-ctr with the firmware nonce for any length and packet', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(16, 32),
        fc.uint8Array({ minLength: 0, maxLength: 1100 }),
        fc.nat(0xffffffff),
        fc.nat(0xffffffff),
        (keyLen, data, from, id) => {
          const key = randomBytes(keyLen)
          const ours = createAesCtr(key).crypt(data, 0, data.length, from, id)
          const d = createDecipheriv(
            keyLen === 32 ? 'aes-256-ctr' : 'aes-128-ctr',
            key,
            nonce(from, id),
          )
          const ref = new Uint8Array(Buffer.concat([d.update(data), d.final()]))
          expect(ours).toEqual(ref)
        },
      ),
      { numRuns: 200 },
    )
  })
  it('is its own inverse and works on a sub-range', () => {
    const key = randomBytes(16)
    const ctr = createAesCtr(key)
    const msg = new TextEncoder().encode('xxhello meshyy')
    const enc = ctr.crypt(msg, 2, 12, 0xdeadbeef, 42)
    expect(new TextDecoder().decode(ctr.crypt(enc, 0, enc.length, 0xdeadbeef, 42))).toBe(
      'hello mesh',
    )
  })
})
