import type { ViteUserConfig } from 'vitest/config'

/** Resolve workspace packages to their TypeScript sources, so tests need no build. */
export const sourceResolve: ViteUserConfig = {
  resolve: { conditions: ['@meshtap/source', 'module', 'browser', 'development|production'] },
  ssr: { resolve: { conditions: ['@meshtap/source', 'module', 'node', 'development|production'] } },
}
