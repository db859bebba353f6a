import type { NodeState } from '@meshtap/protocol'
import { describe, expect, it } from 'vitest'
import { type Batch, BatchRing, batchText, type NodeItem, nodeEventFor } from './batch.js'
import { compileFilter } from './filter.js'
import { NodeTracker } from './node-tracker.js'

const batch = (seq: number, bytes = 10): Batch => ({ seq, items: [], bytes })

describe('BatchRing', () => {
  it('keeps the newest batches within both bounds', () => {
    const ring = new BatchRing(3, 100)
    expect(ring.oldestSeq(1)).toBe(1)
    for (let s = 1; s <= 5; s++) ring.push(batch(s))
    expect(ring.size).toBe(3)
    expect(ring.oldestSeq(6)).toBe(3)
    expect(ring.get(2)).toBeUndefined()
    expect(ring.get(4)?.seq).toBe(4)
    expect(ring.get(6)).toBeUndefined()
    ring.push(batch(6, 95))
    expect(ring.size).toBe(1)
    expect(ring.bytes).toBe(95)
    ring.push(batch(7, 500)) // one batch over the byte bound is still kept
    expect(ring.size).toBe(1)
    expect(ring.get(7)?.seq).toBe(7)
    for (let s = 8; s < 5000; s++) ring.push(batch(s, 1))
    expect(ring.get(4999)?.seq).toBe(4999)
    expect(ring.get(4997)?.seq).toBe(4997)
    expect(ring.size).toBe(3)
  })
})

function state(num: number, lat?: number): NodeState {
  return {
    num,
    id: `!${num.toString(16).padStart(8, '0')}`,
    telemetry: {},
    lastHeard: 1,
    packets: 1,
    gateways: {},
    isGateway: false,
    ...(lat === undefined
      ? {}
      : { position: { latitude: lat, longitude: 0, at: 1, from: 'position' } }),
  }
}

describe('node events', () => {
  it('are full, patch or leave depending on the state last sent', () => {
    const live = new Map<number, NodeState>([[1, state(1, 5)]])
    const tracker = new NodeTracker(100)
    const box = compileFilter({ kinds: ['node'], bbox: { south: 0, west: -1, north: 10, east: 1 } })
    const all = compileFilter({ kinds: ['node'] })
    const step = (id: number): NodeItem => {
      tracker.mark(1)
      const [change] = tracker.collect((n) => live.get(n))
      return { node: true, id, change: change as NonNullable<typeof change> }
    }
    const first = step(1)
    expect(JSON.parse(nodeEventFor(box, first) as string)).toMatchObject({ op: 'full' })
    expect(JSON.parse(nodeEventFor(all, first) as string)).toMatchObject({ op: 'full' })

    live.set(1, { ...state(1, 6), packets: 2 })
    const second = step(2)
    expect(JSON.parse(nodeEventFor(box, second) as string)).toEqual({
      id: 2,
      kind: 'node',
      num: 1,
      op: 'patch',
      patch: { packets: 2, position: { latitude: 6 } },
    })

    live.set(1, { ...state(1, 50), packets: 2 })
    const third = step(3)
    expect(JSON.parse(nodeEventFor(box, third) as string)).toEqual({
      id: 3,
      kind: 'node',
      num: 1,
      op: 'leave',
    })
    expect(JSON.parse(nodeEventFor(all, third) as string)).toMatchObject({ op: 'patch' })

    live.set(1, { ...state(1, 51), packets: 3 })
    expect(nodeEventFor(box, step(4))).toBeUndefined()
    live.set(1, { ...state(1, 7), packets: 3 })
    expect(JSON.parse(nodeEventFor(box, step(5)) as string)).toMatchObject({
      op: 'full',
      node: { packets: 3 },
    })

    tracker.mark(1) // nothing changed: no event
    expect(tracker.collect((n) => live.get(n))).toEqual([])
    const b: Batch = { seq: 9, items: [third], bytes: 0 }
    expect(batchText(box, b)).toEqual({
      text: `{"type":"batch","seq":9,"events":[${nodeEventFor(box, third)}]}`,
      events: 1,
    })
    expect(batchText(compileFilter({ kinds: ['packet'] }), b)).toBeUndefined()
  })

  it('keeps private copies: later changes of the live object do not leak into sent states', () => {
    const live = state(1)
    const tracker = new NodeTracker(100)
    tracker.mark(1)
    const [c1] = tracker.collect(() => live)
    live.gateways['!a'] = { lastHeard: 2, rxSnr: 1, rxRssi: 1, receptionClass: 'direct', count: 1 }
    tracker.mark(1)
    const [c2] = tracker.collect(() => live)
    expect(c1?.next.gateways).toEqual({})
    expect(c2?.patch).toEqual({ gateways: { '!a': live.gateways['!a'] } })
    live.gateways['!a'].count = 2
    tracker.mark(1)
    const [c3] = tracker.collect(() => live)
    expect(c3?.patch).toEqual({ gateways: { '!a': { count: 2 } } })
    expect(c2?.next.gateways['!a']?.count).toBe(1)
  })

  it('forgets every copy when over its bound, then sends nodes whole', () => {
    const tracker = new NodeTracker(2)
    const get = (n: number) => state(n)
    for (const n of [1, 2]) tracker.mark(n)
    expect(tracker.collect(get).map((c) => c.prev)).toEqual([undefined, undefined])
    tracker.mark(3)
    const [c] = tracker.collect(get)
    expect(c?.prev).toBeUndefined()
    expect(tracker.size).toBe(1)
  })
})
