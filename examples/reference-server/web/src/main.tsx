import { MeshtapProvider } from '@meshtap/react-hooks'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App.js'
import { api, getToken } from './api.js'
import type { UiConfig } from './pages.js'
import './styles.css'

const root = createRoot(document.getElementById('root') as HTMLElement)

api<UiConfig>('/api/config').then(
  (config) => {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${config.livePath}`
    const token = getToken()
    root.render(
      <StrictMode>
        <MeshtapProvider url={url} {...(token ? { token } : {})}>
          <App config={config} />
        </MeshtapProvider>
      </StrictMode>,
    )
  },
  (e: Error) => root.render(<p className="page error">Cannot reach the server: {e.message}</p>),
)
