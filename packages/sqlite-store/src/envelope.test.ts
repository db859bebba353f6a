import { createCodec, encodeEnvelope as encodeWithCore } from '@meshtap/core'
import { SECRET_CHANNEL } from '@meshtap/core/testing'
import { base64ToBytes, PortNum } from '@meshtap/protocol'
import { encodeEnvelope, encodeMeshPacket } from '@meshtap/protocol/store-kit'
import { describe, expect, it } from 'vitest'

const keyless = createCodec()
const keyed = createCodec({ keys: [SECRET_CHANNEL] })

describe('encodeEnvelope (rebuilding a packet from the header a failed decode kept)', () => {
  const cases = [
    { rxRssi: -120, rxSnr: -7.25, hopLimit: 1, hopStart: 3 },
    {
      rxRssi: 0,
      rxSnr: 0,
      wantAck: true,
      viaMqtt: true,
      priority: 70,
      relayNode: 0xab,
      nextHop: 0x12,
    },
    { rxRssi: -1, rxSnr: 12.5, hopLimit: 7, hopStart: 7, to: 0x1234abcd, priority: 120 },
  ]
  for (const [i, extra] of cases.entries()) {
    it(`decodes to the same packet once the key is known (case ${i + 1})`, () => {
      const topic = 'msh/EU_868/DE/2/e/Secret/!a0c0ffee'
      const bytes = encodeWithCore({
        from: 0x30000001 + i,
        id: 0x40000001 + i,
        gatewayId: '!a0c0ffee',
        portnum: PortNum.TEXT_MESSAGE_APP,
        payload: `secret ${i}`,
        channel: SECRET_CHANNEL,
        rxTime: 1_764_288_000 + i,
        bitfield: 1,
        ...extra,
      })
      const failed = keyless.decode({ topic, payload: bytes })
      if (failed.ok) throw new Error('decoded without the key')
      const { ciphertext, ...header } = failed.error.packet
      const rebuilt = encodeEnvelope(header, base64ToBytes(ciphertext as string) as Uint8Array)
      const original = keyed.decode({ topic, payload: bytes })
      const again = keyed.decode({ topic, payload: rebuilt })
      expect(original.ok).toBe(true)
      expect(again).toEqual(original)
    })
  }

  it('rebuilds a bare MeshPacket (Mesh-via-UDP)', () => {
    const bytes = encodeWithCore({
      from: 0x30000009,
      id: 0x40000009,
      gatewayId: '!a0c0ffee',
      portnum: PortNum.TEXT_MESSAGE_APP,
      payload: 'udp',
      channel: SECRET_CHANNEL,
    })
    const failed = keyless.decode({ topic: 'msh/2/e/Secret/!a0c0ffee', payload: bytes })
    if (failed.ok) throw new Error('decoded without the key')
    const { ciphertext, ...header } = failed.error.packet
    const packet = encodeMeshPacket(header, base64ToBytes(ciphertext as string) as Uint8Array)
    const r = keyed.decode({ kind: 'meshpacket', payload: packet })
    expect(r.ok && r.value.app).toMatchObject({ type: 'text', text: 'udp' })
  })
})
