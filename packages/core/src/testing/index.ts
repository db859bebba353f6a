export { samplePacket, sampleReception, sampleUndecoded } from './fixtures.js'
export type { StoreConformanceOptions } from './store-conformance.js'
export { describeStoreConformance } from './store-conformance.js'
