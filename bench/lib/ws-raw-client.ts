/**
 * A WebSocket client for load tests, on a raw TCP socket: it does the handshake (optionally
 * offering permessage-deflate), sends one text message, answers pings and closes, and otherwise
 * only parses frame headers to count frames and payload bytes — no inflate, no JSON, so that
 * thousands of them cost little and the server is what gets measured (the method of the
 * performance notes). With `onMessage` it also reassembles, inflates and hands over each message
 * (for the few probe clients that measure latency).
 */
import { randomBytes } from 'node:crypto'
import { createConnection, type Socket } from 'node:net'
import { constants, inflateRawSync } from 'node:zlib'

/** What a client counted since the last {@link RawClient.resetCounts}. */
export interface RawCounts {
  frames: number
  /** Payload bytes of data frames, as on the wire (compressed when compressed). */
  bytes: number
}

export interface RawClientOptions {
  host: string
  port: number
  path: string
  /** Offer permessage-deflate. */
  deflate: boolean
  /** A text message to send once connected (e.g. the subscribe message). */
  send?: string
  /** Full mode: every data message, inflated, with its arrival time (`Date.now()`). */
  onMessage?: (text: string, at: number) => void
  timeoutMs?: number
}

export interface RawClient {
  readonly socket: Socket
  /** Whether the server accepted permessage-deflate. */
  readonly deflate: boolean
  counts: RawCounts
  resetCounts(): void
  /** Close code when closed by the server, or -1 when the socket ended without one. */
  readonly closeCode: number | undefined
  close(): void
}

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff])

/** A masked client text frame. */
export function clientFrame(text: string, opcode = 0x1): Buffer {
  const payload = Buffer.from(text)
  const len = payload.length
  const headerLen = len < 126 ? 2 : len < 65536 ? 4 : 10
  const out = Buffer.allocUnsafe(headerLen + 4 + len)
  out[0] = 0x80 | opcode
  if (len < 126) out[1] = 0x80 | len
  else if (len < 65536) {
    out[1] = 0x80 | 126
    out.writeUInt16BE(len, 2)
  } else {
    out[1] = 0x80 | 127
    out.writeBigUInt64BE(BigInt(len), 2)
  }
  const mask = randomBytes(4)
  mask.copy(out, headerLen)
  for (let i = 0; i < len; i++)
    out[headerLen + 4 + i] = (payload[i] as number) ^ (mask[i & 3] as number)
  return out
}

/** Opens one client; resolves once the handshake is done (and `send` was sent). */
export function openRawClient(o: RawClientOptions): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: o.host, port: o.port })
    socket.setNoDelay(true)
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error('handshake timeout'))
    }, o.timeoutMs ?? 30_000)
    let handshake: Buffer | undefined = Buffer.alloc(0)
    let deflate = false
    let closeCode: number | undefined
    const counts: RawCounts = { frames: 0, bytes: 0 }

    // Frame parser state.
    const header = Buffer.alloc(14)
    let headerHave = 0
    let need = 2
    let inPayload = false
    let remaining = 0
    let opcode = 0
    let rsv1 = false
    let chunks: Buffer[] = []
    let collect = false

    const client: RawClient = {
      socket,
      get deflate() {
        return deflate
      },
      counts,
      resetCounts() {
        counts.frames = 0
        counts.bytes = 0
      },
      get closeCode() {
        return closeCode
      },
      close() {
        if (!socket.destroyed) {
          socket.end(clientFrame('\x03\xe8', 0x8))
          setTimeout(() => socket.destroy(), 1000).unref()
        }
      },
    }

    function frameDone(): void {
      const payload = collect ? Buffer.concat(chunks) : undefined
      chunks = []
      if (opcode === 0x9) {
        socket.write(clientFrame((payload ?? Buffer.alloc(0)).toString('latin1'), 0xa))
      } else if (opcode === 0x8) {
        closeCode = payload && payload.length >= 2 ? payload.readUInt16BE(0) : 1005
        socket.end()
      } else if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
        counts.frames++
        if (payload && o.onMessage) {
          const text = rsv1
            ? inflateRawSync(Buffer.concat([payload, TAIL]), {
                finishFlush: constants.Z_SYNC_FLUSH,
              }).toString()
            : payload.toString()
          o.onMessage(text, Date.now())
        }
      }
    }

    function parse(data: Buffer): void {
      let i = 0
      while (i < data.length) {
        if (inPayload) {
          const take = Math.min(remaining, data.length - i)
          if (collect) chunks.push(data.subarray(i, i + take))
          if (opcode < 0x8) counts.bytes += take
          remaining -= take
          i += take
          if (remaining === 0) {
            inPayload = false
            headerHave = 0
            need = 2
            frameDone()
          }
          continue
        }
        // Header bytes.
        while (headerHave < need && i < data.length) header[headerHave++] = data[i++] as number
        if (headerHave < need) return
        if (need === 2) {
          const b1 = (header[1] as number) & 0x7f
          need = b1 === 126 ? 4 : b1 === 127 ? 10 : 2
          if (need > 2) continue
        }
        const b0 = header[0] as number
        const b1 = (header[1] as number) & 0x7f
        opcode = b0 & 0x0f
        if (opcode !== 0) rsv1 = (b0 & 0x40) !== 0
        remaining =
          b1 === 126 ? header.readUInt16BE(2) : b1 === 127 ? Number(header.readBigUInt64BE(2)) : b1
        collect = opcode >= 0x8 || o.onMessage !== undefined
        inPayload = true
        if (remaining === 0) {
          inPayload = false
          headerHave = 0
          need = 2
          frameDone()
        }
      }
    }

    socket.on('data', (data: Buffer) => {
      if (handshake) {
        handshake = Buffer.concat([handshake, data])
        const end = handshake.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = handshake.subarray(0, end).toString('latin1')
        const rest = handshake.subarray(end + 4)
        handshake = undefined
        clearTimeout(timer)
        if (!/^HTTP\/1\.1 101/.test(head)) {
          socket.destroy()
          reject(new Error(`handshake refused: ${head.split('\r\n')[0]}`))
          return
        }
        deflate = /^sec-websocket-extensions:.*permessage-deflate/im.test(head)
        if (o.send !== undefined) socket.write(clientFrame(o.send))
        resolve(client)
        if (rest.length > 0) parse(rest)
        return
      }
      parse(data)
    })
    socket.on('error', (e) => {
      clearTimeout(timer)
      if (handshake) reject(e)
    })
    socket.on('close', () => {
      closeCode ??= -1
    })
    const key = randomBytes(16).toString('base64')
    socket.write(
      [
        `GET ${o.path} HTTP/1.1`,
        `Host: ${o.host}:${o.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${key}`,
        'Sec-WebSocket-Version: 13',
        ...(o.deflate
          ? ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits']
          : []),
        '',
        '',
      ].join('\r\n'),
    )
  })
}

/** Opens `count` clients, at most `concurrency` handshakes at a time. */
export async function openRawClients(
  count: number,
  options: RawClientOptions,
  concurrency = 200,
): Promise<{ clients: RawClient[]; failed: number; firstError?: string }> {
  const clients: RawClient[] = []
  let failed = 0
  let firstError: string | undefined
  let next = 0
  async function worker() {
    while (next < count) {
      next++
      try {
        clients.push(await openRawClient(options))
      } catch (e) {
        failed++
        firstError ??= e instanceof Error ? e.message : String(e)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return firstError === undefined ? { clients, failed } : { clients, failed, firstError }
}
