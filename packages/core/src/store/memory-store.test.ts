import { describeStoreConformance } from '../testing/store-conformance.js'
import { createMemoryStore } from './memory-store.js'

describeStoreConformance('memory', () => createMemoryStore())
