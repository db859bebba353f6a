import { PgStoreError } from './errors.js'
import { ident, type PgPoolClient, TYPES } from './pool.js'

/** One millisecond-day: partition keys are Unix days (UTC). @internal */
export const DAY_MS = 86_400_000

/** The Unix day (UTC) of a time in ms. @internal */
export function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS)
}

/** `20251128` for a Unix day. @internal */
export function dayLabel(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10).replace(/-/g, '')
}

/** One partition of a partitioned table: days `[start, end)`. @internal */
export interface Partition {
  table: string
  name: string
  start: number
  end: number
  /** `DETACH … CONCURRENTLY` was interrupted: it must be finalised before the table is dropped. */
  detachPending: boolean
}

/** A stable 32-bit hash (FNV-1a) for advisory lock keys. @internal */
export function hash32(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h | 0
}

/** First key of every advisory lock the store takes ('mesh'). @internal */
export const LOCK_SPACE = 0x6d657368

/**
 * Knows which days every partitioned table covers (read from the catalog, then cached) and
 * creates the missing partitions: `CREATE TABLE … (LIKE parent)` then `ATTACH PARTITION`, which
 * only takes a SHARE UPDATE EXCLUSIVE lock on the parent, so writers and readers of other
 * partitions never wait for it (`CREATE TABLE … PARTITION OF` would take an ACCESS EXCLUSIVE
 * lock). Creators in several processes are serialised by an advisory lock. @internal
 */
export class PartitionManager {
  /** Partitioned tables of the current schema version. */
  tables: readonly string[] = []
  private readonly ranges = new Map<string, Partition[]>()
  /** Days known to be covered by every table. */
  private readonly covered = new Set<number>()

  constructor(
    private readonly schema: string,
    private readonly partitionDays: number,
    private readonly lockTimeoutMs: number,
  ) {}

  /** Whether every partitioned table has a partition for `day` (from the cache). */
  covers(day: number): boolean {
    if (this.covered.has(day)) return true
    if (this.tables.length === 0) return false
    for (const t of this.tables) {
      if (!(this.ranges.get(t) ?? []).some((p) => p.start <= day && day < p.end)) return false
    }
    this.covered.add(day)
    return true
  }

  /** The days of `days` not covered yet. */
  missing(days: Iterable<number>): number[] {
    const out = new Set<number>()
    for (const d of days) if (!this.covers(d)) out.add(d)
    return [...out].sort((a, b) => a - b)
  }

  /** Every partition, per table. */
  list(): Partition[] {
    return [...this.ranges.values()].flat()
  }

  /** Forgets what the cache knows (another process dropped or created partitions). */
  reset(): void {
    this.ranges.clear()
    this.covered.clear()
  }

  /** Reads the partitions of the schema's tables from the catalog. */
  async load(client: PgPoolClient): Promise<void> {
    const pending = (await serverVersion(client)) >= 140_000 ? 'i.inhdetachpending' : 'false'
    const { rows } = await client.query({
      text: `SELECT parent.relname AS parent, child.relname AS child,
          pg_get_expr(child.relpartbound, child.oid) AS bound, ${pending} AS pending
        FROM pg_inherits i
        JOIN pg_class parent ON parent.oid = i.inhparent
        JOIN pg_class child ON child.oid = i.inhrelid
        JOIN pg_namespace n ON n.oid = parent.relnamespace
        WHERE n.nspname = $1 AND parent.relkind = 'p'`,
      values: [this.schema],
      types: TYPES,
    })
    this.reset()
    for (const r of rows as { parent: string; child: string; bound: string; pending: boolean }[]) {
      const m = /FROM \((-?\d+)\) TO \((-?\d+)\)/.exec(r.bound)
      if (!m) continue
      const list = this.ranges.get(r.parent) ?? []
      list.push({
        table: r.parent,
        name: r.child,
        start: Number(m[1]),
        end: Number(m[2]),
        detachPending: r.pending === true,
      })
      this.ranges.set(r.parent, list)
    }
    for (const list of this.ranges.values()) list.sort((a, b) => a.start - b.start)
  }

  /**
   * Creates the partitions every table needs for `days`, in the caller's transaction (which must
   * not have written anything yet: the advisory lock is held until it ends). Returns the names of
   * the partitions created.
   */
  async create(client: PgPoolClient, days: readonly number[]): Promise<string[]> {
    if (days.length === 0) return []
    const s = ident(this.schema)
    await client.query(`SET LOCAL lock_timeout = ${Math.max(0, Math.floor(this.lockTimeoutMs))}`)
    await client.query({
      text: 'SELECT pg_advisory_xact_lock($1, $2)',
      values: [LOCK_SPACE, hash32(`${this.schema}:partitions`)],
    })
    await this.load(client)
    const created: string[] = []
    for (const table of this.tables) {
      const list = this.ranges.get(table) ?? []
      for (const day of days) {
        if (list.some((p) => p.start <= day && day < p.end)) continue
        let start = Math.floor(day / this.partitionDays) * this.partitionDays
        let end = start + this.partitionDays
        // Never overlap an existing partition (partitionDays may have changed since).
        for (const p of list) {
          if (p.end <= day && p.end > start) start = p.end
          if (p.start > day && p.start < end) end = p.start
        }
        const name = `${table}_p${dayLabel(start)}`
        if (list.some((p) => p.name === name)) {
          throw new PgStoreError(
            'PARTITION_CONFLICT',
            `partition ${this.schema}.${name} exists but does not cover day ${day}`,
          )
        }
        await client.query(
          `CREATE TABLE ${s}.${ident(name)} (LIKE ${s}.${ident(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
        )
        await client.query(
          `ALTER TABLE ${s}.${ident(table)} ATTACH PARTITION ${s}.${ident(name)} FOR VALUES FROM (${start}) TO (${end})`,
        )
        list.push({ table, name, start, end, detachPending: false })
        list.sort((a, b) => a.start - b.start)
        created.push(name)
      }
      this.ranges.set(table, list)
    }
    return created
  }

  /** Forgets a partition the store dropped. */
  forget(table: string, name: string): void {
    const list = this.ranges.get(table)
    if (list) {
      this.ranges.set(
        table,
        list.filter((p) => p.name !== name),
      )
    }
    this.covered.clear()
  }
}

const versions = new WeakMap<object, number>()

/** `server_version_num` of the connection's server (cached per client). @internal */
export async function serverVersion(client: PgPoolClient): Promise<number> {
  const cached = versions.get(client)
  if (cached !== undefined) return cached
  const { rows } = await client.query("SELECT current_setting('server_version_num')::int AS v")
  const v = Number((rows[0] as { v: number }).v)
  versions.set(client, v)
  return v
}
