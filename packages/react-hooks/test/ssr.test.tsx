// @vitest-environment node
import { renderToString } from 'react-dom/server'
import { expect, it } from 'vitest'
// Imported in a Node environment: no `window`, no `document`, no global WebSocket (Node 20).
import { MeshtapProvider, useConnection, useNodes, useStats } from '../src/index.js'

function View() {
  const { state } = useConnection()
  const nodes = useNodes()
  const { packets } = useStats()
  return <p>{`${state} ${nodes.length} ${packets}`}</p>
}

it('imports and renders without a DOM or a WebSocket', () => {
  expect(typeof window).toBe('undefined')
  expect(typeof document).toBe('undefined')
  const html = renderToString(
    <MeshtapProvider url="ws://127.0.0.1:9/never">
      <View />
    </MeshtapProvider>,
  )
  expect(html).toBe('<p>closed 0 0</p>')
})
