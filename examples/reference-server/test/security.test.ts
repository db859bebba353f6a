import { WIRE_SUBPROTOCOL, WIRE_TOKEN_PROTOCOL_PREFIX } from '@meshtap/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { getJson, startTestServer, TOKEN } from './helpers.js'

let t: Awaited<ReturnType<typeof startTestServer>>
let base: string

beforeAll(async () => {
  t = await startTestServer([
    '--protect-reads',
    '--cors-origin=https://map.example.org',
    '--rate-limit=40',
    '--tile-url=https://tiles.example.org/{z}/{x}/{y}.png',
  ])
  base = t.server.url
})
afterAll(async () => {
  await t?.close()
})

function connect(protocols: string[]): Promise<{ ok: boolean; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/live`, protocols)
    ws.once('open', () => {
      ws.close()
      resolve({ ok: true })
    })
    ws.once('unexpected-response', (_req, res) => resolve({ ok: false, status: res.statusCode }))
    ws.once('error', () => resolve({ ok: false }))
  })
}

describe('security', () => {
  it('protected reads need the token; health and the UI config do not', async () => {
    expect((await getJson(`${base}/api/nodes`)).status).toBe(401)
    expect((await getJson(`${base}/metrics`)).status).toBe(401)
    const ok = await getJson(`${base}/api/nodes`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(ok.status).toBe(200)
    expect((await getJson(`${base}/api/health`)).status).toBe(200)
    const cfg = await getJson(`${base}/api/config`)
    expect(cfg.body).toMatchObject({
      protectReads: true,
      tileUrl: 'https://tiles.example.org/{z}/{x}/{y}.png',
    })
  })

  it('the WebSocket needs the token too (as a subprotocol, for browsers)', async () => {
    expect(await connect([WIRE_SUBPROTOCOL])).toEqual({ ok: false, status: 401 })
    expect(
      await connect([WIRE_SUBPROTOCOL, `${WIRE_TOKEN_PROTOCOL_PREFIX}wrong-token-xxxxxxxx`]),
    ).toEqual({ ok: false, status: 401 })
    expect(await connect([WIRE_SUBPROTOCOL, `${WIRE_TOKEN_PROTOCOL_PREFIX}${TOKEN}`])).toEqual({
      ok: true,
    })
  })

  it('CORS answers only the allowed origins', async () => {
    const allowed = await fetch(`${base}/api/health`, {
      headers: { origin: 'https://map.example.org' },
    })
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://map.example.org')
    const other = await fetch(`${base}/api/health`, { headers: { origin: 'https://evil.example' } })
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
    const preflight = await fetch(`${base}/api/nodes`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://map.example.org',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    })
    expect(preflight.status).toBeLessThan(300)
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/authorization/i)
  })

  it('sends security headers, with the tile host allowed for images', async () => {
    const res = await fetch(`${base}/api/health`)
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN')
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'self'")
    expect(csp).toContain('img-src')
    expect(csp).toContain('https://tiles.example.org')
    expect(csp).not.toContain('upgrade-insecure-requests')
  })

  it('rate-limits each client with a JSON 429', async () => {
    let last: Response | undefined
    for (let i = 0; i < 60; i++) {
      last = await fetch(`${base}/api/config`)
      if (last.status === 429) break
    }
    expect(last?.status).toBe(429)
    const body = await last?.json()
    expect(body).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED' })
    expect(last?.headers.get('retry-after')).toBeTruthy()
    // Health checks are never rate-limited.
    expect((await fetch(`${base}/api/health`)).status).toBe(200)
  })
})
