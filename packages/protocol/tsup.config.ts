import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', 'store-kit': 'src/store-kit/index.ts' },
  format: ['esm'],
  dts: { compilerOptions: { composite: false, customConditions: [] } },
  sourcemap: true,
  clean: true,
  target: 'node20',
})
