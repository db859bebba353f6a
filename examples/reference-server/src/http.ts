import { existsSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'
import { join } from 'node:path'
import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import fastifyStatic from '@fastify/static'
import swagger from '@fastify/swagger'
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify'
import type { ServerConfig } from './config.js'

/**
 * The Fastify instance with the cross-cutting parts: JSON errors (4xx with the reason, 500 without
 * details), security headers, CORS allow-list, per-client rate limit, OpenAPI collection.
 */
export async function createHttpServer(config: ServerConfig): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: config.logLevel, redact: ['req.headers.authorization'] },
    bodyLimit: 16_384,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } },
  })
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const store = (error as { code?: string }).code
    let status = error.statusCode ?? 500
    if (store === 'INVALID_CURSOR' || store === 'INVALID_OPTIONS') status = 400
    if (status >= 500) request.log.error(error)
    const message = status >= 500 ? 'internal error (see the server log)' : error.message
    const code = status < 500 ? (error.code ?? 'BAD_REQUEST') : 'INTERNAL'
    reply.code(status).send({ statusCode: status, code, error: STATUS_CODES[status], message })
  })
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        'img-src': [
          "'self'",
          'data:',
          ...(config.tileUrl ? [new URL(config.tileUrl.replace(/[{}]/g, '')).origin] : []),
        ],
        'connect-src': ["'self'", 'ws:', 'wss:'],
        'style-src': ["'self'", "'unsafe-inline'"],
        // Served over plain HTTP on a LAN as often as behind TLS: do not force https subresources.
        'upgrade-insecure-requests': null,
      },
    },
    crossOriginEmbedderPolicy: false,
  })
  await app.register(cors, {
    origin: config.corsOrigins.length > 0 ? config.corsOrigins : false,
    methods: ['GET', 'POST'],
    allowedHeaders: ['Authorization', 'Content-Type'],
  })
  if (config.rateLimit > 0) {
    await app.register(rateLimit, {
      max: config.rateLimit,
      timeWindow: 60_000,
      errorResponseBuilder: (_request, ctx) => ({
        statusCode: 429,
        code: 'RATE_LIMITED',
        error: 'Too Many Requests',
        message: `at most ${ctx.max} requests per minute per client; retry in ${ctx.after}`,
      }),
    })
  }
  await app.register(swagger, {
    openapi: {
      info: { title: 'meshtap reference server', version: '0.0.0' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  })
  return app
}

/** `/api/openapi.json`, the built web UI (with client-side routes), and JSON 404s. */
export async function serveDocsAndWeb(app: FastifyInstance, webDir: string): Promise<void> {
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  const hasWeb = existsSync(join(webDir, 'index.html'))
  if (hasWeb) await app.register(fastifyStatic, { root: webDir, wildcard: false })
  app.setNotFoundHandler((request, reply) => {
    const api = request.url.startsWith('/api/') || request.url === '/metrics'
    if (!api && hasWeb && request.method === 'GET') return reply.sendFile('index.html')
    reply.code(404).send({
      statusCode: 404,
      code: 'NOT_FOUND',
      error: 'Not Found',
      message: `no route ${request.method} ${request.url.split('?')[0]}`,
    })
  })
}
