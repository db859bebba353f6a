import { samplePacket, workload } from '@meshtap/core/testing'
import type { DecodedPacket } from '@meshtap/protocol'
import { packPacket, unpackPacket } from '@meshtap/protocol/store-kit'
import { describe, expect, it } from 'vitest'

const roundTrip = (p: DecodedPacket) => unpackPacket(packPacket(p))

describe('packPacket', () => {
  it('round-trips the sample packets exactly, in about half the bytes', () => {
    for (const kind of ['position', 'text', 'telemetry', 'nodeinfo', 'mapreport'] as const) {
      const p = samplePacket(3, kind).packet
      expect(roundTrip(p)).toEqual(JSON.parse(JSON.stringify(p)))
      expect(packPacket(p).length).toBeLessThan(JSON.stringify(p).length * 0.7)
    }
  })

  it('round-trips a realistic stream exactly', () => {
    for (const r of workload({ packets: 2000, seed: 7 })) {
      if (r.packet) {
        expect(roundTrip(r.packet.packet)).toEqual(JSON.parse(JSON.stringify(r.packet.packet)))
      }
    }
  })

  it('keeps fields that differ from their derivation, unknown fields and odd values', () => {
    const p = samplePacket(4).packet
    const odd = {
      ...p,
      fromId: '!notderived',
      portnumName: undefined,
      topic: 'custom/topic',
      raw: { data: 'AA==' },
      extraField: [1, 2],
      keyName: null,
    } as unknown as DecodedPacket
    const got = roundTrip(odd) as unknown as Record<string, unknown>
    expect(got).toEqual(JSON.parse(JSON.stringify(odd)))
    expect('portnumName' in got).toBe(false)
    expect(got.keyName).toBeNull()
  })

  it('reads plain JSON too', () => {
    const p = samplePacket(5).packet
    expect(unpackPacket(JSON.stringify(p))).toEqual(JSON.parse(JSON.stringify(p)))
  })
})
