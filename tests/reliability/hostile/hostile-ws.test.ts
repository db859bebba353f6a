/**
 * Issue 9, hostile input: malformed and hostile WebSocket traffic to `@meshtap/ws-server`, served
 * from a real HTTP server and fed by a real ingest with the mesh simulator. Each hostile client
 * must get a typed `error` frame or a clean close with a documented code (WIRE_CLOSE_CODES, or
 * the RFC 6455 codes `ws` uses for broken frames), while the server stays up and a well-behaved
 * "witness" client keeps receiving batches.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createIngest, createMemoryStore, createMeshSimulator, type Ingest } from '@meshtap/core'
import { WIRE_CLOSE_CODES } from '@meshtap/protocol'
import { createWsServer, type WsServer } from '@meshtap/ws-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  clientFrame,
  connectRecording,
  type RecordingClient,
  rawWebSocket,
} from '../lib/hostile-ws-client.js'
import { createResultList } from '../lib/report.js'

let http: Server
let live: WsServer
let ingest: Ingest
let url: string
let port: number
let feeder: ReturnType<typeof setInterval>
let witness: RecordingClient
const reported: string[] = []
const rows = createResultList('hostile WebSocket frames (ws-server)')

const MAX_MESSAGE = 4096
const MAX_FRAME = 4 * MAX_MESSAGE

beforeAll(async () => {
  ingest = createIngest({ store: createMemoryStore(), rateLimit: false })
  await ingest.start()
  const sim = createMeshSimulator({ seed: 4, nodes: 60, gateways: 4 })
  http = createServer((_req, res) => res.end('ok'))
  live = createWsServer({
    server: http,
    path: '/live',
    source: ingest,
    flushMs: 25,
    maxMessageBytes: MAX_MESSAGE,
    messagesPerSecond: 20,
    messageBurst: 20,
    maxBufferedBytes: 64 * 1024,
    maxStallMs: 300,
    resumeBatches: 20,
    onError: (e) => reported.push(`${e.code}: ${e.message}`),
  })
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()))
  port = (http.address() as AddressInfo).port
  url = `ws://127.0.0.1:${port}/live`
  // A steady stream of traffic for the whole file (about 400 envelopes a second).
  feeder = setInterval(() => {
    for (const m of sim.take(10)) ingest.push({ ...m, receivedAt: Date.now() })
  }, 25)
  witness = await connectRecording(url)
  witness.send({ type: 'subscribe', snapshot: false })
  await witness.next((m) => m.type === 'batch')
})

afterAll(async () => {
  clearInterval(feeder)
  await witness?.close()
  await live?.close()
  http?.closeAllConnections()
  await new Promise<void>((r) => http?.close(() => r()))
  await ingest?.stop()
  rows.print()
})

/** The witness got new batches after this point: the server is up and still serving others. */
async function witnessStillServed(): Promise<void> {
  const from = witness.messages.length
  await witness.next((m) => m.type === 'batch' && (m.events?.length ?? 0) > 0, from)
}

/** Sends `payload` and waits for the error frame it causes; the connection stays usable. */
async function expectError(c: RecordingClient, send: () => void, code: string, what: string) {
  const from = c.messages.length
  send()
  const e = await c.next((m) => m.type === 'error', from)
  expect(e.code, what).toBe(code)
  expect(typeof e.message).toBe('string')
  rows.add({ input: what, result: `error frame ${code}, connection kept` })
}

describe('hostile input: WebSocket frames to ws-server', () => {
  it('binary frames, invalid JSON, unknown types and bad fields get typed error frames', async () => {
    const c = await connectRecording(url)
    // Slow enough not to trip the message rate limit (20/s, burst 20).
    const cases: [() => void, string, string][] = [
      [() => c.ws.send(new Uint8Array([0, 1, 2, 255])), 'BAD_MESSAGE', 'binary frame'],
      [() => c.send('{"type":"subscribe"'), 'BAD_JSON', 'truncated JSON'],
      [() => c.send(''), 'BAD_JSON', 'empty text frame'],
      [
        () => c.send('{"type":"subscribe","filter":{"bbox":{"south":NaN}}}'),
        'BAD_JSON',
        'NaN literal',
      ],
      [() => c.send('null'), 'BAD_MESSAGE', 'JSON null'],
      [() => c.send('[1,2,3]'), 'BAD_MESSAGE', 'JSON array'],
      [
        () => c.send(`${'['.repeat(2000)}${']'.repeat(2000)}`),
        'BAD_MESSAGE',
        '2,000-deep nested array',
      ],
      [() => c.send({ type: 'rm -rf /' }), 'UNKNOWN_TYPE', 'unknown message type'],
      [() => c.send({ type: 42 }), 'BAD_MESSAGE', 'type not a string'],
      [
        () => c.send({ type: 'ping', id: 'x'.repeat(65) }),
        'BAD_MESSAGE',
        'request id of 65 characters',
      ],
      [() => c.send({ type: 'ping', id: 1e300 }), 'BAD_MESSAGE', 'request id 1e300'],
      [
        () => c.send({ type: 'hello', protocol: 'one' }),
        'BAD_MESSAGE',
        'hello with a string protocol',
      ],
    ]
    for (const [send, code, what] of cases) {
      await expectError(c, send, code, what)
      await new Promise((r) => setTimeout(r, 60))
    }
    // Still a working connection.
    c.send({ type: 'ping', id: 'alive' })
    await c.next((m) => m.type === 'pong' && m.id === 'alive')
    await c.close()
    await witnessStillServed()
  })

  it('subscribe with absurd filters, boxes, NaN/Infinity and resume values gets BAD_FILTER/BAD_MESSAGE', async () => {
    const c = await connectRecording(url)
    const sub = (filter: unknown) => () => c.send({ type: 'subscribe', filter })
    const cases: [() => void, string, string][] = [
      [
        () =>
          c.send(
            '{"type":"subscribe","filter":{"bbox":{"south":1e999,"west":0,"north":1,"east":1}}}',
          ),
        'BAD_FILTER',
        'bbox with 1e999 (Infinity)',
      ],
      [
        sub({ bbox: { south: 10, west: 0, north: -10, east: 1 } }),
        'BAD_FILTER',
        'bbox south > north',
      ],
      [
        sub({ bbox: { south: -91, west: -181, north: 91, east: 181 } }),
        'BAD_FILTER',
        'bbox out of range',
      ],
      [
        sub({ bbox: { south: '0', west: null, north: [], east: {} } }),
        'BAD_FILTER',
        'bbox of strings/null/arrays',
      ],
      [sub({ bbox: [1, 2, 3, 4] }), 'BAD_FILTER', 'bbox as an array'],
      [
        sub({ nodes: Array.from({ length: 1001 }, (_, i) => i) }),
        'BAD_FILTER',
        '1,001 node values (limit 1,000)',
      ],
      [sub({ nodes: [-1] }), 'BAD_FILTER', 'negative node number'],
      [sub({ nodes: [4294967296] }), 'BAD_FILTER', 'node number 2^32'],
      [sub({ nodes: [1.5] }), 'BAD_FILTER', 'fractional node number'],
      [sub({ nodes: ['!zzzzzzzz'] }), 'BAD_FILTER', 'bad node id'],
      [sub({ nodes: [] }), 'BAD_FILTER', 'empty list'],
      [sub({ channels: ['x'.repeat(300)] }), 'BAD_FILTER', 'channel name of 300 characters'],
      [sub({ roots: ['msh/#'] }), 'BAD_FILTER', 'MQTT wildcard in roots'],
      [sub({ kinds: ['drop'] }), 'BAD_FILTER', 'a kind the server does not carry'],
      [sub({ kinds: ["'; DROP TABLE nodes; --"] }), 'BAD_FILTER', 'SQL in kinds'],
      [
        () => c.send('{"type":"subscribe","filter":{"__proto__":{"admin":true}}}'),
        'BAD_FILTER',
        '__proto__ filter key',
      ],
      [sub('everything'), 'BAD_FILTER', 'filter as a string'],
      [
        () => c.send({ type: 'subscribe', resume: { epoch: 'x', fromSeq: -5 } }),
        'BAD_MESSAGE',
        'resume from a negative seq',
      ],
      [
        () => c.send({ type: 'subscribe', resume: { epoch: 'x', fromSeq: 1e300 } }),
        'BAD_MESSAGE',
        'resume from 1e300',
      ],
      [
        () => c.send({ type: 'subscribe', snapshot: 'yes' }),
        'BAD_MESSAGE',
        'snapshot not a boolean',
      ],
    ]
    for (const [send, code, what] of cases) {
      await expectError(c, send, code, what)
      await new Promise((r) => setTimeout(r, 60))
    }
    // A resume from an unknown epoch or far ahead is answered, not an error: snapshotNeeded.
    const from = c.messages.length
    c.send({ type: 'subscribe', resume: { epoch: 'not-this-server', fromSeq: 9007199254740991 } })
    const need = await c.next((m) => m.type === 'snapshotNeeded', from)
    expect(need.reason).toBe('epoch')
    rows.add({
      input: 'resume from another epoch, seq 2^53−1',
      result: 'subscribed + snapshotNeeded (reason epoch), then a snapshot',
    })
    // The whole-world box is valid and is served.
    c.send({
      type: 'subscribe',
      snapshot: false,
      filter: { bbox: { south: -90, west: -180, north: 90, east: 180 } },
    })
    await c.next((m) => m.type === 'batch', c.messages.length)
    await c.close()
    await witnessStillServed()
  })

  it('oversized messages get TOO_LARGE, frames beyond the hard limit close with 1009', async () => {
    const c = await connectRecording(url)
    await expectError(
      c,
      () => c.send({ type: 'ping', pad: 'x'.repeat(MAX_MESSAGE) }),
      'TOO_LARGE',
      `message of ${MAX_MESSAGE + 30} bytes (limit ${MAX_MESSAGE})`,
    )
    c.send({ type: 'ping', pad: 'x'.repeat(MAX_FRAME + 10) })
    expect((await c.closed).code).toBe(WIRE_CLOSE_CODES.MESSAGE_TOO_BIG)
    rows.add({
      input: `frame of ${MAX_FRAME + 30} bytes (hard limit ${MAX_FRAME})`,
      result: 'closed with 1009',
    })
    // A frame header announcing 2^32 bytes is refused on the header alone.
    const raw = await rawWebSocket('127.0.0.1', port, '/live')
    const header = Uint8Array.from([0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4])
    raw.socket.write(header)
    expect(await raw.closeCode).toBe(WIRE_CLOSE_CODES.MESSAGE_TOO_BIG)
    raw.socket.destroy()
    rows.add({
      input: 'frame header announcing 4 GiB',
      result: 'closed with 1009 before any payload',
    })
    await witnessStillServed()
  })

  it('broken frames (bad UTF-8, unmasked, reserved bits, bad opcodes, cut off mid-frame) close cleanly', async () => {
    const text = new TextEncoder().encode('{"type":"ping"}')
    const cases: [Uint8Array, number, string][] = [
      [
        clientFrame(1, Uint8Array.from([0x7b, 0xc0, 0x80, 0x7d])),
        1007,
        'text frame with invalid UTF-8',
      ],
      [clientFrame(1, text, { masked: false }), 1002, 'unmasked client frame'],
      [clientFrame(1, text, { rsv: 4 }), 1002, 'RSV1 set without permessage-deflate'],
      [clientFrame(3, text), 1002, 'reserved opcode 3'],
      [clientFrame(9, new Uint8Array(200)), 1002, 'ping control frame of 200 bytes'],
      [clientFrame(0, text), 1002, 'continuation frame with nothing to continue'],
      [clientFrame(8, Uint8Array.from([0x03])), 1002, 'close frame with a 1-byte body'],
    ]
    for (const [bytes, code, what] of cases) {
      const raw = await rawWebSocket('127.0.0.1', port, '/live')
      raw.socket.write(bytes)
      expect(await raw.closeCode, what).toBe(code)
      raw.socket.destroy()
      rows.add({ input: what, result: `closed with ${code}` })
    }
    // Half a frame, then the TCP connection vanishes.
    const raw = await rawWebSocket('127.0.0.1', port, '/live')
    raw.socket.write(clientFrame(1, text).subarray(0, 5))
    raw.socket.destroy()
    rows.add({
      input: 'half a frame, then the TCP connection is reset',
      result: 'connection cleaned up',
    })
    // A handshake naming only a subprotocol the server does not speak: `ws` completes it without
    // one (handleProtocols → false); the connection then speaks the meshtap protocol as usual.
    const other = await rawWebSocket('127.0.0.1', port, '/live', ['evil'])
    other.socket.write(clientFrame(8, Uint8Array.from([0x03, 0xe8])))
    expect(await other.closeCode).toBe(1000)
    other.socket.destroy()
    rows.add({
      input: 'handshake naming only an unknown subprotocol',
      result: 'accepted without a subprotocol; closes normally',
    })
    await witnessStillServed()
    await waitUntil(() => live.metrics().clients === 1)
  })

  it('a subscribe flood is rate limited (RATE_LIMITED), then closed with 1008', async () => {
    const flood = await connectRecording(url)
    for (let i = 0; i < 300; i++) {
      flood.send({
        type: 'subscribe',
        id: i,
        filter: { bbox: { south: -90, west: -180, north: 90, east: 180 } },
      })
    }
    await flood.next((m) => m.type === 'error' && m.code === 'RATE_LIMITED')
    expect((await flood.closed).code).toBe(WIRE_CLOSE_CODES.POLICY_VIOLATION)
    const answered = flood.messages.filter((m) => m.type === 'subscribed').length
    expect(answered).toBeLessThanOrEqual(21)
    rows.add({
      input: '300 subscribe messages at once',
      result: `${answered} answered, RATE_LIMITED error frame, then closed with 1008`,
    })
    expect(live.metrics().closedFlooding).toBeGreaterThanOrEqual(1)
    await witnessStillServed()
  })

  it('a client that stops reading is cut off (1013) and the others keep receiving', async () => {
    const slow = await connectRecording(url)
    slow.send({ type: 'subscribe', snapshot: false })
    await slow.next((m) => m.type === 'subscribed')
    const socket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
    socket.pause()
    const before = witness.batches()
    // Push extra traffic until the server gives up on the slow reader.
    const sim = createMeshSimulator({ seed: 8, nodes: 200, gateways: 6 })
    await waitUntil(() => {
      for (const m of sim.take(300)) ingest.push({ ...m, receivedAt: Date.now() })
      return live.metrics().closedSlow >= 1
    }, 20_000)
    socket.resume()
    const { code } = await slow.closed
    expect([WIRE_CLOSE_CODES.TRY_AGAIN_LATER, 1006]).toContain(code)
    rows.add({
      input: 'a subscriber that stops reading (socket paused)',
      result: `buffer capped at 64 KiB, closed with ${code} (1013 sent)`,
    })
    await witnessStillServed()
    expect(witness.batches()).toBeGreaterThan(before)
    // The witness saw every batch in order: nothing skipped while the slow client was handled.
    const seqs = witness.messages.filter((m) => m.type === 'batch').map((m) => m.seq as number)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1] as number)
  })

  it('after all that, the server is up, counted every error, and reported no internal failure', async () => {
    const m = live.metrics()
    expect(m.clientErrors).toBeGreaterThan(30)
    expect(reported.filter((r) => !r.startsWith('CLIENT_FAILED: WebSocket server error'))).toEqual(
      [],
    )
    const c = await connectRecording(url)
    c.send({ type: 'ping', id: 'final' })
    await c.next((x) => x.type === 'pong')
    await c.close()
    await witnessStillServed()
  })
})

async function waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 20))
  }
}
