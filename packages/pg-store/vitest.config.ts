import { defineProject, mergeConfig } from 'vitest/config'
import { sourceResolve } from '../../vitest.shared.js'

export default mergeConfig(
  sourceResolve,
  defineProject({
    // Every test file uses its own schema, so files can run in parallel on one server.
    test: { name: 'pg-store', environment: 'node', testTimeout: 60_000, hookTimeout: 120_000 },
  }),
)
