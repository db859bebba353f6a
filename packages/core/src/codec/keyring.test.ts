import { bytesToHex } from '@meshtap/protocol'
import { describe, expect, it } from 'vitest'
import {
  channelHash,
  createChannelKey,
  createKeyRing,
  DEFAULT_KEY,
  expandPsk,
  parseChannelKeySpec,
  xorHash,
} from './keyring.js'

const b = (...bytes: number[]) => new Uint8Array(bytes)

describe('expandPsk (firmware Channels::getKey)', () => {
  it('expands the AQ== shorthand to the default key', () => {
    expect(bytesToHex(expandPsk(b(1)))).toBe('d4f1bb3a20290759f0bcffabcf4e6901')
  })
  it('adds index − 1 to the last byte for shorthand indexes 2–255', () => {
    expect(expandPsk(b(2))[15]).toBe(0x02)
    expect(expandPsk(b(10))[15]).toBe(0x0a)
    expect(expandPsk(b(255))[15]).toBe((0x01 + 254) & 0xff)
    expect(bytesToHex(expandPsk(b(2)).subarray(0, 15))).toBe(
      bytesToHex(DEFAULT_KEY.subarray(0, 15)),
    )
  })
  it('treats an empty key and the single byte 0 as no encryption', () => {
    expect(expandPsk(b()).length).toBe(0)
    expect(expandPsk(b(0)).length).toBe(0)
  })
  it('zero-pads 2–15 bytes to 16 and 17–31 bytes to 32 (never AES-192)', () => {
    const k5 = expandPsk(b(1, 2, 3, 4, 5))
    expect(k5.length).toBe(16)
    expect(bytesToHex(k5)).toBe(`0102030405${'00'.repeat(11)}`)
    expect(expandPsk(new Uint8Array(20).fill(7)).length).toBe(32)
    expect(expandPsk(new Uint8Array(24).fill(7)).length).toBe(32)
    expect(expandPsk(new Uint8Array(16).fill(9))).toEqual(new Uint8Array(16).fill(9))
    expect(expandPsk(new Uint8Array(32).fill(9)).length).toBe(32)
  })
  it('refuses keys longer than 32 bytes', () => {
    expect(() => expandPsk(new Uint8Array(33))).toThrow(RangeError)
  })
})

describe('channel hash', () => {
  const def = expandPsk(b(1))
  it('XORs the default key to 2', () => {
    expect(xorHash(def)).toBe(2)
  })
  it.each([
    ['LongFast', 8],
    ['LongSlow', 15],
    ['LongModerate', 9],
    ['LongTurbo', 118],
    ['MediumFast', 31],
    ['MediumSlow', 24],
    ['ShortFast', 112],
    ['ShortSlow', 119],
    ['ShortTurbo', 14],
  ])('%s on the default key is %i', (name, hash) => {
    expect(channelHash(name, def)).toBe(hash)
  })
  it.each([
    ['LongFast', 10],
    ['MediumFast', 29],
  ])('%s without a key (ham mode) is %i', (name, hash) => {
    expect(channelHash(name, new Uint8Array(0))).toBe(hash)
  })
})

describe('key ring', () => {
  it('always holds the default channel first', () => {
    const ring = createKeyRing()
    expect(ring.channels[0]?.name).toBe('LongFast')
    expect(ring.byHash(8).map((c) => c.name)).toEqual(['LongFast'])
  })
  it('indexes channels by hash and keeps one entry per distinct key', () => {
    const ring = createKeyRing([
      { name: 'MediumFast', psk: 'AQ==' },
      { name: 'Private', psk: 'q2J5c2VjcmV0a2V5MTIzNA==' },
      { name: 'Ham', psk: '' },
    ])
    expect(ring.byHash(31).map((c) => c.name)).toEqual(['MediumFast'])
    expect(ring.keys.map((c) => c.name)).toEqual(['LongFast', 'Private'])
    expect(ring.hasPlaintextHash(channelHash('Ham', new Uint8Array(0)))).toBe(true)
  })
  it('explains a PSK that is not base64', () => {
    expect(() => createChannelKey({ name: 'X', psk: 'not base64!' })).toThrow(/channel "X".*base64/)
  })
  it('parses NAME=PSK specs and explains bad ones', () => {
    expect(parseChannelKeySpec('Private=AQ==')).toEqual({ name: 'Private', psk: 'AQ==' })
    expect(parseChannelKeySpec('A=b=c')).toEqual({ name: 'A', psk: 'b=c' })
    expect(() => parseChannelKeySpec('nokey')).toThrow(/NAME=PSK/)
  })
})
