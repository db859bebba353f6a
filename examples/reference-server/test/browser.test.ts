import { appendFileSync, existsSync, mkdirSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { encodeEnvelope } from '@meshtap/core'
import { PortNum } from '@meshtap/protocol'
import mqtt from 'mqtt'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildWebUi, CHROMIUM, getJson, startTestServer, until } from './helpers.js'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const OUT = here('../test-output')
const available = existsSync(CHROMIUM)
if (!available && !process.env.CI) {
  console.warn(
    `\n  ⚠ browser test SKIPPED: ${CHROMIUM} not found (apt-get install -y chromium). It is required when CI is set.\n`,
  )
}

describe.skipIf(!available && !process.env.CI)('web UI in Chromium', () => {
  let t: Awaited<ReturnType<typeof startTestServer>>
  let browser: Browser
  let webDir: string | undefined

  beforeAll(async () => {
    if (!available)
      throw new Error(
        `CI is set but ${CHROMIUM} is missing: install chromium (apt-get install -y chromium)`,
      )
    webDir = buildWebUi()
    // No initial burst: the map starts (nearly) empty and fills while the page is open.
    t = await startTestServer(
      ['--simulate-rate=80', '--simulate-nodes=15', '--simulate-gateways=4'],
      { MESHTAP_SIMULATE_BURST: '0', MESHTAP_WEB_DIR: webDir },
    )
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    mkdirSync(OUT, { recursive: true })
  })
  afterAll(async () => {
    await browser?.close()
    await t?.close()
    if (webDir) rmSync(webDir, { recursive: true, force: true })
  })

  it('shows nodes appearing live on the map, then a node page with telemetry and gateways', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    page.setDefaultTimeout(8000)
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    const step = (what: string) =>
      process.env.DEBUG_BROWSER &&
      appendFileSync(process.env.DEBUG_BROWSER, `${Date.now() % 100000} ${what}\n`)
    await page.goto(t.server.url)
    step('loaded')
    const nodes = page.getByTestId('map-node')
    await until(async () => (await nodes.count()) > 0)
    const first = await nodes.count()
    // More nodes arrive over the WebSocket while the page is open. However slowly the browser
    // started (the simulator may have placed every node it will ever place by now), a node that
    // was never heard of before reports a position beside a node already on the map.
    const { body } = await getJson(`${t.server.url}/api/nodes?limit=1000`)
    const near = (body.items as { position?: { latitude: number; longitude: number } }[]).find(
      (n) => n.position,
    )?.position
    expect(near).toBeDefined()
    const newcomer = await mqtt.connectAsync(t.server.mqttUrl as string)
    try {
      const bytes = encodeEnvelope({
        from: 0x0e1e0001,
        id: 1,
        portnum: PortNum.POSITION_APP,
        payload: {
          latitudeI: Math.round((near?.latitude ?? 0) * 1e7) + 3000,
          longitudeI: Math.round((near?.longitude ?? 0) * 1e7) + 3000,
          precisionBits: 32,
        },
        encrypt: true,
        gatewayId: '!0e1e0001',
        hopStart: 3,
        hopLimit: 3,
        rxTime: Math.floor(Date.now() / 1000),
      })
      await newcomer.publishAsync('msh/US/2/e/LongFast/!0e1e0001', Buffer.from(bytes))
    } finally {
      await newcomer.endAsync()
    }
    await until(async () => (await nodes.count()) > first, 10_000)
    await until(async () => (await nodes.count()) >= 10, 8000).catch(() => undefined) // a fuller screenshot
    await expect(page.getByTestId('connection-state').textContent()).resolves.toMatch(/live/)
    await until(async () =>
      /ingest [1-9]/.test((await page.getByTestId('ingest-rate').textContent()) ?? ''),
    )
    step('nodes live')
    await page.screenshot({ path: `${OUT}/map.png` })
    step('map screenshot')

    // A node with telemetry and a position, chosen from the API, opened from the node list.
    const id = await until(async () => {
      const { body } = await getJson(`${t.server.url}/api/telemetry?variant=device&limit=100`)
      const counts = new Map<string, number>()
      for (const r of body.items) counts.set(r.nodeId, (counts.get(r.nodeId) ?? 0) + 1)
      const best = [...counts].sort((a, b) => b[1] - a[1])[0]
      return best && best[1] >= 2 ? best[0] : undefined
    }, 10_000)
    step(`node ${id}`)
    await page.getByRole('link', { name: 'Nodes' }).click()
    await page.getByTestId('node-search').fill(id)
    await page.getByTestId('node-row').first().click()
    await page.getByTestId('node-page').waitFor()
    step('node page')
    // Attached, not "visible": a series whose values are all equal is a horizontal line, whose
    // bounding box has no height, and Playwright calls a zero-size element hidden.
    await page.getByTestId('telemetry-line').waitFor({ state: 'attached' })
    step('chart')
    expect(await page.getByTestId('telemetry-line').getAttribute('d')).toMatch(/^M[\d.]+,[\d.]+ L/)
    await until(async () => (await page.getByTestId('node-gateway-row').count()) > 0)
    await expect(page.getByTestId('node-gateway-row').first().textContent()).resolves.toMatch(
      /!\w{8}.*dB/,
    )
    await page.getByTestId('diagnostics').waitFor()
    await page.screenshot({ path: `${OUT}/node.png`, fullPage: true })
    expect(errors).toEqual([])
  })
})
