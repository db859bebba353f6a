import { fileURLToPath } from 'node:url'

/** The repository root, for tests that start the CLI or the reference server from their sources. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
