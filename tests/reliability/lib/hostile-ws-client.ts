/**
 * A recording WebSocket client for the hostile-frame tests, and a raw TCP client that completes a
 * WebSocket handshake and then writes whatever bytes it is given (frames `ws` would never send).
 * @module
 */
import { randomBytes } from 'node:crypto'
import { type Socket, connect as tcpConnect } from 'node:net'
import { WIRE_SUBPROTOCOL } from '@meshtap/protocol'
import WebSocket from 'ws'

/** A parsed server message (loosely typed: the tests look at a few fields). */
export interface Msg {
  type: string
  code?: string
  id?: unknown
  seq?: number
  events?: unknown[]
  [k: string]: unknown
}

/** A client that keeps every message and the close code. */
export interface RecordingClient {
  ws: WebSocket
  messages: Msg[]
  /** Batches received. */
  batches(): number
  closed: Promise<{ code: number; reason: string }>
  /** Resolves with the first message from index `from` on that matches. */
  next(accept: (m: Msg) => boolean, from?: number, timeoutMs?: number): Promise<Msg>
  send(value: unknown): void
  close(): Promise<void>
}

/** Connects with the meshtap subprotocol (and `extra` ones, e.g. a token). */
export async function connectRecording(
  url: string,
  extra: string[] = [],
): Promise<RecordingClient> {
  const ws = new WebSocket(url, [WIRE_SUBPROTOCOL, ...extra], { perMessageDeflate: false })
  const messages: Msg[] = []
  const waiters = new Set<() => void>()
  ws.on('message', (data) => {
    messages.push(JSON.parse(String(data)) as Msg)
    for (const w of waiters) w()
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: String(reason) })
      for (const w of waiters) w()
    })
  })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  ws.on('error', () => {})
  return {
    ws,
    messages,
    batches: () => messages.filter((m) => m.type === 'batch').length,
    closed,
    next(accept, from = 0, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = from; i < messages.length; i++) {
            const m = messages[i] as Msg
            if (accept(m)) {
              done()
              resolve(m)
              return
            }
          }
          if (ws.readyState === WebSocket.CLOSED) {
            done()
            reject(new Error('closed before the expected message'))
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`no matching message within ${timeoutMs} ms`))
        }, timeoutMs)
        const done = () => {
          clearTimeout(timer)
          waiters.delete(check)
        }
        waiters.add(check)
        check()
      })
    },
    send(value) {
      ws.send(typeof value === 'string' ? value : JSON.stringify(value))
    },
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return
      ws.close()
      const t = setTimeout(() => ws.terminate(), 1000)
      await closed
      clearTimeout(t)
    },
  }
}

/** A masked client frame (FIN set unless `fin` is false), with any opcode and RSV bits. */
export function clientFrame(
  opcode: number,
  payload: Uint8Array,
  options: { fin?: boolean; rsv?: number; masked?: boolean } = {},
): Uint8Array {
  const masked = options.masked ?? true
  const len = payload.length
  const head: number[] = [((options.fin ?? true) ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode]
  const m = masked ? 0x80 : 0
  if (len < 126) head.push(m | len)
  else if (len < 65536) head.push(m | 126, len >> 8, len & 0xff)
  else {
    head.push(m | 127, 0, 0, 0, 0)
    head.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff)
  }
  const mask = masked ? randomBytes(4) : undefined
  const body = new Uint8Array(len)
  for (let i = 0; i < len; i++)
    body[i] = (payload[i] as number) ^ (mask ? (mask[i & 3] as number) : 0)
  return Uint8Array.from([...head, ...(mask ?? []), ...body])
}

/**
 * Opens a TCP connection, performs the WebSocket handshake on `path`, and returns the socket and
 * a promise of the close code the server sends (or `undefined` when it just drops the socket).
 */
export async function rawWebSocket(
  host: string,
  port: number,
  path: string,
  protocols: string[] = [WIRE_SUBPROTOCOL],
): Promise<{ socket: Socket; closeCode: Promise<number | undefined> }> {
  const socket = tcpConnect({ host, port })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  socket.on('error', () => {})
  const key = randomBytes(16).toString('base64')
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${protocols.join(', ')}\r\n\r\n`,
  )
  let buf = Buffer.alloc(0)
  let upgraded = false
  let resolveUpgrade!: () => void
  let rejectUpgrade!: (e: Error) => void
  const upgrade = new Promise<void>((res, rej) => {
    resolveUpgrade = res
    rejectUpgrade = rej
  })
  const closeCode = new Promise<number | undefined>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buf.subarray(0, end).toString()
        buf = buf.subarray(end + 4)
        if (!head.startsWith('HTTP/1.1 101')) {
          rejectUpgrade(new Error(head.split('\r\n')[0]))
          return
        }
        upgraded = true
        resolveUpgrade()
      }
      // Scan the server's (unmasked) frames for a close frame.
      let i = 0
      while (i + 2 <= buf.length) {
        const op = (buf[i] as number) & 0x0f
        let len = (buf[i + 1] as number) & 0x7f
        let off = i + 2
        if (len === 126) {
          if (off + 2 > buf.length) break
          len = buf.readUInt16BE(off)
          off += 2
        } else if (len === 127) {
          if (off + 8 > buf.length) break
          len = Number(buf.readBigUInt64BE(off))
          off += 8
        }
        if (off + len > buf.length) break
        if (op === 8) {
          resolve(len >= 2 ? buf.readUInt16BE(off) : 1005)
          return
        }
        i = off + len
      }
      buf = buf.subarray(i)
    })
    socket.on('close', () => resolve(undefined))
  })
  await upgrade
  return { socket, closeCode }
}
