/**
 * Writes examples/sample-traffic.ndjson: a small, deterministic sample of Meshtastic MQTT traffic made
 * with meshtap's own encoder (no captured data), in the input format of `meshtap decode`.
 * Run: pnpm tsx --conditions=@meshtap/source scripts/make-sample.ts
 */
import { writeFileSync } from 'node:fs'
import { encodeEnvelope, encodeMeshPacket } from '@meshtap/core'
import { bytesToBase64, PortNum } from '@meshtap/protocol'

const root = 'msh/US/CA/bayarea'
const gw = '!a0c0ffee'
const t = 1_764_288_000
const lines: object[] = []
const add = (topic: string | null, bytes: Uint8Array, extra: object = {}) =>
  lines.push({ topic, payload: bytesToBase64(bytes), ...extra })
const common = {
  hopStart: 3,
  hopLimit: 2,
  rxTime: t,
  rxSnr: 6.25,
  rxRssi: -92,
  bitfield: 1,
  gatewayId: gw,
}

add(
  `${root}/2/e/LongFast/${gw}`,
  encodeEnvelope({
    ...common,
    from: 0x1f2e3d4c,
    id: 0x5a000001,
    portnum: PortNum.NODEINFO_APP,
    payload: {
      id: '!1f2e3d4c',
      longName: 'Ridge Repeater',
      shortName: 'RDG',
      hwModel: 'RAK4631',
      role: 'ROUTER',
    },
  }),
)
add(
  `${root}/2/e/LongFast/${gw}`,
  encodeEnvelope({
    ...common,
    from: 0x1f2e3d4c,
    id: 0x5a000002,
    portnum: PortNum.POSITION_APP,
    payload: {
      latitudeI: 377749000,
      longitudeI: -1224194000,
      altitude: 412,
      time: t,
      precisionBits: 14,
    },
  }),
)
add(
  `${root}/2/e/LongFast/${gw}`,
  encodeEnvelope({
    ...common,
    from: 0x1f2e3d4c,
    id: 0x5a000003,
    portnum: PortNum.TELEMETRY_APP,
    payload: {
      time: t,
      deviceMetrics: {
        batteryLevel: 87,
        voltage: 4.01,
        channelUtilization: 12.5,
        airUtilTx: 1.2,
        uptimeSeconds: 86400,
      },
    },
  }),
)
add(
  `${root}/2/e/LongFast/${gw}`,
  encodeEnvelope({
    ...common,
    hopLimit: 3,
    from: 0x2b3c4d5e,
    id: 0x11000001,
    portnum: PortNum.TEXT_MESSAGE_APP,
    payload: 'Hello from the ridge 👋',
  }),
)
add(
  `${root}/2/e/LongFast/!b1c2d3e4`,
  encodeEnvelope({
    ...common,
    gatewayId: '!b1c2d3e4',
    rxSnr: -7.5,
    rxRssi: -118,
    hopLimit: 1,
    from: 0x2b3c4d5e,
    id: 0x11000001,
    portnum: PortNum.TEXT_MESSAGE_APP,
    payload: 'Hello from the ridge 👋',
  }),
)
add(
  `${root}/2/map/`,
  encodeEnvelope({
    from: 0xa0c0ffee,
    id: 0,
    gatewayId: gw,
    encrypt: false,
    portnum: PortNum.MAP_REPORT_APP,
    payload: {
      longName: 'Bay Gateway',
      shortName: 'BAYG',
      hwModel: 'HELTEC_V3',
      firmwareVersion: '2.7.15',
      region: 'US',
      modemPreset: 'LONG_FAST',
      hasDefaultChannel: true,
      latitudeI: 377749000,
      longitudeI: -1224194000,
      positionPrecision: 14,
      numOnlineLocalNodes: 23,
    },
  }),
)
add(
  `${root}/2/e/Hikers/${gw}`,
  encodeEnvelope({
    ...common,
    from: 0x2b3c4d5e,
    id: 0x11000002,
    channel: { name: 'Hikers', psk: 'c2VjcmV0LWhpa2Vycy1rZXk=' },
    portnum: PortNum.TEXT_MESSAGE_APP,
    payload: 'meet at the trailhead',
  }),
)
add(
  `${root}/2/e/PKI/${gw}`,
  encodeEnvelope({
    ...common,
    from: 0x2b3c4d5e,
    to: 0x1f2e3d4c,
    id: 0x11000003,
    channelId: 'PKI',
    channelField: 0,
    pkiEncrypted: true,
    channel: { name: 'x', psk: 'AQ==' },
    portnum: PortNum.TEXT_MESSAGE_APP,
    payload: 'a direct message nobody else can read',
  }),
)
add(
  null,
  encodeMeshPacket({
    from: 0x3c4d5e6f,
    id: 0x22000001,
    portnum: PortNum.TRACEROUTE_APP,
    hopStart: 3,
    hopLimit: 1,
    payload: { route: [0x1f2e3d4c], snrTowards: [25, -12] },
    requestId: 0x21000009,
    bitfield: 1,
  }),
  { kind: 'meshpacket' },
)
lines.push({
  topic: `${root}/2/json/LongFast/${gw}`,
  encoding: 'json',
  payload: JSON.stringify({
    channel: 0,
    from: 0x1f2e3d4c,
    id: 0x5a000004,
    payload: { text: 'legacy JSON uplink' },
    sender: gw,
    timestamp: t,
    to: 0xffffffff,
    type: 'text',
  }),
})
add('msh/US/2/stat/!a0c0ffee', new TextEncoder().encode('online'))

writeFileSync(
  new URL('../examples/sample-traffic.ndjson', import.meta.url),
  `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`,
)
console.log(`wrote ${lines.length} lines to examples/sample-traffic.ndjson`)
