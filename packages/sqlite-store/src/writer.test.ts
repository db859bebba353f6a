import { samplePacket, sampleReception, sampleUndecoded } from '@meshtap/core/testing'
import type { Reception, UndecodedPacket } from '@meshtap/protocol'
import { describe, expect, it } from 'vitest'
import { tmpFile } from '../test/helpers.js'
import { createSqliteStore } from './sqlite-store.js'

const empty = { packets: [], receptions: [], undecoded: [] }

/** A copy as stored, with the strings and gateway its ids point at. */
interface Copy {
  gateway: string | null
  topic: string | null
  channel: string | null
  from: number | null
}

/** The copies of a packet with the strings and gateway their ids point at. */
function copies(store: ReturnType<typeof createSqliteStore>, key: string): Copy[] {
  return store.database
    .prepare(
      `SELECT g.gateway_id AS gateway, t.value AS topic, c.value AS channel, r.from_num AS "from"
       FROM receptions r JOIN packets p ON p.id = r.packet_ref
       LEFT JOIN gateways g ON g.id = r.gw LEFT JOIN strings t ON t.id = r.topic_ref
       LEFT JOIN strings c ON c.id = r.channel_ref
       WHERE p.key = ? ORDER BY r.id`,
    )
    .all(key) as Copy[]
}

describe('writer (the shortcuts past its caches)', () => {
  it('a packet decoded after its copies: later undecoded copies are dropped, later copies kept', async () => {
    const store = createSqliteStore({ path: tmpFile(), retention: false, stateFlushMs: 0 })
    const sp = samplePacket(7)
    const u = sampleUndecoded(7)
    // An undecoded copy with the decoded packet's key (what a channel key added later looks like).
    const late: UndecodedPacket = { ...u, key: sp.key }
    await store.writeBatch({ ...empty, receptions: [sampleReception(sp, 1)] })
    await store.writeBatch({ ...empty, packets: [sp] })
    await store.writeBatch({ ...empty, undecoded: [late], receptions: [sampleReception(sp, 2)] })
    expect(await store.counts()).toEqual({ packets: 1, receptions: 2, undecoded: 0 })
    await store.writeBatch({ ...empty, receptions: [sampleReception(sp, 3)], undecoded: [late] })
    expect(await store.counts()).toEqual({ packets: 1, receptions: 3, undecoded: 0 })
    expect(copies(store, sp.key).map((c) => c.gateway)).toEqual([
      '!a0c00001',
      '!a0c00002',
      '!a0c00003',
    ])
    await store.close()
  })

  it('an undecoded copy right after a copy of the same key is kept (the key is not decoded)', async () => {
    const store = createSqliteStore({ path: tmpFile(), retention: false })
    const u = sampleUndecoded(3)
    const r: Reception = {
      ...sampleReception(samplePacket(1), 4),
      packetKey: u.key,
    }
    await store.writeBatch({ packets: [], receptions: [r], undecoded: [u] })
    expect(await store.counts()).toEqual({ packets: 0, receptions: 1, undecoded: 1 })
    await store.close()
  })

  it('after a rolled back batch, ids of the strings and gateways it added are not reused', async () => {
    const store = createSqliteStore({ path: tmpFile(), retention: false })
    const sp = samplePacket(2)
    const r = { ...sampleReception(sp, 9), channelId: 'Fresh', topic: 'msh/EU/2/e/Fresh/!a0c00009' }
    const bad = { ...r, packetKey: undefined } as unknown as Reception
    await expect(
      store.writeBatch({ packets: [sp], receptions: [r, r, bad], undecoded: [] }),
    ).rejects.toThrow(/\[sqlite-store\]/)
    // Another topic and gateway take the ids the rolled back ones had; the channel is the same.
    const other = samplePacket(3)
    const copy = { ...sampleReception(other, 5), channelId: 'Fresh', topic: 'elsewhere' }
    await store.writeBatch({ packets: [], receptions: [copy], undecoded: [] })
    expect(copies(store, other.key)).toEqual([
      { gateway: '!a0c00005', topic: 'elsewhere', channel: 'Fresh', from: other.packet.from },
    ])
    await store.writeBatch({ packets: [sp], receptions: [r], undecoded: [] })
    expect(copies(store, sp.key)).toEqual([
      { gateway: '!a0c00009', topic: r.topic, channel: 'Fresh', from: sp.packet.from },
    ])
    await store.close()
  })

  it('a copy of a packet that retention deleted makes its packet row again', async () => {
    const store = createSqliteStore({
      path: tmpFile(),
      retention: { defaultMs: 1000, intervalMs: false },
    })
    const sp = samplePacket(4)
    await store.writeBatch({ ...empty, receptions: [sampleReception(sp, 1)] })
    await store.runRetention()
    expect(store.database.prepare('SELECT count(*) AS n FROM packets').get()).toEqual({ n: 0 })
    await store.writeBatch({ ...empty, receptions: [sampleReception(sp, 2)] })
    expect(copies(store, sp.key).map((c) => c.gateway)).toEqual(['!a0c00002'])
    await store.close()
  })

  it('copies of many packets and gateways in turn keep their own topic and gateway', async () => {
    const store = createSqliteStore({ path: tmpFile(), retention: false, keyCacheSize: 2 })
    const packets = [1, 2, 3, 4].map((n) => samplePacket(n))
    const receptions = packets.flatMap((p, i) =>
      [1, 2, 1, 3].map((g) => ({
        ...sampleReception(p, g),
        topic: `msh/US/2/e/LongFast/!a0c0000${g}${i % 2 ? '/x' : ''}`,
      })),
    )
    await store.writeBatch({ packets: packets.slice(0, 2), receptions, undecoded: [] })
    await store.writeBatch({ packets: packets.slice(2), receptions, undecoded: [] })
    for (const [i, p] of packets.entries()) {
      expect(copies(store, p.key)).toEqual(
        [1, 2, 3].map((g) => ({
          gateway: `!a0c0000${g}`,
          topic: `msh/US/2/e/LongFast/!a0c0000${g}${i % 2 ? '/x' : ''}`,
          channel: 'LongFast',
          from: p.packet.from,
        })),
      )
    }
    await store.close()
  })
})
