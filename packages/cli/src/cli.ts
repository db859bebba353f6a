import type { Readable, Writable } from 'node:stream'
import { parseArgs } from 'node:util'
import { runDecode } from './commands/decode.js'
import { runIngest } from './commands/ingest.js'
import { CommandUsageError, parseKeys } from './commands/options.js'
import { runSimulate } from './commands/simulate.js'
import { runTail } from './commands/tail.js'

/** Where the CLI reads and writes; the process streams by default. */
export interface CliIo {
  stdin: Readable
  stdout: Writable
  stderr: Writable
}

/** A usage error: the CLI prints it with the usage text and exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

const USAGE = `Usage: meshtap <command> [options]

Commands:
  decode   Decode NDJSON lines from stdin, one JSON result line per input line.
           Input:  {"payload": "<base64|hex|json>", "encoding"?: "base64"|"hex"|"json",
                    "topic"?: "msh/US/2/e/LongFast/!abcd1234", "kind"?: "envelope"|"mapreport"|
                    "meshpacket"|"json-uplink"|"data"}
           Output: {"ok":true,"packet":{…}} or {"ok":false,"error":{"code","message"},"packet":{…}}
           Options: --key NAME=PSK   a channel key, PSK in base64 (repeatable; LongFast=AQ== is built in)
                    --format F       json (default: the NDJSON contract), pretty (indented)
                                     or text (one readable line per packet)
                    --pretty         same as --format pretty

  simulate Publish a seeded, simulated mesh (several gateway copies per packet, traceroutes,
           map reports, PKI DMs) to an MQTT broker and/or write it as a capture file; prints
           one JSON summary line.
           Options: --url URL and/or --out FILE, --count C, --rate R (0 = as fast as possible),
                    --seed S, --nodes N, --gateways G, --root R, --qos 0|1, --key NAME=PSK
                    (meshtap simulate --help for all)
  ingest   A headless collector into SQLite: --url URL --topic FILTER… --db PATH [--key NAME=PSK…]
           [--qos 0|1 --client-id ID --persistent] [--share GROUP] [--idle-exit-ms MS];
           SIGINT/SIGTERM flush and exit 0, printing one JSON line of final counters
           (meshtap ingest --help for all)
  tail     Subscribe to an MQTT broker and print each message decoded, one line each.
           Options: --url URL --topic FILTER… [--key NAME=PSK…] [--json] [--raw-out FILE]
                    [--username U --password P] [--qos 0|1] [--count N] [--idle-exit-ms MS]

Run "meshtap <command> --help" for a command's options.`

function decodeFormat(
  format: string | undefined,
  pretty: boolean | undefined,
): 'json' | 'pretty' | 'text' {
  if (format === undefined) return pretty ? 'pretty' : 'json'
  if (format === 'json' || format === 'pretty' || format === 'text') return format
  throw new UsageError(`--format must be json, pretty or text, not "${format}"`)
}

/**
 * Runs the CLI with `argv` (without the node and script paths). Resolves to the exit code:
 * 0 when the command ran (decode failures are data, not errors), 2 on bad usage, 1 on other errors.
 */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'decode': {
        const { values } = parseArgs({
          args: rest,
          options: {
            key: { type: 'string', multiple: true },
            pretty: { type: 'boolean' },
            format: { type: 'string' },
            help: { type: 'boolean', short: 'h' },
          },
          strict: true,
          allowPositionals: false,
        })
        if (values.help) {
          io.stdout.write(`${USAGE}\n`)
          return 0
        }
        await runDecode({
          keys: parseKeys(values.key),
          format: decodeFormat(values.format, values.pretty),
          input: io.stdin,
          output: io.stdout,
        })
        return 0
      }
      case 'tail':
        return await runTail(rest, io)
      case 'ingest':
        return await runIngest(rest, io)
      case 'simulate':
        return await runSimulate(rest, io)
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(`${USAGE}\n`)
        return command === undefined ? 2 : 0
      default:
        throw new UsageError(`unknown command "${command}"`)
    }
  } catch (e) {
    const error = e as Error & { code?: string }
    if (
      e instanceof UsageError ||
      e instanceof CommandUsageError ||
      error.code?.startsWith('ERR_PARSE_ARGS')
    ) {
      io.stderr.write(`meshtap: ${error.message}\n\n${USAGE}\n`)
      return 2
    }
    io.stderr.write(`meshtap: ${error.stack ?? error.message}\n`)
    return 1
  }
}
