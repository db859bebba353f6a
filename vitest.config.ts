import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: { conditions: ['@meshtap/source'] },
  ssr: { resolve: { conditions: ['@meshtap/source', 'module', 'node', 'development|production'] } },
  test: {
    projects: ['packages/*', 'examples/reference-server', 'tests/*'],
    testTimeout: 30_000,
  },
})
