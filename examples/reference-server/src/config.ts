import { readFileSync } from 'node:fs'
import { isAbsolute, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { type ChannelKeyInput, createChannelKey } from '@meshtap/core'
import { createMqttSource, type MqttBrokerOptions } from '@meshtap/core/mqtt'

/** A configuration problem, naming the key (flag, variable or file key) and what was expected. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

/** An upstream broker (or the public preset). */
export interface BrokerConfig extends MqttBrokerOptions {
  /** Stable id of the source in the control API. */
  id: string
}

/** The resolved, validated configuration of the reference server. */
export interface ServerConfig {
  /** HTTP bind address. */
  host: string
  /** HTTP port (0 = any free port). */
  port: number
  dataDir: string
  /** SQLite file (not used with `pg`). */
  database: string
  /**
   * PostgreSQL instead of SQLite (`@meshtap/pg-store`): several instances can share one database,
   * and the live WebSocket then pushes what every instance writes (through the change feed).
   */
  pg?: { url: string; schema: string }
  /**
   * Whether this instance ingests. `false`: a web-only instance (no broker, no sources) that
   * serves the API and pushes the events every ingest worker commits to PostgreSQL.
   */
  ingest: boolean
  /** MQTT 5 shared-subscription group for the upstream brokers (`$share/GROUP/…`). */
  share?: string
  /** The embedded MQTT broker your own gateways can uplink to. */
  mqtt: { enabled: boolean; host: string; port: number; username?: string; password?: string }
  brokers: BrokerConfig[]
  /** Feed the embedded broker from the mesh simulator. */
  simulate: false | { rate: number; nodes: number; gateways: number; seed: number; burst: number }
  keys: ChannelKeyInput[]
  /** Token for the control API (and reads + WebSocket with `protectReads`). */
  token?: string
  protectReads: boolean
  corsOrigins: string[]
  /** Requests per minute per client address; 0 turns the limit off. */
  rateLimit: number
  /** Map tiles (`https://…/{z}/{x}/{y}.png`); absent: plain background. */
  tileUrl?: string
  tileAttribution?: string
  /** Health turns degraded when the resident set grows past this. */
  memoryLimitMb: number
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Folder of the built web UI. */
  webDir: string
}

/** The public Meshtastic broker and its documented shared credentials. */
export const PUBLIC_BROKER = {
  url: 'mqtt://mqtt.meshtastic.org:1883',
  username: 'meshdev',
  password: 'large4cats',
} as const

export const USAGE = `Usage: meshtap-server [options]

Sources
  --simulate                 feed the embedded broker from the mesh simulator (no internet needed)
  --simulate-rate N          envelopes per second (default 20)
  --simulate-nodes N         simulated nodes (default 60)
  --simulate-gateways N      simulated gateways (default 6)
  --simulate-seed N          simulator seed (default 1)
  --broker URL               an upstream broker (repeatable): mqtt[s]://user:pass@host:port?topic=msh/US/#
                             &topic=…&ca=FILE&cert=FILE&key=FILE&insecure=1&clientId=ID
  --public REGION            the public broker mqtt.meshtastic.org, topic msh/REGION/#
  --no-mqtt                  do not start the embedded MQTT broker
  --mqtt-host ADDR           embedded broker bind address (default 127.0.0.1)
  --mqtt-port N              embedded broker port (default 1883)
  --mqtt-username U          require this user name on the embedded broker
  --mqtt-password P          …and this password (prefer MESHTAP_MQTT_PASSWORD)
  --key NAME=PSK             a channel key, PSK in base64 (repeatable)
  --share GROUP              subscribe to the upstream brokers as MQTT 5 shared subscription
                             $share/GROUP/…: several instances split one feed (with --pg)
  --no-ingest                a web-only instance: no broker, no sources; the live view shows what
                             the ingest workers write to PostgreSQL (needs --pg; also implied by
                             --pg with --no-mqtt and no --broker/--public)

HTTP
  --host ADDR                bind address (default 127.0.0.1)
  --port N                   port (default 8080, 0 = any free port)
  --token T                  token for the control API (prefer MESHTAP_TOKEN; at least 16 characters)
  --protect-reads            require the token for reads and the WebSocket too
  --cors-origin ORIGIN       allow this origin (repeatable)
  --rate-limit N             requests per minute per client (default 1200, 0 = off)
  --tile-url URL             map tiles, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png
  --tile-attribution TEXT    attribution shown under the map

Storage and operations
  --data-dir DIR             data folder (default ./data)
  --db FILE                  SQLite file (default DATA_DIR/meshtap.db)
  --pg URL                   PostgreSQL instead of SQLite: postgres://user:pass@host:5432/db
                             (prefer MESHTAP_PG; several instances can share one database)
  --pg-schema NAME           the PostgreSQL schema (default meshtap)
  --memory-limit-mb N        health is degraded above this resident memory (default 1024)
  --log-level LEVEL          fatal|error|warn|info|debug|trace|silent (default warn)
  --config FILE              a JSON configuration file (keys as in the docs)
  -h, --help                 show this help

Every option also reads an environment variable (MESHTAP_PORT, MESHTAP_TOKEN, …); flags win over
variables, variables over the file. See docs/guide/reference-server.md.`

type Kind = 'string' | 'int' | 'bool' | 'list'

interface Setting {
  /** Key in the config file (dotted = nested). */
  key: string
  flag?: string
  env?: string
  kind: Kind
  secret?: boolean
}

const SETTINGS: readonly Setting[] = [
  { key: 'host', flag: 'host', env: 'MESHTAP_HOST', kind: 'string' },
  { key: 'port', flag: 'port', env: 'MESHTAP_PORT', kind: 'int' },
  { key: 'dataDir', flag: 'data-dir', env: 'MESHTAP_DATA_DIR', kind: 'string' },
  { key: 'database', flag: 'db', env: 'MESHTAP_DB', kind: 'string' },
  { key: 'pg', flag: 'pg', env: 'MESHTAP_PG', kind: 'string', secret: true },
  { key: 'pgSchema', flag: 'pg-schema', env: 'MESHTAP_PG_SCHEMA', kind: 'string' },
  { key: 'ingest', env: 'MESHTAP_INGEST', kind: 'bool' },
  { key: 'share', flag: 'share', env: 'MESHTAP_SHARE', kind: 'string' },
  { key: 'mqtt.enabled', env: 'MESHTAP_MQTT', kind: 'bool' },
  { key: 'mqtt.host', flag: 'mqtt-host', env: 'MESHTAP_MQTT_HOST', kind: 'string' },
  { key: 'mqtt.port', flag: 'mqtt-port', env: 'MESHTAP_MQTT_PORT', kind: 'int' },
  { key: 'mqtt.username', flag: 'mqtt-username', env: 'MESHTAP_MQTT_USERNAME', kind: 'string' },
  {
    key: 'mqtt.password',
    flag: 'mqtt-password',
    env: 'MESHTAP_MQTT_PASSWORD',
    kind: 'string',
    secret: true,
  },
  { key: 'brokers', flag: 'broker', env: 'MESHTAP_BROKERS', kind: 'list', secret: true },
  { key: 'public', flag: 'public', env: 'MESHTAP_PUBLIC', kind: 'string' },
  { key: 'simulate.enabled', flag: 'simulate', env: 'MESHTAP_SIMULATE', kind: 'bool' },
  { key: 'simulate.rate', flag: 'simulate-rate', env: 'MESHTAP_SIMULATE_RATE', kind: 'int' },
  { key: 'simulate.nodes', flag: 'simulate-nodes', env: 'MESHTAP_SIMULATE_NODES', kind: 'int' },
  {
    key: 'simulate.gateways',
    flag: 'simulate-gateways',
    env: 'MESHTAP_SIMULATE_GATEWAYS',
    kind: 'int',
  },
  { key: 'simulate.seed', flag: 'simulate-seed', env: 'MESHTAP_SIMULATE_SEED', kind: 'int' },
  { key: 'simulate.burst', env: 'MESHTAP_SIMULATE_BURST', kind: 'int' },
  { key: 'keys', flag: 'key', env: 'MESHTAP_KEYS', kind: 'list', secret: true },
  { key: 'token', flag: 'token', env: 'MESHTAP_TOKEN', kind: 'string', secret: true },
  { key: 'protectReads', flag: 'protect-reads', env: 'MESHTAP_PROTECT_READS', kind: 'bool' },
  { key: 'corsOrigins', flag: 'cors-origin', env: 'MESHTAP_CORS_ORIGINS', kind: 'list' },
  { key: 'rateLimit', flag: 'rate-limit', env: 'MESHTAP_RATE_LIMIT', kind: 'int' },
  { key: 'tileUrl', flag: 'tile-url', env: 'MESHTAP_TILE_URL', kind: 'string' },
  {
    key: 'tileAttribution',
    flag: 'tile-attribution',
    env: 'MESHTAP_TILE_ATTRIBUTION',
    kind: 'string',
  },
  { key: 'memoryLimitMb', flag: 'memory-limit-mb', env: 'MESHTAP_MEMORY_LIMIT_MB', kind: 'int' },
  { key: 'logLevel', flag: 'log-level', env: 'MESHTAP_LOG_LEVEL', kind: 'string' },
  { key: 'webDir', env: 'MESHTAP_WEB_DIR', kind: 'string' },
]

const FILE_KEYS = new Set([...SETTINGS.map((s) => s.key), 'mqtt', 'simulate'])

/** A value with where it came from, for error messages. */
interface Given {
  value: unknown
  where: string
}

function fileValue(file: Record<string, unknown>, key: string): unknown {
  let v: unknown = file
  for (const part of key.split('.')) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string, unknown>)[part]
  }
  return v
}

function readConfigFile(path: string, where: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new ConfigError(`${where}: cannot read "${path}": ${(e as NodeJS.ErrnoException).code}`)
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (e) {
    throw new ConfigError(`${where}: "${path}" is not JSON: ${(e as Error).message}`)
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`${where}: "${path}" must hold a JSON object`)
  }
  const obj = data as Record<string, unknown>
  for (const [k, v] of Object.entries(obj)) {
    if (!FILE_KEYS.has(k)) throw new ConfigError(`config file: unknown key "${k}"`)
    if ((k === 'mqtt' || k === 'simulate') && v !== null && typeof v === 'object') {
      for (const sub of Object.keys(v)) {
        if (!FILE_KEYS.has(`${k}.${sub}`))
          throw new ConfigError(`config file: unknown key "${k}.${sub}"`)
      }
    }
  }
  // `simulate: true` is short for `simulate: { enabled: true }`.
  if (typeof obj.simulate === 'boolean') obj.simulate = { enabled: obj.simulate }
  return obj
}

function show(g: Given, secret?: boolean): string {
  if (secret) return '(value hidden)'
  return typeof g.value === 'string' ? `"${g.value}"` : JSON.stringify(g.value)
}

function asString(g: Given, secret?: boolean): string {
  if (typeof g.value !== 'string' || g.value === '') {
    throw new ConfigError(`${g.where}: expected a non-empty string, got ${show(g, secret)}`)
  }
  return g.value
}

function asInt(g: Given, min: number, max: number): number {
  const n = typeof g.value === 'string' && g.value.trim() !== '' ? Number(g.value) : g.value
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${g.where}: expected an integer from ${min} to ${max}, got ${show(g)}`)
  }
  return n
}

function asBool(g: Given): boolean {
  if (typeof g.value === 'boolean') return g.value
  const s = String(g.value).toLowerCase()
  if (['1', 'true', 'yes', 'on'].includes(s)) return true
  if (['0', 'false', 'no', 'off'].includes(s)) return false
  throw new ConfigError(`${g.where}: expected true or false, got ${show(g)}`)
}

function asList(g: Given, separator: RegExp): unknown[] {
  if (Array.isArray(g.value)) return g.value
  if (typeof g.value === 'string') return g.value.split(separator).filter((s) => s !== '')
  throw new ConfigError(`${g.where}: expected a list, got ${typeof g.value}`)
}

function parseKey(spec: unknown, where: string): ChannelKeyInput {
  let key: ChannelKeyInput
  if (typeof spec === 'string') {
    const eq = spec.indexOf('=')
    if (eq <= 0)
      throw new ConfigError(`${where}: expected NAME=PSK (PSK in base64, e.g. LongFast=AQ==)`)
    key = { name: spec.slice(0, eq), psk: spec.slice(eq + 1) }
  } else if (
    spec !== null &&
    typeof spec === 'object' &&
    typeof (spec as ChannelKeyInput).name === 'string' &&
    typeof (spec as ChannelKeyInput).psk === 'string'
  ) {
    key = { name: (spec as ChannelKeyInput).name, psk: (spec as ChannelKeyInput).psk }
  } else {
    throw new ConfigError(`${where}: expected "NAME=PSK" or { "name": …, "psk": … }`)
  }
  return validateChannelKey(key, where)
}

/** Checks a channel key; the error names the channel, never the PSK. */
export function validateChannelKey(key: ChannelKeyInput, where: string): ChannelKeyInput {
  if (key.name.length === 0 || key.name.length > 11 || /[/#+\s]/.test(key.name)) {
    throw new ConfigError(
      `${where}: the channel name must be 1–11 characters without "/", "#", "+" or spaces`,
    )
  }
  try {
    createChannelKey(key)
  } catch {
    throw new ConfigError(
      `${where}: channel "${key.name}": the PSK must be base64 of 0, 1, 16 or 32 bytes (e.g. AQ==)`,
    )
  }
  return key
}

function readPem(path: string, where: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (e) {
    throw new ConfigError(`${where}: cannot read "${path}": ${(e as NodeJS.ErrnoException).code}`)
  }
}

/**
 * Parses one upstream broker: a URL string
 * (`mqtts://user:pass@host:8883?topic=msh/US/#&ca=/ca.pem&insecure=1`) or an object with the
 * fields of `MqttBrokerOptions` (`tls.ca` etc. may be file paths in `tls.caFile`…).
 */
function parseBroker(spec: unknown, where: string, index: number): BrokerConfig {
  let broker: MqttBrokerOptions
  if (typeof spec === 'string') {
    // `#` would start a URL fragment: treat it as part of a topic.
    let url: URL
    try {
      url = new URL(spec.replaceAll('#', '%23'))
    } catch {
      throw new ConfigError(`${where}: not a URL (expected mqtt://host:1883?topic=msh/US/%23)`)
    }
    const q = url.searchParams
    const topics = q.getAll('topic')
    const tls: NonNullable<MqttBrokerOptions['tls']> = {}
    const ca = q.get('ca')
    const cert = q.get('cert')
    const key = q.get('key')
    if (ca) tls.ca = readPem(ca, `${where} ca`)
    if (cert) tls.cert = readPem(cert, `${where} cert`)
    if (key) tls.key = readPem(key, `${where} key`)
    if (q.get('insecure') === '1' || q.get('insecure') === 'true') tls.rejectUnauthorized = false
    for (const k of q.keys()) {
      if (
        ![
          'topic',
          'ca',
          'cert',
          'key',
          'insecure',
          'clientId',
          'name',
          'qos',
          'persistent',
        ].includes(k)
      ) {
        throw new ConfigError(
          `${where}: unknown URL parameter "${k}" (expected topic, ca, cert, key, insecure, clientId, name, qos, persistent)`,
        )
      }
    }
    const qos = q.get('qos')
    if (qos !== null && qos !== '0' && qos !== '1') {
      throw new ConfigError(`${where}: qos must be 0 or 1, got "${qos}"`)
    }
    const persistent = q.get('persistent')
    const clean = new URL(url.href)
    clean.search = ''
    broker = {
      url: clean.href.replace(/\/$/, ''),
      topics: topics.length > 0 ? topics : ['msh/#'],
      ...(Object.keys(tls).length > 0 ? { tls } : {}),
      ...(q.get('clientId') ? { clientId: q.get('clientId') as string } : {}),
      ...(q.get('name') ? { name: q.get('name') as string } : {}),
      ...(qos === '1' ? { qos: 1 as const } : {}),
      ...(persistent === '1' || persistent === 'true' ? { persistentSession: true } : {}),
    }
  } else if (spec !== null && typeof spec === 'object' && !Array.isArray(spec)) {
    const o = spec as Record<string, unknown>
    const tls = (o.tls ?? {}) as Record<string, unknown>
    if (typeof tls !== 'object') throw new ConfigError(`${where}.tls: expected an object`)
    const t: NonNullable<MqttBrokerOptions['tls']> = {}
    if (typeof tls.caFile === 'string') t.ca = readPem(tls.caFile, `${where}.tls.caFile`)
    if (typeof tls.certFile === 'string') t.cert = readPem(tls.certFile, `${where}.tls.certFile`)
    if (typeof tls.keyFile === 'string') t.key = readPem(tls.keyFile, `${where}.tls.keyFile`)
    if (tls.rejectUnauthorized === false) t.rejectUnauthorized = false
    broker = {
      ...(o as unknown as MqttBrokerOptions),
      topics: (o.topics as string[] | undefined) ?? ['msh/#'],
      ...(Object.keys(t).length > 0 ? { tls: t } : {}),
    }
  } else {
    throw new ConfigError(`${where}: expected a broker URL or object`)
  }
  try {
    // Validates URL, topics, TLS and ids; the message never contains credentials.
    createMqttSource({ brokers: [broker] })
  } catch (e) {
    throw new ConfigError(`${where}: ${(e as Error).message.replace(/^createMqttSource: /, '')}`)
  }
  return { ...broker, id: `broker-${index + 1}` }
}

/**
 * Reads the configuration from flags, environment variables and an optional JSON file (flags win
 * over variables, variables over the file), validates every value and fills in the defaults.
 * Throws a {@link ConfigError} naming the key and what was expected; secrets never appear in it.
 * Returns `'help'` for `--help`.
 */
export function loadConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): ServerConfig | 'help' {
  const options: Record<
    string,
    { type: 'string' | 'boolean'; multiple?: boolean; short?: string }
  > = {
    config: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    'no-mqtt': { type: 'boolean' },
    'no-ingest': { type: 'boolean' },
  }
  for (const s of SETTINGS) {
    if (!s.flag) continue
    options[s.flag] = {
      type: s.kind === 'bool' ? 'boolean' : 'string',
      ...(s.kind === 'list' ? { multiple: true } : {}),
    }
  }
  let values: Record<string, unknown>
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values
  } catch (e) {
    throw new ConfigError(`${(e as Error).message.replace(/\. To specify.*$/s, '')}; see --help`)
  }
  if (values.help) return 'help'
  const configPath = (values.config as string | undefined) ?? env.MESHTAP_CONFIG
  const file = configPath
    ? readConfigFile(
        resolve(cwd, configPath),
        values.config !== undefined ? '--config' : 'MESHTAP_CONFIG',
      )
    : {}
  if (values['no-mqtt']) values.mqtt = false
  if (values['no-ingest']) values.ingest = false

  const given = (key: string): Given | undefined => {
    const s = SETTINGS.find((x) => x.key === key) as Setting
    if (key === 'mqtt.enabled' && values.mqtt === false) return { value: false, where: '--no-mqtt' }
    if (key === 'ingest' && values.ingest === false) return { value: false, where: '--no-ingest' }
    if (s.flag && values[s.flag] !== undefined) {
      return { value: values[s.flag], where: `--${s.flag}` }
    }
    if (s.env && env[s.env] !== undefined && env[s.env] !== '')
      return { value: env[s.env], where: s.env }
    const v = fileValue(file, key)
    if (v !== undefined) return { value: v, where: `config file key "${key}"` }
    return undefined
  }
  const str = (key: string, fallback?: string) => {
    const g = given(key)
    const s = SETTINGS.find((x) => x.key === key)
    return g ? asString(g, s?.secret) : fallback
  }
  const int = (key: string, fallback: number, min: number, max: number) => {
    const g = given(key)
    return g ? asInt(g, min, max) : fallback
  }
  const bool = (key: string, fallback: boolean) => {
    const g = given(key)
    return g ? asBool(g) : fallback
  }

  const dataDir = resolve(cwd, str('dataDir', 'data') as string)
  const databaseGiven = str('database')
  const database = databaseGiven
    ? isAbsolute(databaseGiven)
      ? databaseGiven
      : resolve(cwd, databaseGiven)
    : join(dataDir, 'meshtap.db')

  const brokers: BrokerConfig[] = []
  const bg = given('brokers')
  if (bg) {
    const list = asList(bg, /\s+/)
    list.forEach((b, i) => {
      brokers.push(parseBroker(b, `${bg.where}[${i}]`, brokers.length))
    })
  }
  const region = str('public')
  if (region !== undefined) {
    if (!/^[A-Za-z0-9_]{2,16}$/.test(region)) {
      throw new ConfigError(
        `${given('public')?.where}: expected a region like US, EU_868, ANZ, got "${region}"`,
      )
    }
    brokers.push({
      ...PUBLIC_BROKER,
      topics: [`msh/${region}/#`],
      name: `public ${region}`,
      id: 'public',
    })
  }

  const keys: ChannelKeyInput[] = []
  const kg = given('keys')
  if (kg) {
    asList(kg, /[,\s]+/).forEach((k, i) => {
      keys.push(parseKey(k, `${kg.where}[${i}]`))
    })
  }

  const token = str('token')
  if (token !== undefined && (token.length < 16 || /\s/.test(token))) {
    throw new ConfigError(
      `${given('token')?.where}: expected at least 16 characters without spaces (value hidden)`,
    )
  }
  const protectReads = bool('protectReads', false)
  if (protectReads && !token) {
    throw new ConfigError(
      `${given('protectReads')?.where}: protecting reads needs a token (--token or MESHTAP_TOKEN)`,
    )
  }

  const corsOrigins: string[] = []
  const cg = given('corsOrigins')
  if (cg) {
    for (const [i, o] of asList(cg, /[,\s]+/).entries()) {
      let ok = false
      if (typeof o === 'string') {
        try {
          const u = new URL(o)
          ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === o
        } catch {}
      }
      if (!ok) {
        throw new ConfigError(
          `${cg.where}[${i}]: expected an origin like https://example.org (scheme, host, optional port; no path), got ${JSON.stringify(o)}`,
        )
      }
      corsOrigins.push(o as string)
    }
  }

  const tileUrl = str('tileUrl')
  if (tileUrl !== undefined && !/^https?:\/\/[^\s]*\{z\}[^\s]*\{x\}[^\s]*\{y\}/.test(tileUrl)) {
    throw new ConfigError(
      `${given('tileUrl')?.where}: expected an http(s) URL with {z}, {x} and {y}, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png`,
    )
  }

  const logLevel = str('logLevel', 'warn') as string
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
  if (!levels.includes(logLevel)) {
    throw new ConfigError(
      `${given('logLevel')?.where}: expected one of ${levels.join(', ')}, got "${logLevel}"`,
    )
  }

  const mqttUser = str('mqtt.username')
  const mqttPassword = str('mqtt.password')
  if ((mqttUser === undefined) !== (mqttPassword === undefined)) {
    throw new ConfigError(
      `${given(mqttUser === undefined ? 'mqtt.password' : 'mqtt.username')?.where}: give both mqtt.username and mqtt.password, or neither`,
    )
  }
  const mqttEnabled = bool('mqtt.enabled', true)
  const simulate = bool('simulate.enabled', false)
  if (simulate && !mqttEnabled) {
    throw new ConfigError(
      '--simulate publishes to the embedded broker: it cannot be used with --no-mqtt',
    )
  }
  const simGateways = int('simulate.gateways', 6, 1, 100)
  const simNodes = int('simulate.nodes', 60, 1, 20_000)
  if (simulate && simGateways > simNodes) {
    throw new ConfigError(
      `${given('simulate.gateways')?.where}: expected at most simulate.nodes (${simNodes}) gateways`,
    )
  }
  const webDir = str('webDir')

  // PostgreSQL, shared subscriptions and web-only instances.
  const pgUrl = str('pg')
  let pg: ServerConfig['pg']
  if (pgUrl !== undefined) {
    let ok = false
    try {
      const u = new URL(pgUrl)
      ok = (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.hostname !== ''
    } catch {}
    if (!ok) {
      throw new ConfigError(
        `${given('pg')?.where}: expected a PostgreSQL URL like postgres://user:pass@host:5432/db (value hidden)`,
      )
    }
    if (databaseGiven !== undefined) {
      throw new ConfigError(
        `${given('database')?.where}: give either a SQLite file (--db) or a PostgreSQL URL (--pg), not both`,
      )
    }
    const schema = str('pgSchema', 'meshtap') as string
    if (!/^[a-z_][a-z0-9_]{0,47}$/.test(schema)) {
      throw new ConfigError(
        `${given('pgSchema')?.where}: expected lowercase letters, digits and _ (at most 48), got "${schema}"`,
      )
    }
    pg = { url: pgUrl, schema }
  } else if (given('pgSchema')) {
    throw new ConfigError(`${given('pgSchema')?.where}: a schema needs a PostgreSQL URL (--pg)`)
  }
  const share = str('share')
  if (share !== undefined) {
    if (!/^[^/+#\s]{1,64}$/.test(share)) {
      throw new ConfigError(
        `${given('share')?.where}: expected a group name without "/", "+", "#" or spaces, got "${share}"`,
      )
    }
    if (brokers.length === 0) {
      throw new ConfigError(
        `${given('share')?.where}: shared subscriptions apply to upstream brokers (--broker, --public); the embedded broker has none`,
      )
    }
    for (const [i, b] of brokers.entries()) {
      if (b.protocolVersion !== undefined && b.protocolVersion !== 5) {
        throw new ConfigError(
          `${given('share')?.where}: broker ${b.id} speaks MQTT ${b.protocolVersion}; shared subscriptions need MQTT 5`,
        )
      }
      const shared: BrokerConfig = { ...b, shareGroup: share, protocolVersion: 5 }
      try {
        createMqttSource({ brokers: [shared] })
      } catch (e) {
        throw new ConfigError(
          `${given('share')?.where}: broker ${b.id}: ${(e as Error).message.replace(/^createMqttSource: /, '')}`,
        )
      }
      brokers[i] = shared
    }
  }
  const ingestGiven = given('ingest')
  const ingest = ingestGiven ? asBool(ingestGiven) : !(pg && !mqttEnabled && brokers.length === 0)
  if (!ingest) {
    if (!pg) {
      throw new ConfigError(
        `${ingestGiven?.where}: a web-only instance shows what ingest workers write to PostgreSQL: it needs --pg`,
      )
    }
    if (brokers.length > 0 || simulate) {
      throw new ConfigError(
        `${ingestGiven?.where}: a web-only instance has no sources; drop ${brokers.length > 0 ? '--broker/--public' : '--simulate'}`,
      )
    }
  }

  return {
    host: str('host', '127.0.0.1') as string,
    port: int('port', 8080, 0, 65_535),
    dataDir,
    database,
    ...(pg ? { pg } : {}),
    ingest,
    ...(share !== undefined ? { share } : {}),
    mqtt: {
      enabled: mqttEnabled && ingest,
      host: str('mqtt.host', '127.0.0.1') as string,
      port: int('mqtt.port', 1883, 0, 65_535),
      ...(mqttUser !== undefined ? { username: mqttUser, password: mqttPassword } : {}),
    },
    brokers,
    simulate: simulate
      ? {
          rate: int('simulate.rate', 20, 1, 10_000),
          nodes: simNodes,
          gateways: simGateways,
          seed: int('simulate.seed', 1, 0, 2 ** 31),
          burst: int('simulate.burst', 400, 0, 1_000_000),
        }
      : false,
    keys,
    ...(token !== undefined ? { token } : {}),
    protectReads,
    corsOrigins,
    rateLimit: int('rateLimit', 1200, 0, 1_000_000),
    ...(tileUrl !== undefined ? { tileUrl } : {}),
    ...(str('tileAttribution') !== undefined
      ? { tileAttribution: str('tileAttribution') as string }
      : {}),
    memoryLimitMb: int('memoryLimitMb', 1024, 16, 1_048_576),
    logLevel: logLevel as ServerConfig['logLevel'],
    webDir: webDir
      ? resolve(cwd, webDir)
      : new URL('../web/dist', import.meta.url).pathname.replace(/\/$/, ''),
  }
}

/** The configuration without secrets, safe to print or serve. */
export function describeConfig(config: ServerConfig): Record<string, unknown> {
  return {
    http: `${config.host}:${config.port}`,
    database: config.pg ? `${redact(config.pg.url)} (schema ${config.pg.schema})` : config.database,
    ingest: config.ingest ? 'on' : 'off (web-only: live events from the PostgreSQL change feed)',
    share: config.share ?? 'off',
    mqtt: config.mqtt.enabled
      ? `${config.mqtt.host}:${config.mqtt.port}${config.mqtt.username ? ' (password required)' : ''}`
      : 'off',
    brokers: config.brokers.map((b) => `${b.id}: ${redact(b.url)} ${b.topics.join(' ')}`),
    simulate: config.simulate,
    keys: config.keys.map((k) => k.name),
    controlApi: config.token ? 'on (token)' : 'off (no token)',
    protectReads: config.protectReads,
    corsOrigins: config.corsOrigins,
    rateLimit: config.rateLimit,
    tileUrl: config.tileUrl ?? 'none (plain background)',
  }
}

/** A URL without user name and password. */
export function redact(url: string): string {
  try {
    const u = new URL(url)
    u.username = ''
    u.password = ''
    return u.href.replace(/\/$/, '')
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//')
  }
}
