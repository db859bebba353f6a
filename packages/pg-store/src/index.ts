export type { PgStoreErrorCode } from './errors.js'
export { isTransientCode, PgStoreError } from './errors.js'
export type { PgChangeFeed, PgChangeFeedOptions } from './pg-change-feed.js'
export { createPgChangeFeed } from './pg-change-feed.js'
export type {
  PgPartitionInfo,
  PgRedecryptDecode,
  PgRedecryptOptions,
  PgRedecryptResult,
  PgRetentionOptions,
  PgRetentionResult,
  PgRetentionTable,
  PgStore,
  PgStoreOptions,
} from './pg-store.js'
export { createPgStore, SCHEMA_VERSION } from './pg-store.js'
export type { PgPool, PgPoolClient, PgQueryConfig, PgQueryResult } from './pool.js'
