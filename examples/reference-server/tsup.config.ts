import { defineConfig } from 'tsup'

// The server is bundled with the meshtap packages' sources (`@meshtap/source` condition), so a
// production install needs only their third-party dependencies, not a build of every package.
export default defineConfig({
  entry: { main: 'src/main.ts' },
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  clean: true,
  dts: false,
  noExternal: [/^@meshtap\//],
  esbuildOptions(options) {
    options.conditions = ['@meshtap/source', 'module', 'import', 'node']
  },
})
