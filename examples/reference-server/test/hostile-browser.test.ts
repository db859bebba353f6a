import { existsSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { encodeEnvelope } from '@meshtap/core'
import { PortNum } from '@meshtap/protocol'
import mqtt from 'mqtt'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildWebUi, CHROMIUM, getJson, startTestServer, until } from './helpers.js'
import { reportResult } from './reliability-report.js'

const _here = (p: string) => fileURLToPath(new URL(p, import.meta.url))
const available = existsSync(CHROMIUM)

const NODE = 0x0badc0de
const NODE_ID = '!0badc0de'
const OTHER = 0x0badc0df
const GATEWAY = '!0badc0de'
const LONG_NAME = '<img src=x onerror="window.__xss=1">'
const SHORT_NAME = '<b>'
const OTHER_NAME = '\u202Egnp.exe\u202C <script>window.__xss=2</script>'
const TEXT =
  '<script>window.__xss=3</script><img src=x onerror="window.__xss=4"> javascript:window.__xss=5'
const BAD_UTF8_TEXT = Uint8Array.from([
  0x68, 0x69, 0x20, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0x3c, 0x69, 0x3e,
])

describe.skipIf(!available && !process.env.CI)(
  'hostile names and texts in the web UI (Chromium)',
  () => {
    let t: Awaited<ReturnType<typeof startTestServer>>
    let browser: Browser
    let webDir: string | undefined

    beforeAll(async () => {
      if (!available)
        throw new Error(`CI is set but ${CHROMIUM} is missing (apt-get install -y chromium)`)
      webDir = buildWebUi('meshtap-web-hostile-')
      t = await startTestServer(
        ['--simulate-rate=5', '--simulate-nodes=5', '--simulate-gateways=1'],
        {
          MESHTAP_SIMULATE_BURST: '0',
          MESHTAP_WEB_DIR: webDir,
        },
      )
      // The hostile node: names with markup, a position, and messages, published like a gateway.
      const client = await mqtt.connectAsync(t.server.mqttUrl as string)
      let id = 1000
      const publish = async (from: number, portnum: number, payload: unknown, encrypt = true) => {
        const bytes = encodeEnvelope({
          from,
          id: id++,
          portnum,
          payload: payload as string,
          encrypt,
          gatewayId: GATEWAY,
          hopStart: 3,
          hopLimit: 3,
          rxSnr: 6,
          rxRssi: -70,
          rxTime: Math.floor(Date.now() / 1000),
        })
        await client.publishAsync(`msh/US/2/e/LongFast/${GATEWAY}`, Buffer.from(bytes))
      }
      await publish(NODE, PortNum.NODEINFO_APP, {
        id: NODE_ID,
        longName: LONG_NAME,
        shortName: SHORT_NAME,
        hwModel: 'HELTEC_V3',
      })
      await publish(OTHER, PortNum.NODEINFO_APP, {
        id: '!0badc0df',
        longName: OTHER_NAME,
        shortName: '\u0000x',
      })
      await publish(NODE, PortNum.POSITION_APP, {
        latitudeI: 377749000,
        longitudeI: -1224194000,
        precisionBits: 32,
      })
      await publish(NODE, PortNum.TEXT_MESSAGE_APP, TEXT)
      await publish(OTHER, PortNum.TEXT_MESSAGE_APP, BAD_UTF8_TEXT, false)
      await client.endAsync()
      await until(async () => {
        const n = await getJson(`${t.server.url}/api/nodes/${NODE_ID}`)
        const m = await getJson(`${t.server.url}/api/messages?limit=100`)
        return n.status === 200 && n.body.longName === LONG_NAME && m.body.items?.length >= 2
      })
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--no-first-run',
          '--disable-background-networking',
        ],
      })
    })
    afterAll(async () => {
      await browser?.close()
      await t?.close()
      if (webDir) rmSync(webDir, { recursive: true, force: true })
    })

    it('shows markup in names and texts as text, and no script runs', async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
      page.setDefaultTimeout(10_000)
      const errors: string[] = []
      const dialogs: string[] = []
      page.on('pageerror', (e) => errors.push(e.message))
      page.on('dialog', (d) => {
        dialogs.push(d.message())
        void d.dismiss()
      })
      const noScriptRan = async (where: string) => {
        const state = await page.evaluate(() => ({
          xss: (window as unknown as { __xss?: unknown }).__xss,
          injectedImages: document.querySelectorAll('img[src="x"], img[onerror]').length,
          injectedScripts: [...document.querySelectorAll('script')].filter((s) =>
            s.textContent?.includes('__xss'),
          ).length,
          handlers: document.querySelectorAll('[onerror], [onload]').length,
        }))
        expect(state, where).toEqual({
          xss: undefined,
          injectedImages: 0,
          injectedScripts: 0,
          handlers: 0,
        })
      }

      // Node list: the name is text.
      await page.goto(`${t.server.url}/#/nodes`)
      await page.getByTestId('node-search').fill(NODE_ID)
      const row = page.getByTestId('node-row').filter({ hasText: NODE_ID })
      await row.first().waitFor()
      expect(await row.first().textContent()).toContain(LONG_NAME)
      await noScriptRan('node list')

      // Node page: long name as text.
      await page.goto(`${t.server.url}/#/node/${NODE_ID}`)
      await page.getByTestId('node-page').waitFor()
      await until(async () =>
        ((await page.getByTestId('node-page').textContent()) ?? '').includes(LONG_NAME),
      )
      await noScriptRan('node page')

      // Messages: the text with markup, and the invalid UTF-8 text (shown with U+FFFD).
      await page.goto(`${t.server.url}/#/messages`)
      const messages = page.getByTestId('messages')
      await until(async () => ((await messages.textContent()) ?? '').includes(TEXT))
      await until(async () => ((await messages.textContent()) ?? '').includes('hi \uFFFD'))
      expect(await messages.textContent()).toContain('<script>window.__xss=3</script>')
      await noScriptRan('messages')

      // Map: the node's label.
      await page.goto(`${t.server.url}/#/map`)
      await until(async () => (await page.getByTestId('map-node').count()) > 0)
      await noScriptRan('map')

      await page.waitForTimeout(500) // let any deferred handler (an image error) fire
      await noScriptRan('after a pause')
      expect(dialogs).toEqual([])
      expect(errors).toEqual([])
      reportResult('hostile markup in the web UI (reference server, Chromium)', {
        input: `node names ${LONG_NAME}, ${SHORT_NAME} and ${OTHER_NAME}; texts ${TEXT} and one with invalid UTF-8; published over MQTT`,
        result: `shown as text on the node list, node page, messages (U+FFFD for the bad bytes) and map; no script ran (window.__xss unset), ${dialogs.length} dialogs, ${errors.length} page errors, no element created from the payload`,
      })
      await page.close()
    })
  },
)
