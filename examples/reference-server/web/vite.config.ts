import { fileURLToPath } from 'node:url'
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

const api = process.env.MESHTAP_DEV_API ?? 'http://127.0.0.1:8080'

// Builds the UI from the meshtap packages' sources (`@meshtap/source`), so no package build is needed.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [react()],
  resolve: {
    conditions: ['@meshtap/source', 'module', 'browser', 'development|production'],
  },
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1000 },
  server: {
    proxy: { '/api': { target: api, ws: true }, '/metrics': api },
  },
})
