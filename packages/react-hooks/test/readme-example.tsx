// The README's example, word for word but for the import path (test/readme.test.tsx checks it).
import { MeshtapProvider, useConnection, useNodes } from '../src/index.js'

function NodeList() {
  const { state } = useConnection()
  const nodes = useNodes({ heardWithinMs: 3_600_000 })
  return <ul title={state}>{nodes.map((n) => <li key={n.num}>{n.user?.longName ?? n.id}</li>)}</ul>
}

export const App = () => (
  <MeshtapProvider url="wss://mesh.example.org/live"><NodeList /></MeshtapProvider>
)
