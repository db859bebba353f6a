import { PortNum, type RedecryptableStore, type StoreQueries } from '@meshtap/protocol'
import { describe, expect, it } from 'vitest'
import { createCodec } from '../codec/decode.js'
import { encodeEnvelope } from '../codec/encode.js'
import { createIngest, packetKeyOf } from '../pipeline/ingest.js'
import { sampleUndecoded } from './fixtures.js'
import { SECRET_CHANNEL, workload } from './workload.js'

/**
 * The re-decryption contract as a vitest suite, for stores that keep undecoded packets
 * (`RedecryptableStore`): a key added later recovers the past, into the normal tables and the
 * typed ones; what still does not decode (PKI) stays kept. The factory returns a fresh, empty store
 * with retention off; the suite closes it.
 *
 * @example
 * import { describeRedecryptConformance } from '@meshtap/core/testing'
 * describeRedecryptConformance('sqlite', () => createSqliteStore({ path: tmpFile(), retention: false }))
 */
export function describeRedecryptConformance(
  name: string,
  factory: () => (RedecryptableStore & StoreQueries) | Promise<RedecryptableStore & StoreQueries>,
): void {
  describe(`redecrypt conformance: ${name}`, () => {
    it('recovers the packets of a channel whose key is added later', async () => {
      const records = [
        ...workload({ packets: 800, nodes: 30, gateways: 5, secretShare: 0.3, seed: 4 }),
      ]
      const store = await factory()
      const ingest = createIngest({ store, rateLimit: false, closeStore: false })
      await ingest.start()
      for (const r of records) for (const m of r.messages) ingest.push(m)
      await ingest.stop()
      const secret = records.filter((r) => r.undecoded)
      expect(secret.length).toBeGreaterThan(100)
      const before = await store.counts()
      expect(before.undecoded).toBe(secret.length)
      expect(before.packets).toBe(records.length - secret.length)
      const receptionsBefore = before.receptions

      // Without the key nothing changes.
      const none = await store.redecrypt(createCodec().decode)
      expect(none).toEqual({ scanned: secret.length, decoded: 0, failed: secret.length })
      expect(await store.counts()).toEqual(before)

      const keyed = createCodec({ keys: [SECRET_CHANNEL] })
      const result = await store.redecrypt(keyed.decode, { chunkSize: 64 })
      expect(result).toEqual({ scanned: secret.length, decoded: secret.length, failed: 0 })
      expect(await store.counts()).toEqual({
        packets: records.length,
        receptions: receptionsBefore,
        undecoded: 0,
      })
      for (const r of secret.slice(0, 50)) {
        const first = r.messages[0]
        if (!first) throw new Error('no message')
        const direct = keyed.decode(first)
        if (!direct.ok) throw new Error('the keyed codec fails')
        const key = r.undecoded?.key as string
        const stored = await store.getPacket(key)
        expect(stored?.packet).toEqual(JSON.parse(JSON.stringify(direct.value)))
        expect(stored?.receivedAt).toBe(first.receivedAt)
        const copies = await store.listReceptions({ packetKey: key })
        expect(copies.items).toHaveLength(r.messages.length)
        expect(copies.items.every((c) => c.portnum === direct.value.portnum)).toBe(true)
      }
      // The typed tables and node state follow.
      const secretPositions = secret.filter((r) => {
        const d = keyed.decode(r.messages[0] as NonNullable<(typeof r.messages)[0]>)
        return d.ok && d.value.app.type === 'position' && d.value.app.latitude !== undefined
      })
      const positions = await store.listPositions({ channel: 'Secret', limit: 1000 })
      expect(positions.items).toHaveLength(secretPositions.length)
      // Nothing left to do.
      expect(await store.redecrypt(keyed.decode)).toEqual({ scanned: 0, decoded: 0, failed: 0 })
      await store.close?.()
    })

    it('keeps what still does not decode until the right key comes; PKI stays undecoded', async () => {
      const store = await factory()
      const pkiBytes = encodeEnvelope({
        from: 0x31000001,
        to: 0x32000002,
        id: 0x41000001,
        gatewayId: '!a0c0ffee',
        channelId: 'PKI',
        pkiEncrypted: true,
        portnum: PortNum.TEXT_MESSAGE_APP,
        payload: 'private',
        channel: SECRET_CHANNEL,
      })
      const pki = createCodec().decode({ topic: 'msh/US/2/e/PKI/!a0c0ffee', payload: pkiBytes })
      if (pki.ok) throw new Error('a PKI packet decoded')
      expect(pki.error.error.code).toBe('PKI_ENCRYPTED')
      await store.writeBatch({
        packets: [],
        receptions: [],
        undecoded: [
          sampleUndecoded(1),
          { key: packetKeyOf(0x31000001, 0x41000001, 0), failure: pki.error, receivedAt: 1 },
        ],
      })
      const r = await store.redecrypt(
        createCodec({ keys: [{ name: 'Other', psk: 'AQ==' }] }).decode,
      )
      expect(r).toEqual({ scanned: 2, decoded: 0, failed: 2 })
      const ok = await store.redecrypt(createCodec({ keys: [SECRET_CHANNEL] }).decode)
      expect(ok).toEqual({ scanned: 2, decoded: 1, failed: 1 })
      expect((await store.counts()).undecoded).toBe(1)
      expect((await store.getPacket(sampleUndecoded(1).key))?.packet.app).toMatchObject({
        type: 'text',
        text: 'secret',
      })
      await expect(store.redecrypt(undefined as never)).rejects.toMatchObject({
        code: 'INVALID_OPTIONS',
      })
      await store.close?.()
    })
  })
}
