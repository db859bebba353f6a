import { Buffer } from 'node:buffer'
import { createReadStream, type ReadStream } from 'node:fs'
import {
  type Ack,
  base64ToBytes,
  type MessageHandler,
  parseCaptureLine,
  type RawMessage,
  type Source,
  type SourceState,
  type SourceStatus,
} from '@meshtap/protocol'

/** Options of {@link createReplaySource}. Give either `file` or `lines`. */
export interface ReplaySourceOptions {
  /** A capture file (NDJSON of `CaptureRecord`, from `meshtap tail --raw-out` or `meshtap simulate --out`), read as a stream. */
  file?: string
  /**
   * Capture lines instead of a file. With `loop`, they must be iterable again (an array, not a
   * generator).
   */
  lines?: Iterable<string> | AsyncIterable<string>
  /**
   * `'max'`: as fast as the pipeline takes them. `'recorded'`: with the gaps between the recorded
   * `receivedAt` times. A number: the recorded pace sped up by that factor (2 = twice as fast).
   * Scheduling is against the clock (message i is due at start + (t_i − t_0) / speed), so timer
   * delays do not add up; a late message is delivered at once.
   * @default 'max'
   */
  pace?: 'max' | 'recorded' | number
  /**
   * Which `receivedAt` the delivered messages carry.
   * - `'replay'`: the time of delivery, `Date.now()`, as for live traffic, so the pipeline's lag,
   *   rate windows and "last seen" behave as they would live. With a paced replay the gaps between
   *   messages still match the recording.
   * - `'recorded'`: the time in the capture, to rebuild a store from an archive with the original
   *   times (the pipeline's lag then shows the capture's age).
   * @default 'replay'
   */
  timestamps?: 'replay' | 'recorded'
  /**
   * With a paced replay, gaps longer than this (recorded time, before the speed factor) are
   * shortened to it, so an overnight pause in a capture does not stall a demo.
   * @default Infinity
   */
  maxGapMs?: number
  /** Start again at the first line when the end is reached, until `stop`. @default false */
  loop?: boolean
  /**
   * Backpressure: pause while this many delivered messages are not acknowledged yet (through the
   * `ack` each message carries), and go on as acks come in. Use it only with a consumer that acks
   * every message, as the ingest pipeline does. Independently of it, when `onMessage` returns a
   * promise the replay waits for it before the next message.
   * @default Infinity
   */
  maxUnacked?: number
  /**
   * With `pace: 'max'`, hand the event loop back (a `setImmediate`) after this many messages so
   * timers, I/O and the rest of the process keep running.
   * @default 2048
   */
  yieldEvery?: number
  /** @default 'replay' */
  name?: string
}

/** Counters of a replay. */
export interface ReplayStats {
  /** Messages delivered. */
  delivered: number
  /** Non-empty lines that are not capture records, skipped. */
  invalid: number
  /** Lines read, including empty and invalid ones. */
  lines: number
  /** Times the end was reached (with `loop`, more than once). */
  passes: number
  /** Delivered and not acknowledged yet. */
  unacked: number
}

/** A {@link Source} that replays a capture. */
export interface ReplaySource extends Source {
  /**
   * Resolves with the counters when the replay is over: after the last message of the capture was
   * handed to `onMessage` (never with `loop`), or after `stop`. Acks may still be outstanding then
   * (`stats().unacked`). Rejects if the file cannot be read; the status becomes `closed` either way.
   */
  readonly done: Promise<ReplayStats>
  onStatus(listener: (status: SourceStatus) => void): () => void
  status(): SourceStatus
  stats(): ReplayStats
  /** Stops reading the capture until {@link ReplaySource.resume} (the file keeps the rest). */
  pause(): void
  /** Goes on reading after {@link ReplaySource.pause}. */
  resume(): void
}

/** Plain base64 (either alphabet) with at most two `=` and nothing else: what captures hold. */
const PLAIN_BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/

/**
 * {@link base64ToBytes} with Node's native decoder for the text captures hold (either alphabet,
 * at most two `=`, no white space); anything else goes to `base64ToBytes` itself, so both accept,
 * refuse and return exactly the same. The result is a plain `Uint8Array` (over Buffer memory).
 * @internal
 */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (!PLAIN_BASE64.test(text)) return base64ToBytes(text)
  let len = text.length
  while (len > 0 && text.charCodeAt(len - 1) === 61) len--
  // Four characters make three bytes; one character left over is not base64.
  if (len % 4 === 1) return undefined
  const b = Buffer.from(text, 'base64')
  return new Uint8Array(b.buffer, b.byteOffset, b.length)
}

/**
 * Splits text read in chunks into lines as `node:readline` does with `crlfDelay: Infinity`: lines
 * end at `\n`, `\r\n` or a lone `\r` (a `\r\n` split across two chunks is one end), and a last
 * line without an end is a line too. The lines of a whole chunk are handed over at once, so the
 * replay pays one promise per chunk instead of one per line.
 * @internal
 */
export async function* chunkLines(chunks: AsyncIterable<string>): AsyncGenerator<string[]> {
  let rest = ''
  /** The previous chunk ended with `\r`: a `\n` starting this one ends nothing. */
  let sawCr = false
  for await (const chunk of chunks) {
    const text = rest + chunk
    const lines: string[] = []
    let start = 0
    if (sawCr && rest.length === 0 && text.charCodeAt(0) === 10) start = 1
    sawCr = false
    if (text.indexOf('\r', start) < 0) {
      // No carriage return (the usual case): lines end at each `\n`.
      for (let i = text.indexOf('\n', start); i >= 0; i = text.indexOf('\n', start)) {
        lines.push(text.slice(start, i))
        start = i + 1
      }
    } else {
      for (let i = start; i < text.length; i++) {
        const c = text.charCodeAt(i)
        if (c === 10 || c === 13) {
          lines.push(text.slice(start, i))
          if (c === 13) {
            if (i + 1 === text.length) sawCr = true
            else if (text.charCodeAt(i + 1) === 10) i++
          }
          start = i + 1
        }
      }
    }
    rest = text.slice(start)
    if (lines.length > 0) yield lines
  }
  if (rest.length > 0) yield [rest]
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null &&
  (typeof value === 'object' || typeof value === 'function') &&
  typeof (value as { then?: unknown }).then === 'function'

const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * Creates a {@link Source} that replays a meshtap capture (one `CaptureRecord` JSON per line) into
 * the pipeline, as fast as possible or at the recorded pace. Files are streamed line by line, so
 * their size does not matter. Lines that are not capture records are counted
 * (`stats().invalid`) and skipped; they never throw. At the end of the capture the status becomes
 * `closed` and `done` resolves.
 *
 * @example
 * import { createReplaySource } from '@meshtap/core'
 *
 * const source = createReplaySource({ file: 'capture.ndjson', pace: 'recorded' })
 * await source.start((message, ack) => {
 *   console.log(message.topic)
 *   ack()
 * })
 * const { delivered, invalid } = await source.done
 *
 * @example
 * // Ten times the recorded speed, keeping the capture's timestamps:
 * createReplaySource({ file: 'capture.ndjson', pace: 10, timestamps: 'recorded' })
 */
export function createReplaySource(options: ReplaySourceOptions): ReplaySource {
  const { file, lines: inputLines } = options
  if ((file === undefined) === (inputLines === undefined)) {
    throw new TypeError('createReplaySource: give exactly one of "file" or "lines"')
  }
  const pace = options.pace ?? 'max'
  const speed = pace === 'max' ? 0 : pace === 'recorded' ? 1 : pace
  if (
    typeof speed !== 'number' ||
    !Number.isFinite(speed) ||
    speed < 0 ||
    (pace !== 'max' && speed === 0)
  ) {
    throw new TypeError(
      `createReplaySource: pace must be "max", "recorded" or a positive speed factor, not ${JSON.stringify(pace)}`,
    )
  }
  const timestamps = options.timestamps ?? 'replay'
  if (timestamps !== 'replay' && timestamps !== 'recorded') {
    throw new TypeError(
      `createReplaySource: timestamps must be "replay" or "recorded", not ${JSON.stringify(timestamps)}`,
    )
  }
  const maxGapMs = options.maxGapMs ?? Number.POSITIVE_INFINITY
  const maxUnacked = options.maxUnacked ?? Number.POSITIVE_INFINITY
  const yieldEvery = options.yieldEvery ?? 2048
  for (const [key, value] of [
    ['maxGapMs', maxGapMs],
    ['maxUnacked', maxUnacked],
    ['yieldEvery', yieldEvery],
  ] as const) {
    if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
      throw new TypeError(
        `createReplaySource: ${key} must be a positive number, not ${String(value)}`,
      )
    }
  }
  if (options.loop && inputLines !== undefined && !isReiterable(inputLines)) {
    throw new TypeError(
      'createReplaySource: "loop" needs "lines" that can be iterated again (an array)',
    )
  }
  const name = options.name ?? 'replay'
  const endpoint = file ?? 'lines'
  const listeners = new Set<(status: SourceStatus) => void>()
  const stats: ReplayStats = { delivered: 0, invalid: 0, lines: 0, passes: 0, unacked: 0 }
  let state: SourceState = 'idle'
  let current: SourceStatus = { source: name, state, endpoint, at: Date.now() }
  let started = false
  let stopped = false
  let stream: ReadStream | undefined
  let wake: (() => void) | undefined
  /** Set by pause(): no message is delivered until resume(). */
  let paused = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let resolveDone!: (s: ReplayStats) => void
  let rejectDone!: (e: unknown) => void
  const done = new Promise<ReplayStats>((resolve, reject) => {
    resolveDone = resolve
    rejectDone = reject
  })
  // A consumer that never awaits `done` must not see an unhandled rejection.
  done.catch(() => {})
  let running: Promise<void> | undefined

  const emit = (next: SourceState, error?: string) => {
    state = next
    current = { source: name, state, endpoint, at: Date.now(), ...(error ? { error } : {}) }
    for (const listener of [...listeners]) {
      try {
        listener(current)
      } catch (e) {
        queueMicrotask(() => {
          throw e
        })
      }
    }
  }

  const wakeUp = () => {
    const w = wake
    wake = undefined
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    w?.()
  }

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      wake = resolve
      timer = setTimeout(wakeUp, ms)
    })

  const waitForAcks = () =>
    new Promise<void>((resolve) => {
      wake = resolve
    })

  /** The lines, a chunk's worth at a time (a file) or one by one (`lines`). */
  async function* readLines(): AsyncGenerator<readonly string[]> {
    if (inputLines !== undefined) {
      for await (const line of inputLines as AsyncIterable<string>) yield [line]
      return
    }
    stream = createReadStream(file as string, { encoding: 'utf8' })
    try {
      yield* chunkLines(stream as AsyncIterable<string>)
    } finally {
      stream.destroy()
    }
  }

  /**
   * The `ack` of one delivered message (effective once). Returned anonymous: a closure bound to a
   * name would be renamed on every message by transpilers that keep function names.
   */
  function newAck(): Ack {
    let acked = false
    return () => {
      if (acked) return
      acked = true
      stats.unacked--
      if (wake && timer === undefined && stats.unacked < maxUnacked) wakeUp()
    }
  }

  async function run(onMessage: MessageHandler): Promise<void> {
    // Recorded-time scheduling: recorded time `recBase` is due at wall-clock time `wallBase`.
    let recBase: number | undefined
    let wallBase = 0
    let lastRec: number | undefined
    let nextPassWallBase: number | undefined
    let sinceYield = 0
    do {
      for await (const lines of readLines()) {
        for (const line of lines) {
          if (stopped) return
          stats.lines++
          if (line.trim().length === 0) continue
          const record = parseCaptureLine(line, decodeBase64)
          if (!record) {
            stats.invalid++
            continue
          }
          let slept = false
          if (speed > 0 && record.receivedAt > 0) {
            const rec = record.receivedAt
            if (recBase === undefined || lastRec === undefined) {
              recBase = rec
              wallBase = nextPassWallBase ?? Date.now()
              nextPassWallBase = undefined
            } else if (rec - lastRec > maxGapMs) {
              // Shift the base so that this message is due maxGapMs after the previous one.
              recBase += rec - lastRec - maxGapMs
            }
            if (lastRec === undefined || rec > lastRec) lastRec = rec
            const wait = wallBase + (rec - recBase) / speed - Date.now()
            if (wait > 0) {
              await sleep(wait)
              if (stopped) return
              slept = true
            }
          }
          if (slept) sinceYield = 0
          else if (++sinceYield >= yieldEvery) {
            sinceYield = 0
            await tick()
            if (stopped) return
          }
          while (paused || stats.unacked >= maxUnacked) {
            await waitForAcks()
            if (stopped) return
          }
          const message: RawMessage = {
            topic: record.topic,
            payload: record.payload,
            receivedAt:
              timestamps === 'recorded' && record.receivedAt > 0 ? record.receivedAt : Date.now(),
            source: name,
          }
          stats.unacked++
          stats.delivered++
          const result: unknown = onMessage(message, newAck())
          if (isThenable(result)) {
            await result
            if (stopped) return
          }
        }
      }
      stats.passes++
      if (recBase !== undefined && lastRec !== undefined) {
        // With `loop`, the next pass starts where this one ended.
        nextPassWallBase = wallBase + (lastRec - recBase) / speed
        recBase = undefined
        lastRec = undefined
      }
    } while (options.loop && !stopped)
  }

  return {
    name,
    done,
    start(onMessage) {
      if (started || stopped) {
        return Promise.reject(
          new Error(`createReplaySource: "${name}" was already ${started ? 'started' : 'stopped'}`),
        )
      }
      started = true
      emit('connected')
      running = run(onMessage).then(
        () => {
          stopped = true
          emit('closed')
          resolveDone({ ...stats })
        },
        (error: unknown) => {
          stopped = true
          emit('closed', (error as Error).message ?? String(error))
          rejectDone(error)
        },
      )
      return Promise.resolve()
    },
    async stop() {
      if (!started) {
        if (!stopped) {
          stopped = true
          emit('closed')
          resolveDone({ ...stats })
        }
        return
      }
      stopped = true
      wakeUp()
      stream?.destroy()
      await running
    },
    onStatus(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    status: () => current,
    stats: () => ({ ...stats }),
    pause() {
      paused = true
    },
    resume() {
      if (!paused) return
      paused = false
      if (timer === undefined) wakeUp()
    },
  }
}

function isReiterable(lines: Iterable<string> | AsyncIterable<string>): boolean {
  return Array.isArray(lines) || lines instanceof Set
}
