export type { ReplaySource, ReplaySourceOptions, ReplayStats } from './replay-source.js'
export { createReplaySource } from './replay-source.js'
