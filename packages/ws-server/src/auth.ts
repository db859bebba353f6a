import type { IncomingMessage } from 'node:http'
import { WIRE_TOKEN_PROTOCOL_PREFIX } from '@meshtap/protocol'

/**
 * A token found in an upgrade request, and where: an `Authorization: Bearer …` header, the `token`
 * query parameter, or a `meshtap.token.…` subprotocol (the way browsers can send one).
 *
 * @example
 * const auth = async (req: IncomingMessage, { token }: WsCredentials) => (token === process.env.TOKEN ? { user: 'viewer' } : undefined)
 */
export interface WsCredentials {
  token?: string
  via?: 'header' | 'query' | 'subprotocol'
}

/**
 * Reads the token of an upgrade request: the `Authorization: Bearer` header first, then the query
 * parameter, then the subprotocol.
 *
 * @example
 * credentialsOf(req) // { token: 's3cret', via: 'query' } for GET /live?token=s3cret
 */
export function credentialsOf(request: IncomingMessage, queryParam = 'token'): WsCredentials {
  const header = request.headers.authorization
  if (typeof header === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (m) return { token: m[1] as string, via: 'header' }
  }
  const url = request.url ?? '/'
  const q = url.indexOf('?')
  if (q >= 0) {
    const value = new URLSearchParams(url.slice(q + 1)).get(queryParam)
    if (value) return { token: value, via: 'query' }
  }
  const protocols = request.headers['sec-websocket-protocol']
  if (typeof protocols === 'string') {
    for (const p of protocols.split(',')) {
      const s = p.trim()
      if (
        s.startsWith(WIRE_TOKEN_PROTOCOL_PREFIX) &&
        s.length > WIRE_TOKEN_PROTOCOL_PREFIX.length
      ) {
        return { token: s.slice(WIRE_TOKEN_PROTOCOL_PREFIX.length), via: 'subprotocol' }
      }
    }
  }
  return {}
}
