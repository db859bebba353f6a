import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', client: 'src/client.ts' },
  format: ['esm'],
  dts: { compilerOptions: { composite: false, customConditions: [] } },
  sourcemap: true,
  clean: true,
  target: 'es2022',
  // esbuild drops module-level directives when it bundles, so `'use client'` at the top of
  // src/meshtap-provider.tsx does not survive; put it back on every output file. Everything in
  // this package is client code (hooks, a WebSocket client), so React Server Components must
  // treat all of it as a client boundary anyway.
  banner: { js: "'use client';" },
})
