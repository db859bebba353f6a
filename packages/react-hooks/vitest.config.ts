import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { defineProject, mergeConfig } from 'vitest/config'
import { sourceResolve } from '../../vitest.shared.js'

// The DOM environment resolves with the `browser` condition, which maps `ws` to a stub that
// throws. The tests run a real server (`@meshtap/ws-server` uses `ws`) next to the components,
// so `ws` is pinned to its Node entry here; the package's own code never imports it.
const wsEntry = join(dirname(createRequire(import.meta.url).resolve('ws')), 'wrapper.mjs')

export default mergeConfig(
  sourceResolve,
  defineProject({
    resolve: { alias: [{ find: /^ws$/, replacement: wsEntry }] },
    test: { name: 'react-hooks', environment: 'happy-dom', testTimeout: 30_000 },
  }),
)
