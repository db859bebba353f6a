// The scale-out deployment test (issue 8, item 4), as a script:
//
//   pnpm deploy-test [--envelopes N] [--workers 1|2] [--no-kill] [--backlog] [--no-web]
//                    [--pg URL] [--json]
//
// It starts its own Mosquitto (two loopback listeners, QoS 1 queues without limits), creates a
// fresh PostgreSQL database, starts N `meshtap ingest --pg … --share … --qos 1 --persistent`
// workers and one web-only reference server (`--pg … --no-ingest`) with a WebSocket client on its
// live feed, publishes the envelopes of a simulated mesh at QoS 1, SIGKILLs worker 1 half-way and
// starts it again with the same client id, then checks that every distinct packet is stored
// exactly once, every (packet, gateway) copy is stored as a reception, and the WebSocket client
// got events written by every worker. Exit code 0 when every check passes, 1 otherwise.
//
// With --backlog it measures the workers instead of the publisher: the workers connect once (their
// persistent sessions join the shared group) and stop, every envelope is published into the
// broker's queues for those sessions, then the workers start again and the clock runs from their
// start until every reception is stored (no kill). `pnpm bench scaleout` uses this mode through
// {@link deployTest} (bench/lib/scaleout-deploy.ts, where the machinery lives). See docs/scaling.md.
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { type DeployTestOptions, deployTest, killAll } from '../bench/lib/scaleout-deploy.js'

export type {
  BacklogResult,
  DeployPids,
  DeployTestOptions,
  DeployTestResult,
} from '../bench/lib/scaleout-deploy.js'
export { deployTest }

const USAGE = `usage: pnpm deploy-test [options]

  --envelopes N     envelopes to publish (default 100000; about 3 per packet)
  --workers N       ingest workers, 1 or 2 (default 2)
  --no-kill         do not SIGKILL worker 1 half-way
  --backlog         publish while the workers are stopped (their persistent sessions queue the
                    envelopes), then time the workers draining the backlog; implies --no-kill
  --no-web          no web instance and WebSocket client (the workers migrate the schema)
  --pg URL          an admin connection to PostgreSQL; a fresh database is created next to it
                    and dropped at the end (default $MESHTAP_PG_URL or
                    postgres://postgres@127.0.0.1:5432/postgres)
  --keep            keep the database (its name is printed)
  --timeout-s S     give up when nothing is stored for S seconds (default 60)
  --json            print the result as one JSON line on stdout (progress goes to stderr)`

async function main(): Promise<number> {
  let values: ReturnType<typeof parseArgs>['values']
  try {
    values = parseArgs({
      args: process.argv.slice(2).filter((a) => a !== '--'),
      options: {
        envelopes: { type: 'string' },
        workers: { type: 'string' },
        'no-kill': { type: 'boolean' },
        backlog: { type: 'boolean' },
        'no-web': { type: 'boolean' },
        pg: { type: 'string' },
        keep: { type: 'boolean' },
        'timeout-s': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}\n`)
    return 2
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const int = (v: unknown, name: string, fallback: number, min: number, max: number) => {
    if (v === undefined) return fallback
    const n = Number(v)
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(`--${name} must be an integer from ${min} to ${max}`)
    return n
  }
  let options: DeployTestOptions
  try {
    options = {
      envelopes: int(values.envelopes, 'envelopes', 100_000, 100, 10_000_000),
      workers: int(values.workers, 'workers', 2, 1, 2),
      kill: !values['no-kill'] && !values.backlog,
      web: !values['no-web'],
      backlog: Boolean(values.backlog),
      adminUrl: String(
        values.pg ?? process.env.MESHTAP_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
      ),
      keep: Boolean(values.keep),
      timeoutS: int(values['timeout-s'], 'timeout-s', 60, 1, 3600),
    }
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}\n`)
    return 2
  }
  const onSignal = () => {
    killAll()
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const result = await deployTest(options)
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`)
  else {
    const s = result.stored
    process.stdout.write(
      [
        `${result.ok ? 'PASS' : 'FAIL'}: ${result.published.envelopes} envelopes (${result.published.packets} packets, ${result.published.copies} copies) through ${result.workers} worker(s), ${result.broker}`,
        `  end to end: ${result.endToEndPerSec} envelopes/s (${result.endToEndMs} ms; publishing took ${result.published.ms} ms)`,
        ...(result.backlog
          ? [
              `  backlog drained at ${result.backlog.receptionsPerSec} receptions/s (${result.backlog.drainMs} ms from the workers' start, first reception stored after ${result.backlog.firstStoredMs} ms; received by worker ${result.backlog.receivedByWorker.join(' / ')})`,
            ]
          : []),
        result.kill
          ? `  worker 1 SIGKILLed at envelope ${result.kill.atEnvelope}, back after ${result.kill.downMs} ms, then received ${result.kill.restartedReceived} envelopes`
          : '  no worker killed',
        `  stored: ${s.packets} packets (${s.duplicatePackets} twice, ${s.missingPackets} missing), ${s.receptions} receptions (${s.missingCopies} missing, ${s.extraCopies} extra)`,
        result.websocket
          ? `  WebSocket: ${result.websocket.events} events, by worker ${result.websocket.byWorker.join(' / ')}, ${Math.round(result.websocket.coverage * 1000) / 10} % of the stored copies, ${result.websocket.lagged} lag notices`
          : '  no web instance',
        ...result.failures.map((f) => `  FAILED: ${f}`),
        '',
      ].join('\n'),
    )
  }
  return result.ok ? 0 : 1
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      killAll()
      process.stderr.write(`deploy-test: ${(e as Error)?.stack ?? String(e)}\n`)
      process.exit(1)
    },
  )
}
