import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import {
  base64ToBytes,
  bytesToBase64,
  type RawMessage,
  type SourceStatus,
  toCaptureLine,
} from '@meshtap/protocol'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chunkLines, createReplaySource, decodeBase64 } from './replay-source.js'

const line = (i: number, receivedAt: number) =>
  toCaptureLine({
    topic: `msh/US/2/e/LongFast/!0000000${i % 10}`,
    payload: new Uint8Array([i & 0xff, (i >> 8) & 0xff]),
    receivedAt,
  })

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshtap-replay-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function collect() {
  const messages: RawMessage[] = []
  return {
    messages,
    handler: (m: RawMessage, ack: () => void) => {
      messages.push(m)
      ack()
    },
  }
}

describe('createReplaySource', () => {
  it('streams a file at max pace, skips and counts bad lines, and resolves done at the end', async () => {
    const file = join(dir, 'capture.ndjson')
    const t0 = 1_700_000_000_000
    const lines = [
      line(1, t0),
      'not json',
      '',
      JSON.stringify({ topic: 'x' }),
      line(2, t0 + 10),
      JSON.stringify({ topic: 'y', payload: '!!!', receivedAt: 1 }),
      line(3, t0 + 20),
    ]
    await writeFile(file, `${lines.join('\n')}\n`)
    const source = createReplaySource({ file })
    const statuses: SourceStatus[] = []
    source.onStatus((s) => statuses.push(s))
    const { messages, handler } = collect()
    const before = Date.now()
    await source.start(handler)
    const stats = await source.done
    expect(messages.map((m) => m.payload[0])).toEqual([1, 2, 3])
    expect(messages[0]).toMatchObject({ topic: 'msh/US/2/e/LongFast/!00000001', source: 'replay' })
    // Default timestamps: the time of delivery.
    for (const m of messages) expect(m.receivedAt).toBeGreaterThanOrEqual(before)
    expect(stats).toEqual({ delivered: 3, invalid: 3, lines: 7, passes: 1, unacked: 0 })
    expect(statuses.map((s) => s.state)).toEqual(['connected', 'closed'])
    expect(statuses[1]).toMatchObject({ endpoint: file })
    expect(source.status().state).toBe('closed')
  })

  it('keeps the recorded receivedAt with timestamps: "recorded"', async () => {
    const source = createReplaySource({
      lines: [line(1, 1000), line(2, 2000)],
      timestamps: 'recorded',
    })
    const { messages, handler } = collect()
    await source.start(handler)
    await source.done
    expect(messages.map((m) => m.receivedAt)).toEqual([1000, 2000])
  })

  it('replays at the recorded pace, scaled by a speed factor, against the clock', async () => {
    const t0 = 1_700_000_000_000
    // 0, 100, 200, 300 ms recorded; at speed 2 → about 0, 50, 100, 150 ms.
    const lines = [0, 100, 200, 300].map((d, i) => line(i, t0 + d))
    const source = createReplaySource({ lines, pace: 2 })
    const at: number[] = []
    const start = Date.now()
    await source.start(() => at.push(Date.now() - start))
    await source.done
    expect(at).toHaveLength(4)
    expect(at[3]!).toBeGreaterThanOrEqual(140)
    expect(at[3]!).toBeLessThan(400)
    expect(at[1]!).toBeGreaterThanOrEqual(40)
  })

  it('shortens long recorded gaps to maxGapMs', async () => {
    const t0 = 1_700_000_000_000
    const source = createReplaySource({
      lines: [line(1, t0), line(2, t0 + 3_600_000), line(3, t0 + 3_600_050)],
      pace: 'recorded',
      maxGapMs: 20,
    })
    const start = Date.now()
    const { messages, handler } = collect()
    await source.start(handler)
    await source.done
    expect(messages).toHaveLength(3)
    expect(Date.now() - start).toBeLessThan(1000)
  })

  it('loops until stopped', async () => {
    const source = createReplaySource({ lines: [line(1, 1), line(2, 2)], loop: true })
    let n = 0
    await source.start(() => {
      n++
    })
    while (n < 10) await new Promise((r) => setTimeout(r, 1))
    await source.stop()
    const stats = await source.done
    expect(stats.passes).toBeGreaterThanOrEqual(4)
    const after = n
    await new Promise((r) => setTimeout(r, 20))
    expect(n).toBe(after)
    expect(source.status().state).toBe('closed')
  })

  it('waits for acks with maxUnacked', async () => {
    const source = createReplaySource({
      lines: Array.from({ length: 10 }, (_, i) => line(i, i)),
      maxUnacked: 3,
    })
    const acks: Array<() => void> = []
    await source.start((_m, ack) => {
      acks.push(ack)
    })
    await new Promise((r) => setTimeout(r, 20))
    expect(acks).toHaveLength(3)
    expect(source.stats().unacked).toBe(3)
    acks[0]!()
    acks[0]!() // twice is harmless
    await new Promise((r) => setTimeout(r, 20))
    expect(acks).toHaveLength(4)
    for (let i = 0; i < 20 && acks.length < 10; i++) {
      for (const a of acks) a()
      await new Promise((r) => setTimeout(r, 5))
    }
    const stats = await source.done
    expect(stats.delivered).toBe(10)
    for (const a of acks) a()
    expect(source.stats().unacked).toBe(0)
  })

  it('pauses and resumes (backpressure from an ingest): nothing skipped, nothing twice', async () => {
    const source = createReplaySource({
      lines: Array.from({ length: 50 }, (_, i) => line(i, i)),
      yieldEvery: 5,
    })
    const got: number[] = []
    await source.start((m, ack) => {
      got.push(m.payload[0] as number)
      if (got.length === 12) source.pause()
      ack()
    })
    await new Promise((r) => setTimeout(r, 30))
    expect(got).toHaveLength(12)
    source.resume()
    const stats = await source.done
    expect(stats.delivered).toBe(50)
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i))
  })

  it('waits for a handler that returns a promise', async () => {
    const source = createReplaySource({ lines: [line(1, 1), line(2, 2), line(3, 3)] })
    const order: string[] = []
    await source.start(async (m) => {
      order.push(`start ${m.payload[0]}`)
      await new Promise((r) => setTimeout(r, 5))
      order.push(`end ${m.payload[0]}`)
    })
    await source.done
    expect(order).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3'])
  })

  it('keeps the event loop responsive at max pace', async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => line(i, i))
    const source = createReplaySource({ lines, yieldEvery: 1000 })
    let ticks = 0
    const interval = setInterval(() => ticks++, 0)
    await source.start(() => {})
    const stats = await source.done
    clearInterval(interval)
    expect(stats.delivered).toBe(20_000)
    expect(ticks).toBeGreaterThan(0)
  })

  it('stops in the middle of a paced replay and resolves done', async () => {
    const t0 = 1_700_000_000_000
    const source = createReplaySource({
      lines: [line(1, t0), line(2, t0 + 60_000)],
      pace: 'recorded',
    })
    const { messages, handler } = collect()
    await source.start(handler)
    await new Promise((r) => setTimeout(r, 20))
    await source.stop()
    await source.stop() // idempotent
    expect(messages).toHaveLength(1)
    await expect(source.done).resolves.toMatchObject({ delivered: 1 })
  })

  it('rejects done when the file cannot be read, and validates its options', async () => {
    const source = createReplaySource({ file: join(dir, 'missing.ndjson') })
    await source.start(() => {})
    await expect(source.done).rejects.toThrow(/ENOENT/)
    expect(source.status()).toMatchObject({
      state: 'closed',
      error: expect.stringMatching(/ENOENT/),
    })
    expect(() => createReplaySource({})).toThrow(/exactly one of "file" or "lines"/)
    expect(() => createReplaySource({ lines: [], pace: 0 })).toThrow(/pace/)
    expect(() => createReplaySource({ lines: [], pace: 'fast' as 'max' })).toThrow(/pace/)
    expect(() =>
      createReplaySource({
        lines: (function* () {
          yield ''
        })(),
        loop: true,
      }),
    ).toThrow(/loop/)
    await expect(createReplaySource({ lines: [] }).start(() => {})).resolves.toBeUndefined()
    const twice = createReplaySource({ lines: [] })
    await twice.start(() => {})
    await expect(twice.start(() => {})).rejects.toThrow(/already started/)
  })
})

describe('decodeBase64 (Node decoder for capture payloads)', () => {
  const same = (text: string) => {
    const want = base64ToBytes(text)
    const got = decodeBase64(text)
    if (want === undefined) expect(got).toBeUndefined()
    else {
      expect(got).toBeInstanceOf(Uint8Array)
      expect(Object.getPrototypeOf(got)).toBe(Uint8Array.prototype)
      expect([...(got as Uint8Array)]).toEqual([...want])
    }
  }

  it('matches base64ToBytes on valid, odd and invalid text', () => {
    for (const t of [
      '',
      'AQ==',
      'AQ',
      'AQ=',
      'AQ===',
      'A',
      'A=',
      'AB',
      'ABC',
      'ABCD',
      'ABCDE',
      'AR==',
      '-_-_',
      '+/+/',
      '+_-/AA',
      'AQ==AQ==',
      'A=Q',
      '=',
      '==',
      ' AQ==',
      'AQ== ',
      'A Q==',
      'AQ\n==',
      '!!!',
      'AQ*=',
      'éAQ=',
      'AQ\u0000',
    ]) {
      same(t)
    }
  })

  it('matches base64ToBytes on arbitrary text', () => {
    const chars = 'ABCxyz019+/-_= \n\t!*.é\u0000'
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...chars), { maxLength: 40 }).map((a) => a.join('')),
        (t) => same(t),
      ),
      { numRuns: 3000 },
    )
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (t) => same(t)),
      { numRuns: 2000 },
    )
  })

  it('round-trips arbitrary bytes in either alphabet', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), fc.boolean(), (b, url, pad) => {
        let t = bytesToBase64(b)
        if (url) t = t.replaceAll('+', '-').replaceAll('/', '_')
        if (!pad) t = t.replace(/=+$/, '')
        same(t)
        expect([...(decodeBase64(t) as Uint8Array)]).toEqual([...b])
      }),
      { numRuns: 500 },
    )
  })
})

describe('chunkLines (line splitting of a capture file)', () => {
  async function viaReadline(chunks: string[]): Promise<string[]> {
    const rl = createInterface({
      input: Readable.from(chunks, { objectMode: true }),
      crlfDelay: Number.POSITIVE_INFINITY,
    })
    const out: string[] = []
    for await (const l of rl) out.push(l)
    return out
  }
  async function viaChunks(chunks: string[]): Promise<string[]> {
    const out: string[] = []
    async function* gen() {
      yield* chunks
    }
    for await (const lines of chunkLines(gen())) out.push(...lines)
    return out
  }

  it('splits like node:readline (crlfDelay: Infinity) however the text is cut into chunks', async () => {
    const cases = [
      ['a\nb\n'],
      ['a\nb'],
      ['a\r\nb\r\n', 'c'],
      ['a\r', '\nb'],
      ['a\r', 'b\r'],
      ['a\r', '\r\n'],
      ['\n\n', '\n'],
      ['a', 'b', '\nc'],
      ['\r'],
      ['x\r\r\ny'],
    ]
    for (const c of cases) expect(await viaChunks(c)).toEqual(await viaReadline(c))
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc
            .array(fc.constantFrom('a', 'b', '\n', '\r', ' ', 'é'), { maxLength: 12 })
            .map((a) => a.join('')),
          { minLength: 1, maxLength: 6 },
        ),
        async (chunks) => {
          const nonEmpty = chunks.filter((c) => c.length > 0)
          expect(await viaChunks(nonEmpty)).toEqual(await viaReadline(nonEmpty))
        },
      ),
      { numRuns: 500 },
    )
  })

  it('replays a file with CRLF line ends and no final newline', async () => {
    const file = join(dir, 'crlf.ndjson')
    await writeFile(file, `${line(1, 1)}\r\n\r\n${line(2, 2)}\r${line(3, 3)}`)
    const source = createReplaySource({ file })
    const { messages, handler } = collect()
    await source.start(handler)
    const stats = await source.done
    expect(messages.map((m) => m.payload[0])).toEqual([1, 2, 3])
    expect(stats).toMatchObject({ delivered: 3, lines: 4, invalid: 0 })
  })
})
