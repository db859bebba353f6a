export type { CheckpointStats } from './checkpointer.js'
export type { SqliteDatabase, SqliteStatement } from './database.js'
export type { SqliteStoreErrorCode } from './errors.js'
export { SqliteStoreError } from './errors.js'
export { SCHEMA_VERSION } from './migrations.js'
export type {
  RedecryptDecode,
  RedecryptOptions,
  RedecryptResult,
  RetentionOptions,
  RetentionResult,
  RetentionTable,
  SqliteStore,
  SqliteStoreOptions,
} from './sqlite-store.js'
export { createSqliteStore } from './sqlite-store.js'
