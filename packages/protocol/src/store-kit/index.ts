/**
 * Building blocks shared by the stores (`@meshtap/sqlite-store`, `@meshtap/pg-store`): the compact,
 * lossless packed form of a decoded packet, the typed rows extracted from app payloads (positions,
 * telemetry columns, messages, traceroutes, neighbours), aggregation helpers, and the envelope
 * rebuilt from a kept header and ciphertext for re-decryption, and the opaque keyset cursors of pages. For store authors; apps do not need it.
 * @module
 */
export * from './aggregates.js'
export * from './cursor.js'
export * from './envelope.js'
export * from './extract.js'
export * from './packing.js'
export * from './paging.js'
export * from './rows.js'
