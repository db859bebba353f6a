import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { NodeState } from './node-state.js'
import type { StoredPacket } from './store.js'
import {
  applyMergePatch,
  applyNodeEvent,
  createMergePatch,
  firstReception,
  parseClientMessage,
  validateClientMessage,
  WIRE_EVENT_KINDS,
  type WireNodeEvent,
} from './wire.js'

function refused(text: string, options?: Parameters<typeof parseClientMessage>[1]) {
  const r = parseClientMessage(text, options)
  if (r.ok) throw new Error(`expected a refusal of ${text}`)
  return r.error
}

describe('parseClientMessage', () => {
  it('accepts every client message and copies only the known fields', () => {
    expect(parseClientMessage('{"type":"ping","id":7,"extra":true}')).toEqual({
      ok: true,
      value: { type: 'ping', id: 7 },
    })
    expect(parseClientMessage('{"type":"unsubscribe","id":"u"}')).toEqual({
      ok: true,
      value: { type: 'unsubscribe', id: 'u' },
    })
    expect(parseClientMessage('{"type":"hello","protocol":1,"client":"map/1"}')).toEqual({
      ok: true,
      value: { type: 'hello', protocol: 1, client: 'map/1' },
    })
    const sub = {
      type: 'subscribe',
      id: 'sub-1',
      snapshot: false,
      resume: { epoch: 'e1', fromSeq: 42 },
      filter: {
        kinds: ['packet', 'node'],
        nodes: [1234, '!fa75f7c0'],
        channels: ['LongFast'],
        gateways: ['!a0c0ffee'],
        bbox: { south: 37.2, west: 170, north: 38, east: -170 },
        roots: ['msh/US/'],
      },
    }
    expect(parseClientMessage(JSON.stringify(sub))).toEqual({
      ok: true,
      value: { ...sub, filter: { ...sub.filter, roots: ['msh/US'] } },
    })
    expect(parseClientMessage('{"type":"subscribe"}')).toEqual({
      ok: true,
      value: { type: 'subscribe' },
    })
  })

  it('refuses what is not JSON, not a message, or of an unknown type', () => {
    expect(refused('{nope').code).toBe('BAD_JSON')
    expect(refused('[1,2]').code).toBe('BAD_MESSAGE')
    expect(refused('null').code).toBe('BAD_MESSAGE')
    expect(refused('{"id":3}')).toMatchObject({ code: 'BAD_MESSAGE', path: 'type', id: 3 })
    expect(refused('{"type":"subscribe","id":{"x":1}}')).toMatchObject({
      code: 'BAD_MESSAGE',
      path: 'id',
    })
    expect(refused(`{"type":"ping","id":"${'x'.repeat(65)}"}`).code).toBe('BAD_MESSAGE')
    expect(refused('{"type":"publish","id":"p"}')).toMatchObject({
      code: 'UNKNOWN_TYPE',
      id: 'p',
    })
    expect(refused('{"type":"hello","protocol":2}').code).toBe('UNSUPPORTED_PROTOCOL')
    expect(refused('{"type":"hello"}').code).toBe('BAD_MESSAGE')
    expect(refused('{"type":"subscribe","snapshot":"yes"}')).toMatchObject({ path: 'snapshot' })
    expect(refused('{"type":"subscribe","resume":{"fromSeq":3}}')).toMatchObject({
      code: 'BAD_MESSAGE',
      path: 'resume.epoch',
    })
    expect(refused('{"type":"subscribe","resume":{"epoch":"e","fromSeq":0}}')).toMatchObject({
      path: 'resume.fromSeq',
    })
    expect(refused('{"type":"subscribe","resume":{"epoch":"e","fromSeq":1.5}}').code).toBe(
      'BAD_MESSAGE',
    )
  })

  it('refuses bad filters with the path of the offending value', () => {
    const f = (filter: unknown, options?: Parameters<typeof parseClientMessage>[1]) =>
      refused(JSON.stringify({ type: 'subscribe', id: 9, filter }), options)
    expect(f('all')).toMatchObject({ code: 'BAD_FILTER', path: 'filter', id: 9 })
    expect(f({ portnums: [1] })).toMatchObject({ code: 'BAD_FILTER', path: 'filter' })
    expect(f({ kinds: ['packet', 'telemetry'] })).toMatchObject({ path: 'filter.kinds[1]' })
    expect(f({ kinds: [] })).toMatchObject({ path: 'filter.kinds' })
    expect(f({ kinds: ['drop'] }, { kinds: ['packet', 'node'] })).toMatchObject({
      path: 'filter.kinds[0]',
    })
    expect(f({ nodes: [-1] })).toMatchObject({ path: 'filter.nodes[0]' })
    expect(f({ nodes: [2 ** 32] })).toMatchObject({ path: 'filter.nodes[0]' })
    expect(f({ nodes: ['fa75f7c0'] })).toMatchObject({ path: 'filter.nodes[0]' })
    expect(f({ nodes: ['!zz'] })).toMatchObject({ path: 'filter.nodes[0]' })
    expect(f({ nodes: [1, 2, 3] }, { maxFilterValues: 2 })).toMatchObject({
      path: 'filter.nodes',
    })
    expect(f({ channels: [''] })).toMatchObject({ path: 'filter.channels[0]' })
    expect(f({ channels: ['x'.repeat(300)] })).toMatchObject({ path: 'filter.channels[0]' })
    expect(f({ gateways: 'x' })).toMatchObject({ path: 'filter.gateways' })
    expect(f({ roots: ['msh/#'] })).toMatchObject({ path: 'filter.roots[0]' })
    expect(f({ bbox: { south: 1, west: 2, north: 3 } })).toMatchObject({
      path: 'filter.bbox.east',
    })
    expect(f({ bbox: { south: -91, west: 0, north: 0, east: 1 } })).toMatchObject({
      path: 'filter.bbox.south',
    })
    expect(f({ bbox: { south: 0, west: 0, north: 0, east: 181 } })).toMatchObject({
      path: 'filter.bbox.east',
    })
    expect(f({ bbox: { south: 10, west: 0, north: 5, east: 1 } })).toMatchObject({
      path: 'filter.bbox',
    })
    expect(f({ bbox: { south: 'a', west: 0, north: 5, east: 1 } }).message).toMatch(
      /filter\.bbox\.south: expected a number/,
    )
  })

  it('never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = validateClientMessage(v)
        expect(typeof r.ok).toBe('boolean')
        validateClientMessage({ type: 'subscribe', filter: v })
        validateClientMessage({ type: 'subscribe', resume: v })
      }),
    )
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(typeof parseClientMessage(s).ok).toBe('boolean')
      }),
    )
  })

  it('knows every event kind', () => {
    expect(WIRE_EVENT_KINDS).toEqual([
      'packet',
      'reception',
      'undecoded',
      'node',
      'drop',
      'flush',
      'status',
    ])
  })
})

describe('merge patches', () => {
  it('follows RFC 7386', () => {
    expect(createMergePatch({ a: 1, b: { c: 2, d: 3 } }, { a: 1, b: { c: 2 } })).toEqual({
      b: { d: null },
    })
    expect(createMergePatch({ a: [1, 2] }, { a: [1, 2] })).toBeUndefined()
    expect(createMergePatch({ a: [1, 2] }, { a: [1, 3] })).toEqual({ a: [1, 3] })
    expect(createMergePatch<Record<string, unknown>>({ a: 1 }, { a: { x: 1 } })).toEqual({
      a: { x: 1 },
    })
    expect(createMergePatch(undefined, { a: 1 })).toEqual({ a: 1 })
    expect(createMergePatch({ a: 1, u: undefined }, { a: 1 })).toBeUndefined()
    expect(applyMergePatch({ a: 1, b: { c: 2, d: 3 } }, { b: { d: null } })).toEqual({
      a: 1,
      b: { c: 2 },
    })
    // RFC 7386 appendix A examples
    expect(applyMergePatch({ a: 'b' }, { a: 'c' })).toEqual({ a: 'c' })
    expect(applyMergePatch<Record<string, unknown>>({ a: 'b' }, { b: 'c' })).toEqual({
      a: 'b',
      b: 'c',
    })
    expect(applyMergePatch<Record<string, unknown>>({ a: 'b', b: 'c' }, { a: null })).toEqual({
      b: 'c',
    })
    expect(applyMergePatch<unknown>({ a: [{ b: 'c' }] }, { a: [1] })).toEqual({ a: [1] })
    expect(applyMergePatch<unknown>({ a: { b: 'c' } }, { a: { b: 'd', c: null } })).toEqual({
      a: { b: 'd' },
    })
  })

  it('a patch turns from into to, and shares nothing with to', () => {
    const leaf = fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.array(fc.integer()))
    const obj = fc.object({
      key: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
      values: [leaf],
      maxDepth: 3,
    })
    fc.assert(
      fc.property(obj, obj, (from, to) => {
        const patch = createMergePatch(from, to)
        if (patch === undefined) {
          expect(from).toEqual(to)
          return
        }
        const before = JSON.stringify(from)
        expect(applyMergePatch(from, patch)).toEqual(to)
        expect(JSON.stringify(from)).toBe(before)
        // Mutating `to` afterwards does not change the patch.
        const text = JSON.stringify(patch)
        for (const k of Object.keys(to)) delete to[k]
        expect(JSON.stringify(patch)).toBe(text)
      }),
    )
  })

  it('applies node events', () => {
    const node: NodeState = {
      num: 0xfa75f7c0,
      id: '!fa75f7c0',
      telemetry: {},
      lastHeard: 1,
      packets: 1,
      gateways: {
        '!a': { lastHeard: 1, rxSnr: 1, rxRssi: -90, receptionClass: 'direct', count: 1 },
      },
      isGateway: false,
    }
    const patch: WireNodeEvent = {
      id: 1,
      kind: 'node',
      num: node.num,
      op: 'patch',
      patch: { lastHeard: 5, packets: 2, gateways: { '!a': { count: 2 }, '!b': null } },
    }
    const next = applyNodeEvent(node, patch)
    expect(next).toEqual({
      ...node,
      lastHeard: 5,
      packets: 2,
      gateways: { '!a': { ...node.gateways['!a'], count: 2 } },
    })
    expect(next?.telemetry).toBe(node.telemetry)
    expect(node.packets).toBe(1)
    expect(applyNodeEvent(node, { id: 2, kind: 'node', num: node.num, op: 'leave' })).toBe(
      undefined,
    )
    expect(applyNodeEvent(undefined, { id: 3, kind: 'node', num: 1, op: 'full', node })).toBe(node)
    expect(applyNodeEvent(undefined, { ...patch, num: 0x1234 })).toMatchObject({
      num: 0x1234,
      id: '!00001234',
      lastHeard: 5,
      packets: 2,
    })
  })
})

describe('firstReception', () => {
  it('rebuilds the reception of a packet event from its header', () => {
    const packet = {
      key: '1:2',
      receivedAt: 1000,
      packet: {
        rxTime: 5,
        rxSnr: 6.5,
        rxRssi: -80,
        hopLimit: 2,
        hopStart: 3,
        receptionClass: 'relayed',
        hopsAway: 1,
        gatewayId: '!a0c0ffee',
        topic: 'msh/US/2/e/LongFast/!a0c0ffee',
        channelId: 'LongFast',
        relayNode: 7,
      },
    } as unknown as StoredPacket
    expect(firstReception({ packet, source: 'mqtt' })).toEqual({
      packetKey: '1:2',
      rxTime: 5,
      receivedAt: 1000,
      rxSnr: 6.5,
      rxRssi: -80,
      hopLimit: 2,
      hopStart: 3,
      receptionClass: 'relayed',
      hopsAway: 1,
      gatewayId: '!a0c0ffee',
      topic: 'msh/US/2/e/LongFast/!a0c0ffee',
      channelId: 'LongFast',
      relayNode: 7,
      source: 'mqtt',
    })
  })
})
