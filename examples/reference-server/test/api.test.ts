import { WIRE_SUBPROTOCOL } from '@meshtap/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { getJson, startTestServer, TOKEN, until } from './helpers.js'

let t: Awaited<ReturnType<typeof startTestServer>>
let base: string
/** A node with a position, telemetry and gateways, found once the simulator has run a while. */
let nodeId: string
const auth = { headers: { authorization: `Bearer ${TOKEN}` } }

beforeAll(async () => {
  t = await startTestServer()
  base = t.server.url
  nodeId = await until(async () => {
    const { body } = await getJson(`${base}/api/telemetry?limit=50`)
    for (const row of body.items ?? []) {
      const n = await getJson(`${base}/api/nodes/${row.nodeId}`)
      if (n.body.position && n.body.gateways?.length > 0) return row.nodeId as string
    }
    return undefined
  })
})
afterAll(async () => {
  await t?.close()
})

describe('reads', () => {
  it('GET /api/nodes lists nodes, last heard first, with positions', async () => {
    const { status, body } = await getJson(`${base}/api/nodes?limit=1000`)
    expect(status).toBe(200)
    expect(body.items.length).toBeGreaterThan(5)
    const heard = body.items.map((n: { lastHeard: number }) => n.lastHeard)
    expect(heard).toEqual([...heard].sort((a, b) => b - a))
    expect(body.items.some((n: { position?: unknown }) => n.position)).toBe(true)
  })

  it('GET /api/nodes filters: gateways, search, bbox, since', async () => {
    const gw = await getJson(`${base}/api/nodes?gateways=true`)
    expect(gw.body.items.length).toBeGreaterThan(0)
    expect(gw.body.items.every((n: { isGateway: boolean }) => n.isGateway)).toBe(true)
    const search = await getJson(
      `${base}/api/nodes?search=${encodeURIComponent(nodeId.slice(0, 5))}`,
    )
    expect(search.body.items.map((n: { id: string }) => n.id)).toContain(nodeId)
    // The simulated mesh is around the San Francisco Bay.
    const bay = await getJson(`${base}/api/nodes?bbox=36,-124,39,-120`)
    expect(bay.body.items.length).toBeGreaterThan(0)
    const far = await getJson(`${base}/api/nodes?bbox=-10,10,-5,20`)
    expect(far.body.items).toEqual([])
    const future = await getJson(`${base}/api/nodes?since=${Date.now() + 3_600_000}`)
    expect(future.body.items).toEqual([])
  })

  it('GET /api/nodes/:id by id and by number, with gateways and their signal', async () => {
    const byId = await getJson(`${base}/api/nodes/${nodeId}`)
    expect(byId.status).toBe(200)
    expect(byId.body.id).toBe(nodeId)
    expect(byId.body.gateways[0]).toMatchObject({
      gatewayId: expect.stringMatching(/^!/),
      count: expect.any(Number),
    })
    const num = Number.parseInt(nodeId.slice(1), 16)
    const byNum = await getJson(`${base}/api/nodes/${num}`)
    expect(byNum.body.id).toBe(nodeId)
    const unknown = await getJson(`${base}/api/nodes/!00000001`)
    expect(unknown.status).toBe(404)
    expect(unknown.body.code).toBe('NOT_FOUND')
  })

  it('GET /api/nodes/:id/diagnostics explains what was seen', async () => {
    const { status, body } = await getJson(`${base}/api/nodes/${nodeId}/diagnostics`)
    expect(status).toBe(200)
    expect(body.onMap).toBe(true)
    expect(body.sinceStart.envelopes).toBeGreaterThan(0)
    expect(body.gateways.length).toBeGreaterThan(0)
    expect(body.findings.map((f: { code: string }) => f.code)).toContain('on-map')
    const never = await getJson(`${base}/api/nodes/!0badc0de/diagnostics`)
    expect(never.status).toBe(200)
    expect(never.body.onMap).toBe(false)
    expect(never.body.findings[0].code).toBe('never-seen')
  })

  it('diagnostics name the missing key for nodes on the simulated Hidden channel', async () => {
    const hidden = await until(async () => {
      const { body } = await getJson(`${base}/api/nodes?limit=1000`)
      for (const n of body.items) {
        const d = await getJson(`${base}/api/nodes/${n.id}/diagnostics`)
        if (d.body.findings.some((f: { code: string }) => f.code === 'no-key')) return d.body
      }
      return undefined
    })
    const finding = hidden.findings.find((f: { code: string }) => f.code === 'no-key')
    expect(finding.message).toMatch(/Hidden/)
    expect(finding.count).toBeGreaterThan(0)
  })

  it('GET /api/positions pages with cursors, without repeats', async () => {
    const first = await getJson(`${base}/api/positions?limit=5`)
    expect(first.status).toBe(200)
    expect(first.body.items).toHaveLength(5)
    expect(first.body.nextCursor).toEqual(expect.any(String))
    const second = await getJson(
      `${base}/api/positions?limit=5&cursor=${encodeURIComponent(first.body.nextCursor)}`,
    )
    expect(second.body.items.length).toBeGreaterThan(0)
    const keys = new Set(first.body.items.map((p: { key: string }) => p.key))
    for (const p of second.body.items) expect(keys.has(p.key)).toBe(false)
    const older = Math.min(...first.body.items.map((p: { at: number }) => p.at))
    for (const p of second.body.items) expect(p.at).toBeLessThanOrEqual(older)
  })

  it('GET /api/positions, /api/telemetry filter by node, variant, order and time', async () => {
    const pos = await getJson(`${base}/api/positions?node=${nodeId}&order=asc`)
    expect(pos.body.items.length).toBeGreaterThan(0)
    expect(pos.body.items.every((p: { nodeId: string }) => p.nodeId === nodeId)).toBe(true)
    const tel = await getJson(`${base}/api/telemetry?node=${nodeId}&variant=device`)
    expect(
      tel.body.items.every(
        (r: { variant: string; nodeId: string }) => r.variant === 'device' && r.nodeId === nodeId,
      ),
    ).toBe(true)
    const none = await getJson(`${base}/api/telemetry?until=1`)
    expect(none.body.items).toEqual([])
  })

  it('GET /api/messages, /api/packets, /api/traceroutes, /api/links, /api/gateways', async () => {
    const msgs = await until(async () => {
      const r = await getJson(`${base}/api/messages?channel=LongFast&limit=10`)
      return r.body.items.length > 0 ? r : undefined
    })
    expect(msgs.body.items.every((m: { channel: string }) => m.channel === 'LongFast')).toBe(true)
    const packets = await getJson(`${base}/api/packets?portnum=3,67&limit=20`)
    expect(
      packets.body.items.every((p: { portnum: number }) => p.portnum === 3 || p.portnum === 67),
    ).toBe(true)
    const tr = await until(async () => {
      const r = await getJson(`${base}/api/traceroutes?limit=5`)
      return r.body.items.length > 0 ? r : undefined
    })
    expect(tr.body.items[0].route).toEqual(expect.any(Array))
    const links = await getJson(`${base}/api/links?limit=10`)
    expect(links.status).toBe(200)
    expect(links.body.items.length).toBeGreaterThan(0)
    const direct = await getJson(
      `${base}/api/links?source=direct&node=${links.body.items[0].fromId}`,
    )
    expect(direct.body.items.every((l: { source: string }) => l.source === 'direct')).toBe(true)
    const gws = await getJson(`${base}/api/gateways?limit=2`)
    expect(gws.body.items).toHaveLength(2)
    expect(gws.body.items[0]).toMatchObject({
      gatewayId: expect.any(String),
      packets: expect.any(Number),
    })
    const next = await getJson(
      `${base}/api/gateways?limit=2&cursor=${encodeURIComponent(gws.body.nextCursor)}`,
    )
    expect(next.body.items[0].gatewayId > gws.body.items[1].gatewayId).toBe(true)
  })

  it('GET /api/stats, /api/health, /api/config, /metrics, /api/openapi.json', async () => {
    const stats = await getJson(`${base}/api/stats`)
    expect(stats.body.ingest.received).toBeGreaterThan(0)
    expect(stats.body.rate.envelopesPerSec).toBeGreaterThan(0)
    expect(stats.body.store.packets).toBeGreaterThan(0)
    const health = await getJson(`${base}/api/health`)
    expect(health.status).toBe(200)
    expect(health.body).toMatchObject({
      status: 'ok',
      database: { ok: true },
      sources: { ok: true },
      websocket: { ok: true },
      memory: { ok: true },
    })
    const cfg = await getJson(`${base}/api/config`)
    expect(cfg.body).toMatchObject({ livePath: '/api/live', tileUrl: null })
    expect(JSON.stringify(cfg.body)).not.toContain(TOKEN)
    const metrics = await fetch(`${base}/metrics`)
    const text = await metrics.text()
    expect(metrics.headers.get('content-type')).toMatch(/text\/plain/)
    expect(text).toMatch(/^meshtap_messages_received_total \d+/m)
    expect(text).toMatch(/^meshtap_http_requests_total\{/m)
    expect(text).toMatch(/^meshtap_source_up\{source="simulator",kind="simulator"\} 1/m)
    const oas = await getJson(`${base}/api/openapi.json`)
    expect(oas.body.openapi).toMatch(/^3\./)
    for (const path of [
      '/api/nodes',
      '/api/nodes/{id}',
      '/api/nodes/{id}/diagnostics',
      '/api/positions',
      '/api/telemetry',
      '/api/messages',
      '/api/traceroutes',
      '/api/links',
      '/api/gateways',
      '/api/stats',
      '/api/health',
      '/api/control/keys',
    ]) {
      expect(Object.keys(oas.body.paths)).toContain(path)
    }
  })

  it('the WebSocket at /api/live sends a snapshot of nodes, then live batches', async () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/live`, [WIRE_SUBPROTOCOL])
    const got: { type: string; nodes?: unknown[]; events?: unknown[] }[] = []
    ws.on('message', (data) => got.push(JSON.parse(String(data))))
    await new Promise((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    ws.send(JSON.stringify({ type: 'subscribe', id: 1 }))
    await until(async () => got.some((m) => m.type === 'snapshot' && (m.nodes?.length ?? 0) > 0))
    await until(async () => got.some((m) => m.type === 'batch' && (m.events?.length ?? 0) > 0))
    expect(got[0]?.type).toBe('hello')
    ws.close()
  })
})

describe('bad requests get a 4xx with a JSON error, never a 500', () => {
  const bad: [string, number][] = [
    ['/api/nodes?limit=-1', 400],
    ['/api/nodes?limit=0', 400],
    ['/api/nodes?limit=1001', 400],
    ['/api/nodes?limit=99999999999999999999999', 400],
    ['/api/nodes?limit=1e400', 400],
    ['/api/nodes?limit=abc', 400],
    ['/api/nodes?since=-5', 400],
    ['/api/nodes?bbox=1,2,3', 400],
    ['/api/nodes?bbox=100,0,101,1', 400],
    ['/api/nodes?unknown=1', 400],
    ['/api/nodes?search=', 400],
    [`/api/nodes?search=${'x'.repeat(65)}`, 400],
    ['/api/nodes/!zzzz', 400],
    ['/api/nodes/9999999999', 400],
    ["/api/nodes/1'%20OR%201=1", 400],
    ['/api/positions?cursor=abc', 400],
    ['/api/positions?cursor=%27%3B%20DROP%20TABLE%20positions%3B--', 400],
    ['/api/positions?node=1;DROP%20TABLE%20nodes', 400],
    ['/api/positions?order=sideways', 400],
    ['/api/positions?since=10&until=5', 400],
    ['/api/telemetry?variant=nope', 400],
    ['/api/messages?direct=maybe', 400],
    ['/api/packets?portnum=1;2', 400],
    ['/api/links?source=rumour', 400],
    ['/api/gateways?gateway=abc', 400],
    ['/api/nowhere', 404],
    ['/metrics?x=1', 200],
  ]
  it.each(bad)('GET %s → %i', async (path, code) => {
    const res = await fetch(`${base}${path}`)
    expect(res.status).toBe(code)
    if (path.startsWith('/metrics')) return
    expect(res.headers.get('content-type')).toMatch(/application\/json/)
    const body = await res.json()
    expect(body).toMatchObject({
      statusCode: code,
      code: expect.any(String),
      message: expect.any(String),
    })
    expect(JSON.stringify(body)).not.toMatch(/at .+\.ts:\d+|node_modules/)
  })

  it('SQL metacharacters in a search are data, not SQL', async () => {
    const before = await getJson(`${base}/api/stats`)
    const r = await getJson(
      `${base}/api/nodes?search=${encodeURIComponent("'; DROP TABLE nodes; --")}`,
    )
    expect(r.status).toBe(200)
    expect(r.body.items).toEqual([])
    const pct = await getJson(`${base}/api/nodes?search=${encodeURIComponent('%_')}`)
    expect(pct.status).toBe(200)
    const after = await getJson(`${base}/api/nodes`)
    expect(after.body.items.length).toBeGreaterThan(0)
    expect(before.status).toBe(200)
  })

  it('bad bodies: not JSON, wrong fields, too large', async () => {
    const post = (body: string, type = 'application/json') =>
      fetch(`${base}/api/control/keys`, {
        method: 'POST',
        headers: { ...auth.headers, 'content-type': type },
        body,
      })
    expect((await post('{nope')).status).toBe(400)
    expect((await post(JSON.stringify({ name: 'X' }))).status).toBe(400)
    expect((await post(JSON.stringify({ name: 'X', psk: 'AQ==', extra: 1 }))).status).toBe(400)
    expect((await post(JSON.stringify({ name: 'a/b', psk: 'AQ==' }))).status).toBe(400)
    expect((await post(JSON.stringify({ name: 'X', psk: 'A'.repeat(60) }))).status).toBe(400) // 45 bytes
    expect((await post('x'.repeat(20_000))).status).toBe(413)
    expect((await post('name=x', 'text/plain')).status).toBe(400)
  })
})

describe('control API', () => {
  it('needs the token', async () => {
    const none = await getJson(`${base}/api/control/sources`)
    expect(none.status).toBe(401)
    const wrong = await getJson(`${base}/api/control/sources`, {
      headers: { authorization: 'Bearer nope' },
    })
    expect(wrong.status).toBe(401)
    const ok = await getJson(`${base}/api/control/sources`, auth)
    expect(ok.status).toBe(200)
    expect(ok.body.items.map((s: { id: string }) => s.id)).toEqual(['embedded', 'simulator'])
    expect(JSON.stringify(ok.body)).not.toContain(TOKEN)
  })

  it('stops and starts a source', async () => {
    const stop = await getJson(`${base}/api/control/sources/simulator/stop`, {
      method: 'POST',
      ...auth,
    })
    expect(stop.body.source.state).toBe('stopped')
    const health = await getJson(`${base}/api/health`)
    expect(health.status).toBe(200) // stopped on purpose is not degraded
    const start = await getJson(`${base}/api/control/sources/simulator/start`, {
      method: 'POST',
      ...auth,
    })
    expect(start.body.source.state).toBe('running')
    const missing = await getJson(`${base}/api/control/sources/nope/start`, {
      method: 'POST',
      ...auth,
    })
    expect(missing.status).toBe(404)
  })

  it('adds a channel key and re-decrypts the kept packets', async () => {
    const before = await getJson(`${base}/api/stats`)
    expect(before.body.store.undecoded).toBeGreaterThan(0)
    const r = await getJson(`${base}/api/control/keys`, {
      method: 'POST',
      headers: { ...auth.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Hidden', psk: 'c2ltdWxhdGVkLXNlY3JldA==' }),
    })
    expect(r.status).toBe(200)
    expect(r.body.redecrypt.decoded).toBeGreaterThan(0)
    expect(JSON.stringify(r.body)).not.toContain('c2ltdWxhdGVkLXNlY3JldA==')
    const keys = await getJson(`${base}/api/control/keys`, auth)
    expect(keys.body.items).toEqual([{ name: 'Hidden' }])
    const msgs = await until(async () => {
      const m = await getJson(`${base}/api/packets?channel=Hidden&limit=5`)
      return m.body.items.length > 0 ? m : undefined
    })
    expect(msgs.body.items[0].channel).toBe('Hidden')
  })
})
