import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  applyReceptionToNode,
  type GatewayHearing,
  MAX_NODE_GATEWAYS,
  type NodeState,
  newNodeState,
} from './node-state.js'
import type { Reception } from './store.js'

/** applyReceptionToNode as it was before hearings were updated in place: always a new object. */
function reference(n: NodeState, r: Reception): string[] {
  n.lastHeard = Math.max(n.lastHeard, r.receivedAt)
  if (r.gatewayId === undefined) return ['lastHeard']
  const prev = n.gateways[r.gatewayId]
  n.gateways[r.gatewayId] = {
    lastHeard: r.receivedAt,
    rxSnr: r.rxSnr,
    rxRssi: r.rxRssi,
    ...(r.hopsAway !== undefined ? { hopsAway: r.hopsAway } : {}),
    receptionClass: r.receptionClass,
    count: (prev?.count ?? 0) + 1,
  }
  if (!prev) {
    const ids = Object.keys(n.gateways)
    if (ids.length > MAX_NODE_GATEWAYS) {
      let oldest = ids[0] as string
      for (const id of ids) {
        if (
          (n.gateways[id] as GatewayHearing).lastHeard <
          (n.gateways[oldest] as GatewayHearing).lastHeard
        ) {
          oldest = id
        }
      }
      delete n.gateways[oldest]
    }
  }
  return ['lastHeard', 'gateways']
}

describe('applyReceptionToNode', () => {
  it('leaves exactly the state (fields and their order) a rebuilt hearing would', () => {
    const reception = fc.record({
      gateway: fc.option(fc.nat(40), { nil: undefined }),
      receivedAt: fc.nat(1000),
      rxSnr: fc.integer({ min: -20, max: 10 }),
      rxRssi: fc.integer({ min: -130, max: 0 }),
      hopsAway: fc.option(fc.nat(7), { nil: undefined }),
      receptionClass: fc.constantFrom('direct', 'relayed', 'unknown', 'self', 'injected' as const),
    })
    fc.assert(
      fc.property(fc.array(reception, { maxLength: 120 }), (list) => {
        const a = newNodeState(1, 0)
        const b = newNodeState(1, 0)
        for (const x of list) {
          const r: Reception = {
            packetKey: '1:1',
            rxTime: 0,
            receivedAt: x.receivedAt,
            rxSnr: x.rxSnr,
            rxRssi: x.rxRssi,
            hopLimit: 0,
            hopStart: 0,
            receptionClass: x.receptionClass,
            ...(x.gateway !== undefined ? { gatewayId: `!${x.gateway}` } : {}),
            ...(x.hopsAway !== undefined ? { hopsAway: x.hopsAway } : {}),
          }
          expect(applyReceptionToNode(a, r)).toEqual(reference(b, r))
          expect(JSON.stringify(a)).toBe(JSON.stringify(b))
        }
      }),
      { numRuns: 300 },
    )
  })
})
