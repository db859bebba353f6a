/**
 * The parts of a `better-sqlite3` statement the store uses, as a structural type: the store does not
 * need `@types/better-sqlite3` in its public types, and any compatible driver object fits.
 *
 * @example
 * const stmt: SqliteStatement = db.prepare('SELECT 1 AS one')
 */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint }
  get(...params: unknown[]): unknown
  all(...params: unknown[]): unknown[]
  iterate(...params: unknown[]): IterableIterator<unknown>
}

/**
 * The parts of a `better-sqlite3` `Database` the store uses. Pass the database your application
 * opened (`new Database(file)`); the store never closes it.
 *
 * @example
 * import Database from 'better-sqlite3'
 * const db: SqliteDatabase = new Database('mesh.db')
 */
export interface SqliteDatabase {
  prepare(source: string): SqliteStatement
  exec(source: string): unknown
  pragma(source: string, options?: { simple?: boolean }): unknown
  close(): unknown
  readonly open: boolean
  readonly name: string
  readonly inTransaction: boolean
  readonly readonly: boolean
  readonly memory: boolean
}
