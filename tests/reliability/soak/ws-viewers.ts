/**
 * WebSocket viewers for the soak: real clients of the server's live feed (`/api/live`, protocol
 * `meshtap.v1`), subscribed to everything, counting the events they receive. They keep the
 * fan-out path (batching, serialisation, per-client buffers) under load for the whole run.
 */
import WebSocket from 'ws'

/** The viewers of one soak run. */
export interface WsViewers {
  /** Events received by all viewers together. */
  events(): number
  /** Messages that were not valid JSON or were `error` messages. */
  errors(): number
  /** Viewers whose connection is open. */
  open(): number
  close(): Promise<void>
}

/** Connects `count` viewers to `${httpUrl}/api/live` and subscribes each to everything. */
export async function connectWsViewers(httpUrl: string, count: number): Promise<WsViewers> {
  let events = 0
  let errors = 0
  const url = `${httpUrl.replace(/^http/, 'ws')}/api/live`
  const sockets = await Promise.all(
    Array.from(
      { length: count },
      (_, i) =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(url, 'meshtap.v1')
          ws.on('message', (data) => {
            let msg: { type?: string; events?: unknown[] }
            try {
              msg = JSON.parse(String(data))
            } catch {
              errors++
              return
            }
            if (msg.type === 'batch' && Array.isArray(msg.events)) events += msg.events.length
            else if (msg.type === 'error') errors++
          })
          ws.once('open', () => {
            ws.send(JSON.stringify({ type: 'subscribe', id: `soak-${i}`, snapshot: false }))
            resolve(ws)
          })
          ws.once('error', reject)
        }),
    ),
  )
  return {
    events: () => events,
    errors: () => errors,
    open: () => sockets.filter((s) => s.readyState === WebSocket.OPEN).length,
    async close() {
      await Promise.all(
        sockets.map(
          (s) =>
            new Promise<void>((resolve) => {
              if (s.readyState === WebSocket.CLOSED) return resolve()
              s.once('close', () => resolve())
              s.close(1000)
              setTimeout(() => {
                s.terminate()
                resolve()
              }, 2000).unref()
            }),
        ),
      )
    },
  }
}
