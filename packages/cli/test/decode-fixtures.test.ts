import { createCodec } from '@meshtap/core'
import { describe, expect, it } from 'vitest'
import { decodeLine } from '../src/commands/decode.js'
import { approxEqual, loadVectors } from './shared-fixtures.js'

const vectors = loadVectors()
// Keys of `expected` that are not packet fields of the decode contract.
const NOT_FIELDS = new Set(['decoded', 'decryptedFrom'])

describe.skipIf(!vectors)('shared captured vectors through the decode contract', () => {
  const codec = createCodec({ includeRaw: true })
  for (const v of vectors ?? []) {
    it(`${v.id} (${v.kind})`, () => {
      const line = JSON.stringify({
        payload: v.payload,
        encoding: v.encoding,
        topic: v.topic,
        kind: v.kind,
      })
      const out = decodeLine(line, codec.decode)
      expect(out, JSON.stringify(out)).toMatchObject({ ok: true })
      const packet = out.packet
      for (const [key, want] of Object.entries(v.expected)) {
        if (NOT_FIELDS.has(key)) continue
        expect(approxEqual(packet[key], want, key), key).toBeUndefined()
      }
      expect(approxEqual(packet.payload, v.expected.decoded, 'payload')).toBeUndefined()
    })
  }
})
