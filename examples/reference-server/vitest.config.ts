import { defineProject, mergeConfig } from 'vitest/config'
import { sourceResolve } from '../../vitest.shared.js'

export default mergeConfig(
  sourceResolve,
  defineProject({
    test: {
      name: 'reference-server',
      environment: 'node',
      include: ['test/**/*.test.ts'],
      testTimeout: 30_000,
      hookTimeout: 60_000,
    },
  }),
)
