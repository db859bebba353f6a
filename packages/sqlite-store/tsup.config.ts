import { defineConfig } from 'tsup'

export default defineConfig({
  // The writer thread (`writerThread`) runs dist/writer-thread.js, beside index.js.
  entry: { index: 'src/index.ts', 'writer-thread': 'src/writer-thread.ts' },
  format: ['esm'],
  dts: { compilerOptions: { composite: false, customConditions: [] } },
  sourcemap: true,
  clean: true,
  target: 'node20',
})
