import { useEffect, useState } from 'react'
import { getToken, setToken } from './api.js'
import { NodePage } from './NodePage.js'
import { Gateways, MapPage, Messages, NodeList, StatusBar, type UiConfig } from './pages.js'

function useHash(): string {
  const [hash, setHash] = useState(location.hash || '#/map')
  useEffect(() => {
    const on = () => setHash(location.hash || '#/map')
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return hash
}

const TABS = [
  ['#/map', 'Map'],
  ['#/nodes', 'Nodes'],
  ['#/messages', 'Messages'],
  ['#/gateways', 'Gateways'],
] as const

export function App({ config }: { config: UiConfig }) {
  const hash = useHash()
  const node = /^#\/node\/(![0-9a-fA-F]{8}|\d+)$/.exec(hash)?.[1]
  let page: React.ReactNode
  if (node) page = <NodePage key={node} id={node} config={config} />
  else if (hash.startsWith('#/nodes')) page = <NodeList />
  else if (hash.startsWith('#/messages')) page = <Messages />
  else if (hash.startsWith('#/gateways')) page = <Gateways />
  else page = <MapPage config={config} />
  return (
    <div className="app">
      <header>
        <strong>meshtap</strong>
        <nav>
          {TABS.map(([h, label]) => (
            <a
              key={h}
              href={h}
              className={hash.startsWith(h) || (h === '#/nodes' && node) ? 'active' : ''}
            >
              {label}
            </a>
          ))}
        </nav>
        {config.protectReads && (
          <button
            type="button"
            className="token"
            onClick={() => {
              setToken(prompt('Access token', getToken() ?? '') ?? undefined)
              location.reload()
            }}
          >
            {getToken() ? 'token ✓' : 'enter token'}
          </button>
        )}
      </header>
      <main>{page}</main>
      <StatusBar />
    </div>
  )
}
