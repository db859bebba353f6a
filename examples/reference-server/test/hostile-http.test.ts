/**
 * Issue 9, hostile input: hostile HTTP parameters on every reference-server route (SQL
 * metacharacters, huge numbers, negative/zero/NaN page sizes, bad cursors, bad node ids, overlong
 * strings, repeated and array parameters, NUL bytes, path traversal) and hostile WebSocket frames
 * through the server's /api/live. Nothing may answer 5xx; a refusal is a 4xx with a JSON body
 * `{ statusCode, code, error, message }`; the server keeps serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { getJson, startTestServer, TOKEN, until } from './helpers.js'
import { createResultList } from './reliability-report.js'

let t: Awaited<ReturnType<typeof startTestServer>>
let base: string
const auth = { authorization: `Bearer ${TOKEN}` }
const summary = new Map<string, Map<number, number>>()
const rows = createResultList('hostile HTTP parameters (reference server)')

beforeAll(async () => {
  t = await startTestServer(['--rate-limit=0'])
  base = t.server.url
  // Wait for some data, so list routes have rows and cursors to page through.
  await until(async () => (await getJson(`${base}/api/packets?limit=5`)).body.items?.length >= 5)
})
afterAll(async () => {
  await t?.close()
  for (const [route, statuses] of summary) {
    rows.add({ input: route, result: [...statuses].map(([s, n]) => `${n}× ${s}`).join(', ') })
  }
  rows.print()
})

/** The parameters every time-ordered list route takes. */
const TIMED = ['limit', 'cursor', 'since', 'until', 'order', 'node', 'gateway']

const LIST_ROUTES: Record<string, string[]> = {
  '/api/nodes': ['limit', 'cursor', 'since', 'bbox', 'search', 'gateways'],
  '/api/positions': [...TIMED, 'channel', 'bbox'],
  '/api/telemetry': [...TIMED, 'channel', 'variant'],
  '/api/messages': [...TIMED, 'channel', 'to', 'direct'],
  '/api/packets': [...TIMED, 'channel', 'to', 'portnum'],
  '/api/traceroutes': TIMED,
  '/api/links': ['limit', 'cursor', 'since', 'node', 'source'],
  '/api/gateways': ['limit', 'cursor', 'since', 'until', 'gateway'],
}

/** Values every parameter is tried with. */
const HOSTILE_VALUES: string[] = [
  "' OR 1=1 --",
  '1; DROP TABLE packets',
  '"); DELETE FROM nodes; --',
  '%',
  '_',
  '\\',
  '-1',
  '0',
  '-0',
  'NaN',
  'Infinity',
  '-Infinity',
  '1e309',
  '9007199254740993',
  '99999999999999999999999999999999',
  '0x10',
  '1.5',
  ' 1',
  '',
  'null',
  'undefined',
  'true',
  '[]',
  '{}',
  '\u0000',
  '\uFFFF\u202E',
  '<script>alert(1)</script>',
  '../../../../etc/passwd',
  'x'.repeat(10_000),
  '!zzzzzzzz',
  '!ffffffff',
  '4294967296',
  'AAAA',
  'eyJ0IjoxfQ==',
  '____',
  '-90,-180,90,180',
  '90,0,-90,0',
  '1e999,0,0,0',
  '1,2,3',
  '1,2,3,4,5',
]

function record(route: string, status: number): void {
  const m = summary.get(route) ?? new Map<number, number>()
  summary.set(route, m)
  m.set(status, (m.get(status) ?? 0) + 1)
}

async function check(path: string, route: string, init?: RequestInit) {
  const res = await getJson(`${base}${path}`, init)
  record(route, res.status)
  expect(res.status, `${init?.method ?? 'GET'} ${path.slice(0, 200)}`).toBeLessThan(500)
  if (res.status >= 400) {
    expect(res.body, path.slice(0, 200)).toMatchObject({
      statusCode: res.status,
      code: expect.any(String),
      message: expect.any(String),
    })
    expect(res.headers.get('content-type')).toMatch(/application\/json/)
  }
  return res
}

describe('hostile input: HTTP parameters on every reference-server route', () => {
  it('list routes: every parameter with every hostile value answers < 500, refusals are JSON 4xx', async () => {
    for (const [route, params] of Object.entries(LIST_ROUTES)) {
      for (const param of params) {
        for (const value of HOSTILE_VALUES) {
          await check(`${route}?${param}=${encodeURIComponent(value)}`, route)
        }
        // Percent-escapes that are not UTF-8 (overlong NUL, a surrogate, a lone byte, a bare %).
        for (const raw of ['%C0%80', '%ED%A0%80', '%FF', '%', '%%41', '%u0041']) {
          await check(`${route}?${param}=${raw}`, route)
        }
        // Repeated, array-style and bracketed parameters.
        await check(`${route}?${param}=1&${param}=2`, route)
        await check(`${route}?${param}[]=1`, route)
        await check(`${route}?${param}[$ne]=1`, route)
      }
      await check(`${route}?nope=1`, route)
      await check(`${route}?${'a'.repeat(2000)}=1`, route)
    }
  }, 120_000)

  it('page sizes: negative, zero, NaN, huge and fractional limits are refused with 400', async () => {
    for (const limit of ['-1', '0', 'NaN', '1e309', '1001', '99999999999', '1.5', 'abc', '']) {
      const res = await check(`/api/packets?limit=${encodeURIComponent(limit)}`, '/api/packets')
      expect(res.status, `limit=${limit}`).toBe(400)
    }
    for (const since of ['-1', '1e309', '8640000000000000001', 'yesterday']) {
      const res = await check(`/api/positions?since=${since}`, '/api/positions')
      expect(res.status, `since=${since}`).toBe(400)
    }
    expect((await check('/api/positions?since=10&until=5', '/api/positions')).status).toBe(400)
  })

  it('cursors: forged, truncated, foreign and garbage cursors are 400, never 500', async () => {
    const page = await check('/api/packets?limit=2', '/api/packets')
    const real: string = page.body.nextCursor
    expect(typeof real).toBe('string')
    const forged = [
      real.slice(0, -3),
      `${real}AAAA`,
      real.split('').reverse().join(''),
      Buffer.from('{"t":-1,"k":"\' OR 1=1"}').toString('base64url'),
      Buffer.from(JSON.stringify([1e308, 'x'.repeat(300)])).toString('base64url'),
      Buffer.from(new Uint8Array(300).fill(0xff)).toString('base64').slice(0, 500),
      'A',
      '====',
    ]
    for (const cursor of forged) {
      const res = await check(`/api/packets?cursor=${encodeURIComponent(cursor)}`, '/api/packets')
      expect([200, 400], cursor).toContain(res.status)
    }
    // A cursor of one list used on another.
    const nodes = await check('/api/nodes?limit=1', '/api/nodes')
    if (nodes.body.nextCursor) {
      const res = await check(
        `/api/positions?cursor=${encodeURIComponent(nodes.body.nextCursor)}`,
        '/api/positions',
      )
      expect([200, 400]).toContain(res.status)
    }
  })

  it('node pages and diagnostics: bad node ids are 400/404 JSON, never 500', async () => {
    const invalid = [
      '!zzzzzzzz',
      '4294967296',
      '-1',
      "'%20OR%201=1",
      '..%2F..%2Fetc%2Fpasswd',
      '%00',
      'x'.repeat(5000),
      '1e3',
      '%F0%9F%92%A5',
      '%C0%80',
    ]
    for (const id of invalid) {
      for (const suffix of ['', '/diagnostics']) {
        const res = await check(`/api/nodes/${id}${suffix}`, `/api/nodes/:id${suffix}`)
        expect([400, 414], id).toContain(res.status)
      }
    }
    // Valid ids of nodes never heard: 404 for the node page; diagnostics explain what was seen.
    for (const id of ['!ffffffff', '0', '4294967295']) {
      expect((await check(`/api/nodes/${id}`, '/api/nodes/:id')).status).toBe(404)
      expect([200, 404]).toContain(
        (await check(`/api/nodes/${id}/diagnostics`, '/api/nodes/:id/diagnostics')).status,
      )
    }
  })

  it('status, docs and control routes: hostile input answers < 500', async () => {
    for (const path of [
      '/api/stats',
      '/api/config',
      '/api/health',
      '/metrics',
      '/api/openapi.json',
    ]) {
      await check(`${path}?limit=-1&x=${encodeURIComponent("' OR 1=1")}`, path)
    }
    // Control routes, with and without the token.
    for (const id of ['simulator', 'nope', "'; DROP", 'x'.repeat(500), '..', '%00']) {
      for (const action of ['start', 'stop']) {
        const route = `/api/control/sources/:id/${action}`
        await check(`/api/control/sources/${id}/${action}`, route, { method: 'POST' })
        const res = await check(`/api/control/sources/${id}/${action}`, route, {
          method: 'POST',
          headers: auth,
        })
        if (id !== 'simulator') expect([400, 404, 414]).toContain(res.status)
      }
    }
    await check('/api/control/sources', '/api/control/sources', {
      headers: { authorization: 'Bearer \u00ff\u00fe' },
    })
    await check('/api/control/sources', '/api/control/sources', {
      headers: { authorization: `Bearer ${'x'.repeat(8000)}` },
    })
    const bodies: unknown[] = [
      '{',
      '[]',
      'null',
      { name: "'; DROP TABLE keys; --", psk: 'AQ==' },
      { name: 'ok', psk: 'not base64 !!' },
      { name: 'x'.repeat(100), psk: 'AQ==' },
      { name: 'ok', psk: 'A'.repeat(1000) },
      { name: 'ok', psk: 'AQ==', extra: 1 },
      { name: 'a/b#', psk: 'AQ==' },
      { name: 'ok', psk: 'q2J5c2VjcmV0a2V5MTIzNA==X' },
      { __proto__: { admin: true }, name: 'ok' },
      'x'.repeat(20_000),
    ]
    for (const body of bodies) {
      const res = await check('/api/control/keys', '/api/control/keys (POST)', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      })
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBeGreaterThanOrEqual(400)
    }
    // A wrong content type.
    await check('/api/control/keys', '/api/control/keys (POST)', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'text/plain' },
      body: 'name=x&psk=AQ==',
    })
  })

  it('hostile WebSocket frames to /api/live: typed errors or clean closes, HTTP keeps serving', async () => {
    const url = `${base.replace('http', 'ws')}/api/live`
    const ws = new WebSocket(url, ['meshtap.v1'], { perMessageDeflate: false })
    const messages: { type: string; code?: string }[] = []
    ws.on('message', (d) => messages.push(JSON.parse(String(d))))
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)))
    await new Promise<void>((r, j) => {
      ws.once('open', () => r())
      ws.once('error', j)
    })
    ws.send(new Uint8Array([1, 2, 3]))
    ws.send('{"type":')
    ws.send('{"type":"subscribe","filter":{"bbox":{"south":1e999}}}')
    ws.send(JSON.stringify({ type: 'drop-tables' }))
    await until(async () => messages.filter((m) => m.type === 'error').length >= 4)
    expect(messages.filter((m) => m.type === 'error').map((m) => m.code)).toEqual([
      'BAD_MESSAGE',
      'BAD_JSON',
      'BAD_FILTER',
      'UNKNOWN_TYPE',
    ])
    ws.send('x'.repeat(1_000_000))
    expect(await closed).toBe(1009)
    expect((await getJson(`${base}/api/health`)).status).toBeLessThan(500)
    expect((await getJson(`${base}/api/packets?limit=1`)).status).toBe(200)
    rows.add({
      input:
        '/api/live: a binary frame, cut-off JSON, a bbox of 1e999, an unknown type, then a 1 MB frame',
      result: `error frames ${messages
        .filter((m) => m.type === 'error')
        .map((m) => m.code)
        .join(', ')}, then closed with ${await closed}; HTTP kept serving`,
    })
  })
})
