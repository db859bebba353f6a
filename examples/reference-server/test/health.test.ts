import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getJson, startTestServer, TOKEN, until } from './helpers.js'

let t: Awaited<ReturnType<typeof startTestServer>>
let base: string
const auth = { authorization: `Bearer ${TOKEN}` }

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return port
}

beforeAll(async () => {
  const port = await closedPort()
  t = await startTestServer([
    `--broker=mqtt://user:hunter2-secret@127.0.0.1:${port}?topic=msh/EU_868/%23`,
  ])
  base = t.server.url
})
afterAll(async () => {
  await t?.close()
})

describe('health', () => {
  it('is 503 (degraded) while an upstream broker cannot be reached, and says which', async () => {
    const h = await until(async () => {
      const r = await getJson(`${base}/api/health`)
      return r.status === 503 ? r : undefined
    })
    expect(h.body.status).toBe('degraded')
    expect(h.body.database.ok).toBe(true)
    const broker = h.body.sources.items.find((s: { id: string }) => s.id === 'broker-1')
    expect(broker).toMatchObject({
      kind: 'broker',
      state: expect.stringMatching(/reconnecting|offline/),
    })
    expect(broker.endpoint).not.toContain('hunter2')
    expect(JSON.stringify(h.body)).not.toContain('hunter2')
    const metrics = await (await fetch(`${base}/metrics`)).text()
    expect(metrics).toMatch(/^meshtap_source_up\{source="broker-1",kind="broker"\} 0/m)
    expect(metrics).not.toContain('hunter2')
  })

  it('is 200 again once the operator stops that source', async () => {
    const stop = await getJson(`${base}/api/control/sources/broker-1/stop`, {
      method: 'POST',
      headers: auth,
    })
    expect(stop.body.source.state).toBe('stopped')
    const h = await getJson(`${base}/api/health`)
    expect(h.status).toBe(200)
    expect(h.body.status).toBe('ok')
  })
})
