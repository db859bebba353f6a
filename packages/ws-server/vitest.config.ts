import { defineProject, mergeConfig } from 'vitest/config'
import { sourceResolve } from '../../vitest.shared.js'

export default mergeConfig(
  sourceResolve,
  defineProject({
    test: { name: 'ws-server', environment: 'node' },
  }),
)
