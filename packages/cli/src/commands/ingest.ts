import { parseArgs } from 'node:util'
import { type ChannelKeyInput, createIngest, type Ingest } from '@meshtap/core'
import type { MqttSource } from '@meshtap/core/mqtt'
import { createPgStore } from '@meshtap/pg-store'
import type { Store } from '@meshtap/protocol'
import { createSqliteStore } from '@meshtap/sqlite-store'
import type { CliIo } from '../cli.js'
import {
  BROKER_FLAGS,
  CommandUsageError,
  parseKeys,
  positiveInt,
  sourceFromFlags,
  statusLine,
  usageFailure,
} from './options.js'

/** The usage text of `meshtap ingest`. */
export const INGEST_USAGE = `Usage: meshtap ingest --url URL --topic FILTER [--topic FILTER…] --db PATH [options]

A headless collector: subscribes to an MQTT broker and stores every decoded packet, with every
gateway's copy as a reception, in a SQLite file. Ctrl-C (SIGINT) or SIGTERM flushes and exits 0.
On exit it prints one JSON line of final counters.

Options:
  --url URL            mqtt://, mqtts://, ws:// or wss:// broker URL
  --topic FILTER       topic filter, repeatable (e.g. msh/US/#)
  --db PATH            the SQLite file (created if missing)
  --pg URL             a PostgreSQL connection string instead of --db (several collectors can
                       write to one database; combine with --share to split one feed)
  --key NAME=PSK       a channel key, PSK in base64 (repeatable; LongFast=AQ== is built in)
  --username USER      broker user name
  --password PASS      broker password
  --qos 0|1            subscription QoS (default 0)
  --client-id ID       a fixed MQTT client id (default: random)
  --persistent         keep the broker session across restarts (needs --client-id; use with --qos 1:
                       messages are acknowledged only after they are committed)
  --share GROUP        MQTT 5 shared subscription: several collectors split one feed
  --mqtt5              speak MQTT 5 (needed by --share)
  --idle-exit-ms MS    exit after MS milliseconds without a message
  --no-rate-limit      do not rate-limit busy nodes (default: 2 packets/s, bursts of 20)
  --retention-days D   delete rows older than D days (default 90)
  --writer-thread      write the SQLite file on a second thread (--db only): commits and
                       checkpoints no longer hold up the MQTT client, at the cost of a copy of
                       every batch; for machines with a core to spare`

/** The final counters `meshtap ingest` prints. */
export interface IngestSummary {
  received: number
  decoded: number
  failed: number
  packets: number
  receptions: number
  duplicates: number
  rateLimited: number
  dropped: number
  written: number
}

/** Options `runIngest` takes besides its arguments (for embedding and tests). */
export interface IngestRunOptions {
  /** Stops the collector like SIGTERM does. */
  signal?: AbortSignal
}

/**
 * Runs `meshtap ingest` (arguments without `ingest`). Resolves to the exit code: 0 after a clean
 * stop (SIGINT, SIGTERM, `--idle-exit-ms`, `options.signal`), 2 on bad usage, 1 when the database
 * cannot be opened.
 *
 * @example
 * await runIngest(['--url', 'mqtt://127.0.0.1', '--topic', 'msh/#', '--db', 'mesh.db'], io)
 */
export async function runIngest(
  args: string[],
  io: CliIo,
  options: IngestRunOptions = {},
): Promise<number> {
  let source: MqttSource
  let topics: string[]
  let db: string
  let pg: string | undefined
  let keys: ChannelKeyInput[]
  let idleMs: number | undefined
  let rateLimit: boolean
  let retentionDays: number
  let writerThread: boolean
  try {
    const { values } = parseArgs({
      args,
      options: {
        ...BROKER_FLAGS,
        db: { type: 'string' },
        pg: { type: 'string' },
        key: { type: 'string', multiple: true },
        'client-id': { type: 'string' },
        persistent: { type: 'boolean' },
        share: { type: 'string' },
        mqtt5: { type: 'boolean' },
        'idle-exit-ms': { type: 'string' },
        'no-rate-limit': { type: 'boolean' },
        'retention-days': { type: 'string' },
        'writer-thread': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    })
    if (values.help) {
      io.stdout.write(`${INGEST_USAGE}\n`)
      return 0
    }
    if (!values.db === !values.pg) {
      throw new CommandUsageError(
        'give exactly one of --db (a SQLite file) or --pg (a PostgreSQL URL)',
      )
    }
    if (values['writer-thread'] && values.pg) {
      throw new CommandUsageError('--writer-thread is for a SQLite file (--db), not for --pg')
    }
    db = values.db ?? ''
    pg = values.pg
    writerThread = values['writer-thread'] === true
    keys = parseKeys(values.key)
    idleMs = positiveInt(values['idle-exit-ms'], '--idle-exit-ms')
    rateLimit = !values['no-rate-limit']
    retentionDays = positiveInt(values['retention-days'], '--retention-days') ?? 90
    ;({ source, topics } = sourceFromFlags('ingest', values, {
      protocolVersion: values.mqtt5 || values.share !== undefined ? 5 : 4,
      ...(values['client-id'] !== undefined ? { clientId: values['client-id'] } : {}),
      ...(values.persistent ? { persistentSession: true } : {}),
      ...(values.share !== undefined ? { shareGroup: values.share } : {}),
    }))
  } catch (e) {
    return usageFailure('ingest', INGEST_USAGE, e, io)
  }

  let store: Store
  try {
    store =
      pg !== undefined
        ? createPgStore({
            connectionString: pg,
            retention: { defaultMs: retentionDays * 86_400_000 },
          })
        : createSqliteStore({
            path: db,
            retention: { defaultMs: retentionDays * 86_400_000 },
            writerThread,
          })
  } catch (e) {
    io.stderr.write(`meshtap ingest: cannot open the database: ${(e as Error).message}\n`)
    return 1
  }
  const ingest: Ingest = createIngest({
    sources: [source],
    store,
    keys,
    ...(rateLimit ? {} : { rateLimit: false as const }),
    // At least once: with acknowledgements after the commit (--qos 1 --persistent), the broker
    // has at most the source's receive window unacknowledged here (MQTT 5: 4096; MQTT 3.1.1: the
    // broker's max_inflight_messages), twice that for a moment after a reconnect. The default queue
    // (10,000) holds 2 × 4096, so a backlog after an outage waits in the broker instead of being
    // shed (a shed record is acknowledged, so it would be lost).
  })
  ingest.on('sourceStatus', (s) => {
    const line = statusLine(s as Parameters<typeof statusLine>[0], topics)
    if (line) io.stderr.write(`${line}\n`)
  })
  ingest.on('error', (e) => io.stderr.write(`meshtap ingest: ${e.message}\n`))

  let resolveStop!: (reason: string) => void
  const stopped = new Promise<string>((resolve) => {
    resolveStop = resolve
  })
  const onSignal = (signal: string) => () => resolveStop(signal)
  const onInt = onSignal('SIGINT')
  const onTerm = onSignal('SIGTERM')
  process.once('SIGINT', onInt)
  process.once('SIGTERM', onTerm)
  options.signal?.addEventListener('abort', () => resolveStop('abort'), { once: true })
  let idleTimer: ReturnType<typeof setInterval> | undefined
  try {
    try {
      await ingest.start()
    } catch (e) {
      if ((e as { code?: string }).code === 'SOURCE_FAILED') throw e
      // The store's init: a PostgreSQL server that does not answer, refuses the login, … (the
      // `finally` below stops the ingest).
      io.stderr.write(`meshtap ingest: cannot open the database: ${(e as Error).message}\n`)
      return 1
    }
    if (idleMs !== undefined) {
      let last = -1
      let since = Date.now()
      idleTimer = setInterval(
        () => {
          const received = ingest.metrics().counters.received
          if (received !== last) {
            last = received
            since = Date.now()
          } else if (Date.now() - since >= (idleMs as number)) {
            resolveStop('idle')
          }
        },
        Math.min(100, idleMs),
      )
    }
    const reason = await stopped
    io.stderr.write(`stopping (${reason}): flushing…\n`)
  } finally {
    if (idleTimer) clearInterval(idleTimer)
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
    await ingest.stop()
  }
  const c = ingest.metrics().counters
  const summary: IngestSummary = {
    received: c.received,
    decoded: c.decoded,
    failed: c.failed,
    packets: c.packets,
    receptions: c.receptions,
    duplicates: c.duplicates,
    rateLimited: c.rateLimited,
    dropped: c.dropped,
    written: c.written,
  }
  io.stdout.write(`${JSON.stringify(summary)}\n`)
  return 0
}
