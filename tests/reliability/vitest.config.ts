import { defineProject, mergeConfig } from 'vitest/config'
import { sourceResolve } from '../../vitest.shared.js'

export default mergeConfig(
  sourceResolve,
  defineProject({
    test: {
      name: 'reliability',
      environment: 'node',
      include: ['**/*.test.ts'],
      testTimeout: 60_000,
      hookTimeout: 60_000,
    },
  }),
)
