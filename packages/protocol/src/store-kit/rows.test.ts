import { describe, expect, it } from 'vitest'
import type { DecodedPacket } from '../index.js'
import { packPacket, unpackPacket } from './packing.js'
import type { Row } from './paging.js'
import {
  type ColumnDialect,
  gatewayStatsRow,
  linkRow,
  messageRow,
  nodeDetail,
  nodeRow,
  packetRow,
  positionRow,
  receptionOf,
  receptionRow,
  storedPacket,
  TIME_LISTS,
  telemetryRow,
  tracerouteRow,
} from './rows.js'

/** Column values as SQLite hands them over: 0/1 booleans, a region as it was stored. */
const sqliteLike: ColumnDialect = {
  flag: (v) => v === 1,
  scalar: (v) => (v === null ? undefined : (v as string | number)),
}
/** As PostgreSQL hands them over: real booleans, a region as JSON text. */
const pgLike: ColumnDialect = {
  flag: (v) => v === true,
  scalar: (v) => (typeof v === 'string' ? (JSON.parse(v) as string | number) : undefined),
}

const NODE: Row = {
  num: 0xa0c0ffee,
  first_seen: 1000,
  last_heard: 2000,
  packets: 7,
  is_gateway: 1,
  long_name: 'Gateway',
  short_name: null,
  user_json: JSON.stringify({ longName: 'Gateway', hwModel: 'RAK4631', role: 'ROUTER' }),
  position_at: 1500,
  latitude: 37.5,
  longitude: -122.25,
  position_src: 1,
  altitude: null,
  precision_bits: 14,
  radius_m: 1456.25,
  device_json: JSON.stringify({ batteryLevel: 90 }),
  device_at: 1600,
  hops_away: 0,
  last_gateway_id: '!a0c0ffee',
  reception_at: 1900,
  last_snr: 5.5,
  last_rssi: -97,
  last_class: 3,
  firmware_version: null,
  region: 'EU_868',
  modem_preset: 3,
  map_json: JSON.stringify({ longName: 'Gateway', region: 'EU_868' }),
  map_at: 1700,
}

describe('node rows', () => {
  const expected = {
    num: 0xa0c0ffee,
    id: '!a0c0ffee',
    firstSeen: 1000,
    lastHeard: 2000,
    packets: 7,
    isGateway: true,
    longName: 'Gateway',
    hwModel: 'RAK4631',
    role: 'ROUTER',
    position: {
      latitude: 37.5,
      longitude: -122.25,
      at: 1500,
      source: 'mapreport',
      precisionBits: 14,
      radiusM: 1456.25,
    },
    deviceMetrics: { batteryLevel: 90, at: 1600 },
    hopsAway: 0,
    lastGatewayId: '!a0c0ffee',
    lastSnr: 5.5,
    lastRssi: -97,
    lastReceptionClass: 'direct',
    region: 'EU_868',
    modemPreset: 3,
  }

  it('reads the same node from either dialect, leaving NULL columns out, in a stable order', () => {
    const fromSqlite = nodeRow(NODE, sqliteLike)
    const fromPg = nodeRow(
      { ...NODE, is_gateway: true, region: '"EU_868"', modem_preset: '3' },
      pgLike,
    )
    expect(fromSqlite).toEqual(expected)
    expect(fromPg).toEqual(expected)
    expect(JSON.stringify(fromSqlite)).toBe(JSON.stringify(expected))
    expect(JSON.stringify(fromPg)).toBe(JSON.stringify(expected))
  })

  it('has no position, reception or gateway without them', () => {
    const n = nodeRow(
      {
        ...NODE,
        is_gateway: 0,
        position_at: null,
        reception_at: null,
        last_gateway_id: undefined,
        user_json: null,
        device_json: null,
        region: null,
        modem_preset: null,
      },
      sqliteLike,
    )
    expect(n).toEqual({
      num: 0xa0c0ffee,
      id: '!a0c0ffee',
      firstSeen: 1000,
      lastHeard: 2000,
      packets: 7,
      isGateway: false,
      longName: 'Gateway',
      hopsAway: 0,
    })
    expect(Object.keys(n)).not.toContain('lastGatewayId')
  })

  it('nodeDetail: the row, its node info, map report, telemetry and links', () => {
    const link = linkRow({
      source: 'direct',
      a: 1,
      b: 0xa0c0ffee,
      count: 2,
      first_seen: 1,
      last_seen: 2,
      snr: 1.5,
      rssi: null,
    })
    const detail = nodeDetail(
      NODE,
      sqliteLike,
      [{ variant: 'device', at: 1600, metrics: '{"batteryLevel":90}' }],
      [link],
    )
    expect(detail).toEqual({
      ...expected,
      telemetry: { device: { metrics: { batteryLevel: 90 }, at: 1600 } },
      links: [link],
      user: { longName: 'Gateway', hwModel: 'RAK4631', role: 'ROUTER' },
      mapReport: { longName: 'Gateway', region: 'EU_868', at: 1700 },
    })
    expect(Object.keys(detail).slice(-4)).toEqual(['telemetry', 'links', 'user', 'mapReport'])
  })
})

describe('list rows', () => {
  const base = { key: '1:2', received_at: 5000, channel: null, gateway_id: '!a0c0ffee' }

  it('positions: optional columns only when not NULL', () => {
    expect(
      positionRow({
        ...base,
        node: 1,
        latitude: 1.5,
        longitude: 2.5,
        time: null,
        altitude: 12,
        precision_bits: null,
        radius_m: null,
        sats_in_view: 0,
        ground_speed: null,
        ground_track: null,
      }),
    ).toEqual({
      key: '1:2',
      node: 1,
      nodeId: '!00000001',
      at: 5000,
      latitude: 1.5,
      longitude: 2.5,
      altitude: 12,
      satsInView: 0,
      gatewayId: '!a0c0ffee',
    })
  })

  it('telemetry: typed columns of the variant and the extra JSON', () => {
    expect(
      telemetryRow({
        ...base,
        node: 1,
        variant: 'device',
        battery_level: 80,
        voltage: 3.7,
        extra: '{"other":1}',
        time: 99,
      }),
    ).toMatchObject({
      variant: 'device',
      time: 99,
      metrics: { batteryLevel: 80, voltage: 3.7, other: 1 },
    })
  })

  it('messages: the same from either dialect', () => {
    const row = {
      ...base,
      channel: 'LongFast',
      packet_id: 9,
      from_num: 1,
      to_num: 0xffffffff,
      rx_time: 5,
      type: 'text',
      text: 'hi',
      reply_id: null,
      emoji: null,
      hops_away: 2,
    }
    const a = messageRow({ ...row, direct: 0, is_reaction: 1 }, sqliteLike)
    const b = messageRow({ ...row, direct: false, is_reaction: true }, pgLike)
    expect(a).toEqual(b)
    expect(a).toEqual({
      key: '1:2',
      id: 9,
      from: 1,
      fromId: '!00000001',
      to: 0xffffffff,
      toId: '!ffffffff',
      at: 5000,
      rxTime: 5,
      direct: false,
      type: 'text',
      text: 'hi',
      isReaction: true,
      channel: 'LongFast',
      hopsAway: 2,
      gatewayId: '!a0c0ffee',
    })
  })

  it('packets: the unpacked packet, its port name and its reception count', () => {
    const packet = {
      kind: 'decoded',
      from: 1,
      to: 0xffffffff,
      id: 2,
      portnum: 1,
      portnumName: 'TEXT_MESSAGE_APP',
      app: { type: 'text', text: 'hi' },
    } as unknown as DecodedPacket
    const json = packPacket(packet)
    const row = packetRow({
      ...base,
      packet_id: 2,
      from_num: 1,
      to_num: 0xffffffff,
      portnum: 1,
      rx_time: 5,
      receptions: 3,
      hops_away: null,
      json,
    })
    expect(row).toMatchObject({ portnum: 1, portnumName: 'TEXT_MESSAGE_APP', receptions: 3 })
    expect(row.packet).toEqual(unpackPacket(json))
    expect(storedPacket({ key: '1:2', received_at: 5000, json })).toEqual({
      key: '1:2',
      packet: unpackPacket(json),
      receivedAt: 5000,
    })
  })

  it('receptions: class names, the app JSON, and the sender and port of list rows', () => {
    const r = {
      ...base,
      rx_time: 5,
      rx_snr: 1,
      rx_rssi: -100,
      hop_limit: 2,
      hop_start: 3,
      class: 4,
      topic: 'msh/x',
      source: null,
      relay_node: null,
      hops_away: 1,
      app: '{"type":"text","text":"hi"}',
      from_num: 7,
      portnum: null,
    }
    expect(receptionOf(r)).toEqual({
      packetKey: '1:2',
      rxTime: 5,
      receivedAt: 5000,
      rxSnr: 1,
      rxRssi: -100,
      hopLimit: 2,
      hopStart: 3,
      receptionClass: 'relayed',
      gatewayId: '!a0c0ffee',
      topic: 'msh/x',
      hopsAway: 1,
      app: { type: 'text', text: 'hi' },
    })
    expect(receptionRow(r)).toEqual({ ...receptionOf(r), from: 7, fromId: '!00000007' })
    expect(receptionOf({ ...r, class: 99 }).receptionClass).toBe('unknown')
  })

  it('traceroutes: the route JSON, a reply when it has a request id', () => {
    const route = { route: [2], snrTowardsDb: [1.5] }
    const row = { ...base, from_num: 1, to_num: 2, route: JSON.stringify(route) }
    expect(tracerouteRow({ ...row, request_id: null })).toEqual({
      key: '1:2',
      from: 1,
      fromId: '!00000001',
      to: 2,
      toId: '!00000002',
      at: 5000,
      isReply: false,
      ...route,
      gatewayId: '!a0c0ffee',
    })
    expect(tracerouteRow({ ...row, request_id: 77 })).toMatchObject({
      isReply: true,
      requestId: 77,
    })
  })

  it('gateway stats: medians when computed, absent or NULL left out', () => {
    const r = {
      gateway_id: '!a0c0ffee',
      num: null,
      packets: 10,
      nodes: 3,
      direct: 4,
      first_heard: 1,
      last_heard: 2,
    }
    expect(gatewayStatsRow(r)).toEqual({
      gatewayId: '!a0c0ffee',
      packets: 10,
      nodes: 3,
      direct: 4,
      firstHeard: 1,
      lastHeard: 2,
    })
    expect(gatewayStatsRow({ ...r, median_snr: null, median_rssi: -90 })).not.toHaveProperty(
      'medianSnr',
    )
    expect(gatewayStatsRow({ ...r, num: 5, median_snr: 2.5, median_rssi: -90 })).toMatchObject({
      num: 5,
      medianSnr: 2.5,
      medianRssi: -90,
    })
  })

  it('every keyset list is tagged with its own name', () => {
    for (const [name, spec] of Object.entries(TIME_LISTS)) expect(spec.list).toBe(name)
  })
})
