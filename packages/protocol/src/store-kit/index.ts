/**
 * Building blocks shared by the stores (`@meshtap/sqlite-store`, `@meshtap/pg-store`): the compact,
 * lossless packed form of a decoded packet, the typed rows extracted from app payloads (positions,
 * telemetry columns, messages, traceroutes, neighbours), aggregation helpers, the envelope rebuilt
 * from a kept header and ciphertext for re-decryption, the opaque keyset cursors of pages, and the
 * read side every store shares: query checks, keyset paging and the mapping of database rows to the
 * domain rows (each store keeps only its SQL dialect), and the retention window of a table. For store authors; apps do not need it.
 * @module
 */
export * from './aggregates.js'
export * from './cursor.js'
export * from './envelope.js'
export * from './extract.js'
export * from './packing.js'
export * from './paging.js'
export * from './retention.js'
export * from './rows.js'
