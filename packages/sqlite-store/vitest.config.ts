import { defineProject, mergeConfig } from 'vitest/config'
import { sourceResolve } from '../../vitest.shared.js'

export default mergeConfig(
  sourceResolve,
  defineProject({
    test: { name: 'sqlite-store', environment: 'node' },
  }),
)
