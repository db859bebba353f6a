import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', mqtt: 'src/mqtt/index.ts', testing: 'src/testing/index.ts' },
  format: ['esm'],
  dts: { compilerOptions: { composite: false, customConditions: [] } },
  sourcemap: true,
  clean: true,
  target: 'node20',
})
