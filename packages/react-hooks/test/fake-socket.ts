import type { NodeState, ServerMessage, WireEvent } from '@meshtap/protocol'
import type { MeshtapWebSocket, MeshtapWebSocketConstructor } from '../src/index.js'

/** An in-memory WebSocket: the test plays the server. */
export class FakeSocket implements MeshtapWebSocket {
  static instances: FakeSocket[] = []
  readyState = 0
  sent: Record<string, unknown>[] = []
  onopen: ((e: unknown) => void) | null = null
  onmessage: ((e: { data: unknown }) => void) | null = null
  onclose: ((e: { code: number; reason: string }) => void) | null = null
  onerror: ((e: unknown) => void) | null = null

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeSocket.instances.push(this)
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data))
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.onclose?.({ code, reason })
  }

  // ---- the test's side ----

  open(): void {
    this.readyState = 1
    this.onopen?.({})
  }

  receive(message: ServerMessage | Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(message) })
  }

  /** The server closes (or the network drops) the connection. */
  drop(code = 1006, reason = ''): void {
    this.close(code, reason)
  }

  lastSent(type: string): Record<string, unknown> | undefined {
    return this.sent.filter((m) => m.type === type).at(-1)
  }

  /** Answers hello + subscribe; with `nodes`, a one-part snapshot. */
  handshake(
    options: { epoch?: string; seq?: number; nodes?: NodeState[]; resumed?: boolean } = {},
  ) {
    const { epoch = 'e1', seq = 0, nodes = [], resumed = false } = options
    this.open()
    this.receive(hello(epoch, seq))
    const sub = this.lastSent('subscribe') as { id: number }
    this.receive({
      type: 'subscribed',
      id: sub.id,
      epoch,
      seq,
      filter: {},
      resumed,
      snapshot: !resumed,
    })
    if (!resumed) this.receive({ type: 'snapshot', seq, part: 0, nodes, done: true })
  }

  batch(seq: number, events: WireEvent[]): void {
    this.receive({ type: 'batch', seq, events })
  }
}

export const FakeWebSocket = FakeSocket as unknown as MeshtapWebSocketConstructor

export function hello(epoch: string, seq: number): ServerMessage {
  return {
    type: 'hello',
    protocol: 1,
    server: 'fake',
    epoch,
    seq,
    oldestSeq: 1,
    flushMs: 100,
    kinds: ['packet', 'reception', 'undecoded', 'node', 'status'],
    capabilities: ['resume', 'snapshot', 'node-patch'],
    limits: {
      maxMessageBytes: 16384,
      maxFrameBytes: 65536,
      messagesPerSecond: 10,
      messageBurst: 20,
      maxFilterValues: 1000,
      maxSnapshotNodes: 20000,
      resumeBatches: 300,
      heartbeatMs: 30000,
    },
  }
}

export function node(num: number, extra: Partial<NodeState> = {}): NodeState {
  return {
    num,
    id: `!${num.toString(16).padStart(8, '0')}`,
    telemetry: {},
    lastHeard: 1000 + num,
    packets: 1,
    gateways: {},
    isGateway: false,
    ...extra,
  }
}
