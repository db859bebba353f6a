import type { NodeState } from '@meshtap/protocol'
import { describe, expect, it } from 'vitest'
import { compileFilter, type EventMeta, inBox } from './filter.js'

const node = (num: number, extra: Partial<NodeState> = {}): NodeState => ({
  num,
  id: `!${num.toString(16).padStart(8, '0')}`,
  telemetry: {},
  lastHeard: 0,
  packets: 0,
  gateways: {},
  isGateway: false,
  ...extra,
})

describe('compileFilter', () => {
  it('normalises, sorts and dedupes into one key per distinct filter', () => {
    const a = compileFilter({
      nodes: ['!0000000a', 3, 10],
      gateways: ['!ABCDEF01'],
      roots: ['b', 'a'],
    })
    const b = compileFilter({ roots: ['a', 'b'], gateways: ['!abcdef01'], nodes: [3, 10] })
    expect(a.key).toBe(b.key)
    expect(a.wire).toEqual({
      kinds: ['node', 'packet', 'reception', 'undecoded'],
      nodes: [3, 10],
      gateways: ['!abcdef01'],
      roots: ['a', 'b'],
    })
    expect(compileFilter({}).key).not.toBe(compileFilter({ kinds: ['packet'] }).key)
  })

  it('applies each field only to the kinds that carry it', () => {
    const f = compileFilter({
      kinds: ['packet', 'reception', 'drop', 'status', 'flush'],
      nodes: [1],
      channels: ['LongFast'],
    })
    const packet: EventMeta = { kind: 'packet', from: 1, to: 2, channel: 'LongFast' }
    expect(f.matchesEvent(packet)).toBe(true)
    expect(f.matchesEvent({ ...packet, from: 5, to: 1 })).toBe(true)
    expect(f.matchesEvent({ ...packet, from: 5 })).toBe(false)
    expect(f.matchesEvent({ ...packet, channel: 'Other' })).toBe(false)
    expect(f.matchesEvent({ kind: 'packet', from: 1 })).toBe(false) // no channel
    expect(f.matchesEvent({ kind: 'reception', from: 1, to: 1, channel: 'LongFast' })).toBe(true)
    expect(f.matchesEvent({ kind: 'reception', from: 2, to: 1, channel: 'LongFast' })).toBe(false)
    expect(f.matchesEvent({ kind: 'undecoded', from: 1, channel: 'LongFast' })).toBe(false) // kind
    expect(f.matchesEvent({ kind: 'drop', from: 1 })).toBe(true)
    expect(f.matchesEvent({ kind: 'drop' })).toBe(false)
    expect(f.matchesEvent({ kind: 'status' })).toBe(true)
    expect(f.matchesEvent({ kind: 'flush' })).toBe(true)
    expect(f.wantsNodes).toBe(false)
  })

  it('matches topic roots on segment boundaries, gateways case-insensitively', () => {
    const f = compileFilter({ roots: ['msh/US'], gateways: ['!A0C0FFEE'] })
    const m: EventMeta = {
      kind: 'reception',
      gateway: '!a0c0ffee',
      topic: 'msh/US/2/e/LongFast/!a0c0ffee',
    }
    expect(f.matchesEvent(m)).toBe(true)
    expect(f.matchesEvent({ ...m, topic: 'msh/USA/2/e/LongFast/!a0c0ffee' })).toBe(false)
    expect(f.matchesEvent({ ...m, topic: undefined })).toBe(false)
    expect(f.matchesEvent({ ...m, gateway: '!a0c0fffe' })).toBe(false)
  })

  it('matches nodes by number, box and the gateways that heard them', () => {
    const box = { south: 10, west: 170, north: 20, east: -170 }
    const f = compileFilter({ bbox: box, gateways: ['!a0c0ffee'] })
    expect(f.dynamicNodes).toBe(true)
    const heard = {
      '!a0c0ffee': {
        lastHeard: 1,
        rxSnr: 1,
        rxRssi: 1,
        receptionClass: 'direct' as const,
        count: 1,
      },
    }
    const here = { latitude: 15, longitude: 179, at: 0, from: 'position' as const }
    expect(f.matchesNode(node(1, { position: here, gateways: heard }))).toBe(true)
    expect(f.matchesNode(node(1, { position: here }))).toBe(false)
    expect(f.matchesNode(node(0xa0c0ffee, { position: here }))).toBe(true) // the gateway itself
    expect(f.matchesNode(node(1, { gateways: heard }))).toBe(false) // no position
    expect(compileFilter({ nodes: [7] }).matchesNode(node(7))).toBe(true)
    expect(compileFilter({ nodes: [7] }).dynamicNodes).toBe(false)
  })
})

describe('inBox', () => {
  it('handles boxes across the antimeridian', () => {
    const b = { south: -10, west: 170, north: 10, east: -170 }
    expect(inBox(b, 0, 175)).toBe(true)
    expect(inBox(b, 0, -175)).toBe(true)
    expect(inBox(b, 0, 0)).toBe(false)
    expect(inBox(b, 11, 175)).toBe(false)
    expect(inBox({ south: -10, west: -10, north: 10, east: 10 }, 10, -10)).toBe(true)
  })
})
