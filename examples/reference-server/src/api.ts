import { timingSafeEqual } from 'node:crypto'
import type { BoundingBox, NodeRef, QueryableStore } from '@meshtap/protocol'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { gatewaysOf } from './diagnostics.js'

/** What the routes need from the assembly. */
export interface ApiDeps {
  store: QueryableStore
  token?: string | undefined
  protectReads: boolean
  /** Live node state (the ingest's hot cache). */
  cachedGateways(
    num: number,
  ): Record<string, { lastHeard: number; rxSnr: number; rxRssi: number; count: number }> | undefined
  diagnose(num: number): Promise<unknown>
  stats(): Promise<unknown>
  health(): Promise<{ status: 'ok' | 'degraded' } & Record<string, unknown>>
  metrics(): Promise<{ contentType: string; body: string }>
  uiConfig(): unknown
  sources: {
    list(): unknown[]
    start(id: string): Promise<unknown | undefined>
    stop(id: string): Promise<unknown | undefined>
  }
  keys: {
    list(): string[]
    add(name: string, psk: string): Promise<unknown>
  }
}

/** A 4xx with a JSON body `{ statusCode, error, code, message }`. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

// ---- shared JSON schemas (validation + OpenAPI) ----

const limit = {
  type: 'integer',
  minimum: 1,
  maximum: 1000,
  description: 'Rows per page (default 100, at most 1000).',
}
const cursor = {
  type: 'string',
  minLength: 1,
  maxLength: 512,
  pattern: '^[A-Za-z0-9+/=_-]+$',
  description: '`nextCursor` of the previous page (same filters).',
}
const time = (what: string) => ({
  type: 'integer',
  minimum: 0,
  maximum: 8_640_000_000_000_000,
  description: `${what}, Unix milliseconds.`,
})
const nodeRef = {
  type: 'string',
  pattern: '^(![0-9a-fA-F]{8}|[0-9]{1,10})$',
  description: 'A node id (`!fa75f7c0`) or number (`4202035136`).',
}
const gateway = {
  type: 'string',
  pattern: '^![0-9a-fA-F]{8}$',
  description: 'A gateway id, `!xxxxxxxx`.',
}
const channel = { type: 'string', minLength: 1, maxLength: 32, description: 'Channel name.' }
const order = { type: 'string', enum: ['asc', 'desc'], description: 'Default `desc`.' }
const bbox = {
  type: 'string',
  maxLength: 100,
  pattern: '^-?[0-9.]+,-?[0-9.]+,-?[0-9.]+,-?[0-9.]+$',
  description: '`south,west,north,east` in degrees.',
}
const page = { limit, cursor }
const timed = {
  ...page,
  since: time('Inclusive lower bound'),
  until: time('Exclusive upper bound'),
  order,
}

const query = (properties: Record<string, unknown>) => ({
  type: 'object',
  additionalProperties: false,
  properties,
})
const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: nodeRef },
}

function nodeNum(ref: string, where = 'id'): number {
  const n = ref.startsWith('!') ? Number.parseInt(ref.slice(1), 16) : Number(ref)
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw new HttpError(400, 'BAD_NODE', `${where}: a node number is at most 4294967295`)
  }
  return n
}

function parseBbox(text: string): BoundingBox {
  const [south, west, north, east] = text.split(',').map(Number) as [number, number, number, number]
  const ok =
    [south, west, north, east].every(Number.isFinite) &&
    Math.abs(south) <= 90 &&
    Math.abs(north) <= 90 &&
    Math.abs(west) <= 180 &&
    Math.abs(east) <= 180 &&
    south <= north
  if (!ok) {
    throw new HttpError(
      400,
      'BAD_BBOX',
      'bbox: expected south,west,north,east with |lat| ≤ 90, |lon| ≤ 180 and south ≤ north',
    )
  }
  return { south, west, north, east }
}

type Q = Record<string, string | number | boolean | undefined>

/** Query fields that are integers (the schema coerces them; `1e309` would pass as Infinity). */
const INTEGER_FIELDS = new Set(['limit', 'since', 'until'])

/** Copies the query into store filters: node refs and boxes parsed, the rest as given. */
function filters(q: Q): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue
    if (INTEGER_FIELDS.has(k) && !Number.isSafeInteger(v)) {
      throw new HttpError(
        400,
        'BAD_NUMBER',
        `${k}: expected an integer, got ${String(v).slice(0, 40)}`,
      )
    }
    if (k === 'node' || k === 'to') out[k] = nodeNum(String(v), k) as NodeRef
    else if (k === 'bbox') out[k] = parseBbox(String(v))
    else if (k === 'portnum') out[k] = String(v).split(',').map(Number)
    else out[k] = v
  }
  if (typeof out.since === 'number' && typeof out.until === 'number' && out.since > out.until) {
    throw new HttpError(400, 'BAD_RANGE', 'since must not be after until')
  }
  return out
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Registers the HTTP API routes under `/api` plus `/metrics`. */
export function registerApi(app: FastifyInstance, deps: ApiDeps): void {
  const { store } = deps

  function bearer(request: FastifyRequest): string | undefined {
    const h = request.headers.authorization
    return h?.startsWith('Bearer ') ? h.slice(7).trim() : undefined
  }
  const requireToken = (kind: 'control' | 'read') => async (request: FastifyRequest) => {
    if (kind === 'read' && !deps.protectReads) return
    if (!deps.token) {
      throw new HttpError(
        403,
        'CONTROL_DISABLED',
        'the control API is disabled: start the server with a token (--token or MESHTAP_TOKEN)',
      )
    }
    const given = bearer(request)
    if (!given) {
      throw new HttpError(401, 'UNAUTHORIZED', 'send the token as "Authorization: Bearer <token>"')
    }
    if (!same(given, deps.token)) throw new HttpError(401, 'UNAUTHORIZED', 'wrong token')
  }
  const read = { onRequest: requireToken('read') }
  const control = { onRequest: requireToken('control') }
  const security = (kind: 'read' | 'control') =>
    kind === 'control' || deps.protectReads ? [{ bearer: [] }] : []

  const list = (
    path: string,
    summary: string,
    properties: Record<string, unknown>,
    run: (q: Record<string, unknown>) => Promise<unknown>,
  ) => {
    app.get(
      path,
      {
        ...read,
        schema: {
          summary,
          tags: ['data'],
          querystring: query(properties),
          security: security('read'),
        },
      },
      async (request) => run(filters(request.query as Q)),
    )
  }

  list(
    '/api/nodes',
    'Nodes with their latest state, last heard first',
    {
      ...page,
      since: time('Heard at or after'),
      bbox,
      search: { type: 'string', minLength: 1, maxLength: 64, description: 'Name or id prefix.' },
      gateways: { type: 'boolean', description: 'Only MQTT gateways.' },
    },
    (q) => store.listNodes(q),
  )

  app.get(
    '/api/nodes/:id',
    {
      ...read,
      schema: {
        summary: 'One node: latest state, telemetry, links and the gateways that hear it',
        tags: ['data'],
        params: idParams,
        security: security('read'),
      },
    },
    async (request) => {
      const num = nodeNum((request.params as { id: string }).id)
      const [node, receptions] = await Promise.all([
        store.getNode(num),
        store.listReceptions({ node: num, limit: 500 }),
      ])
      if (!node)
        throw new HttpError(
          404,
          'NOT_FOUND',
          `no node ${(request.params as { id: string }).id} is known`,
        )
      return { ...node, gateways: gatewaysOf(receptions.items, deps.cachedGateways(num)) }
    },
  )

  app.get(
    '/api/nodes/:id/diagnostics',
    {
      ...read,
      schema: {
        summary:
          'Why is my node (not) on the map? What was seen from it, by which gateways, and what was not used and why',
        tags: ['data'],
        params: idParams,
        security: security('read'),
      },
    },
    async (request) => deps.diagnose(nodeNum((request.params as { id: string }).id)),
  )

  const packetFilter = { node: nodeRef, gateway, channel }
  list('/api/positions', 'Position reports', { ...timed, ...packetFilter, bbox }, (q) =>
    store.listPositions(q),
  )
  list(
    '/api/telemetry',
    'Telemetry reports',
    {
      ...timed,
      ...packetFilter,
      variant: {
        type: 'string',
        enum: ['device', 'environment', 'airQuality', 'power', 'localStats', 'health', 'host'],
      },
    },
    (q) => store.listTelemetry(q),
  )
  list(
    '/api/messages',
    'Text messages',
    { ...timed, ...packetFilter, to: nodeRef, direct: { type: 'boolean' } },
    (q) => store.listMessages(q),
  )
  list(
    '/api/packets',
    'Logical packets, decoded',
    {
      ...timed,
      ...packetFilter,
      to: nodeRef,
      portnum: {
        type: 'string',
        pattern: '^[0-9]{1,3}(,[0-9]{1,3}){0,15}$',
        description: 'Port numbers, comma-separated.',
      },
    },
    (q) => store.listPackets(q),
  )
  list(
    '/api/traceroutes',
    'Traceroutes, one row per gateway copy',
    { ...timed, node: nodeRef, gateway },
    (q) => store.listTraceroutes(q),
  )
  list(
    '/api/links',
    'The link graph: who hears whom',
    {
      ...page,
      since: time('Seen at or after (default 7 days ago)'),
      node: nodeRef,
      source: { type: 'string', enum: ['direct', 'neighborinfo'] },
    },
    (q) => store.links(q),
  )
  list(
    '/api/gateways',
    'Per-gateway statistics over a window (default the last 24 hours)',
    { ...page, since: time('Inclusive'), until: time('Exclusive'), gateway },
    (q) => store.gatewayStats(q),
  )

  app.get(
    '/api/stats',
    {
      ...read,
      schema: {
        summary: 'Counters, ingest rate, store size, live viewers',
        tags: ['status'],
        security: security('read'),
      },
    },
    () => deps.stats(),
  )
  app.get(
    '/api/config',
    { schema: { summary: 'What the web UI needs (no secrets)', tags: ['status'] } },
    async () => deps.uiConfig(),
  )
  app.get(
    '/api/health',
    {
      config: { rateLimit: false },
      schema: {
        summary: 'Database, sources, WebSocket and memory; 503 when degraded',
        tags: ['status'],
      },
    },
    async (_request, reply: FastifyReply) => {
      const h = await deps.health()
      reply.code(h.status === 'ok' ? 200 : 503)
      return h
    },
  )
  app.get(
    '/metrics',
    {
      ...read,
      schema: { summary: 'Prometheus metrics', tags: ['status'], security: security('read') },
    },
    async (_request, reply) => {
      const m = await deps.metrics()
      reply.type(m.contentType)
      return m.body
    },
  )

  // ---- control API ----
  const sourceParams = {
    type: 'object',
    required: ['id'],
    properties: { id: { type: 'string', pattern: '^[a-z0-9-]{1,40}$' } },
  }
  app.get(
    '/api/control/sources',
    {
      ...control,
      schema: {
        summary: 'Every source and its state',
        tags: ['control'],
        security: [{ bearer: [] }],
      },
    },
    async () => ({ items: deps.sources.list() }),
  )
  for (const action of ['start', 'stop'] as const) {
    app.post(
      `/api/control/sources/:id/${action}`,
      {
        ...control,
        schema: {
          summary: `${action === 'start' ? 'Start' : 'Stop'} one source`,
          tags: ['control'],
          params: sourceParams,
          security: [{ bearer: [] }],
        },
      },
      async (request) => {
        const { id } = request.params as { id: string }
        const info = await deps.sources[action](id)
        if (!info) throw new HttpError(404, 'NOT_FOUND', `no source "${id}"`)
        return { source: info }
      },
    )
  }
  app.get(
    '/api/control/keys',
    {
      ...control,
      schema: {
        summary: 'Channel names with a key (never the keys)',
        tags: ['control'],
        security: [{ bearer: [] }],
      },
    },
    async () => ({ items: deps.keys.list().map((name) => ({ name })) }),
  )
  app.post(
    '/api/control/keys',
    {
      ...control,
      schema: {
        summary: 'Add a channel key and re-decrypt the packets kept undecoded',
        tags: ['control'],
        security: [{ bearer: [] }],
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'psk'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 11, pattern: '^[^/#+\\s]+$' },
            psk: { type: 'string', minLength: 0, maxLength: 64, pattern: '^[A-Za-z0-9+/=]*$' },
          },
        },
      },
    },
    async (request) => {
      const { name, psk } = request.body as { name: string; psk: string }
      return deps.keys.add(name, psk)
    },
  )
}
