/**
 * Hostile inputs for the fuzz tests: real envelopes (the shared captured vectors and the mesh
 * simulator) and a seeded mutator that turns them into the kinds of garbage a public broker
 * carries. Every generated input is labelled with its class, so a failure names what broke.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import {
  createMeshSimulator,
  encodeEnvelope,
  protobufJsonToBytes,
  type SimulatedMessage,
} from '@meshtap/core'
import { PortNum, type RawMessage } from '@meshtap/protocol'
import { repoRoot } from './paths.js'

/** A small, fast, seeded pseudo-random generator (xorshift32 with a scrambled seed). */
export interface Rng {
  /** A float in [0, 1). */
  next(): number
  /** An integer in [0, n). */
  int(n: number): number
  /** `n` random bytes. */
  bytes(n: number): Uint8Array
  /** One element of a non-empty list. */
  pick<T>(list: readonly T[]): T
}

/** Creates a seeded {@link Rng}; the same seed gives the same sequence. */
export function createRng(seed: number): Rng {
  let s = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ 0xc2b2ae35) >>> 0 || 0x1234567
  const u32 = () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s
  }
  return {
    next: () => u32() / 4294967296,
    int: (n) => (n <= 0 ? 0 : Math.floor((u32() / 4294967296) * n)),
    bytes(n) {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) out[i] = u32() & 0xff
      return out
    },
    pick<T>(list: readonly T[]): T {
      return list[Math.floor((u32() / 4294967296) * list.length)] as T
    },
  }
}

/** The shared captured vectors, as raw messages (`undefined` when the fixtures are not there). */
export function loadVectorMessages(): RawMessage[] | undefined {
  const shared = process.env.MESHTAP_SHARED_DIR ?? resolve(repoRoot, '../shared')
  const file = resolve(shared, 'fixtures/meshtastic-vectors.json')
  if (!existsSync(file)) {
    if (process.env.CI) throw new Error(`${file} is missing (required when CI is set)`)
    return undefined
  }
  const vectors = JSON.parse(readFileSync(file, 'utf8')) as {
    kind: RawMessage['kind'] & string
    topic: string | null
    encoding: 'base64' | 'hex' | 'json'
    payload: string
  }[]
  const out: RawMessage[] = []
  const utf8 = new TextEncoder()
  for (const v of vectors) {
    let payload: Uint8Array | undefined
    if (v.encoding === 'base64') payload = Uint8Array.from(Buffer.from(v.payload, 'base64'))
    else if (v.encoding === 'hex') payload = Uint8Array.from(Buffer.from(v.payload, 'hex'))
    else if (v.kind === 'json-uplink') payload = utf8.encode(v.payload)
    else {
      const bytes = protobufJsonToBytes(v.kind as 'envelope', v.payload)
      if (bytes instanceof Uint8Array) payload = bytes
    }
    if (!payload) continue
    out.push(v.topic ? { topic: v.topic, payload, kind: v.kind } : { payload, kind: v.kind })
  }
  return out
}

/** Envelopes from the mesh simulator (several channels, plaintext gateways, PKI, map reports). */
export function simulatorMessages(count: number, seed = 9): SimulatedMessage[] {
  const sim = createMeshSimulator({ seed, nodes: 120, gateways: 8, meanCopies: 2 })
  return sim.take(count)
}

/** Names and texts an attacker (or a broken node) puts in packets. */
export const NASTY_STRINGS: readonly string[] = [
  '<img src=x onerror="window.__xss=1">',
  '<script>window.__xss=1</script>',
  '"><svg onload=window.__xss=1>',
  "'; DROP TABLE packets; --",
  'javascript:window.__xss=1',
  '\u202Eevil\u202C',
  '\u0000\u0001\u0002nul',
  '\uFEFF\u200B\u200D zero width',
  'ZALGO Z̴̡̪͔̰̙̮̹̀̈́̐͌̀͘A̶̧͈',
  '🛰️📡💥'.repeat(8),
  '{{constructor.constructor("window.__xss=1")()}}',
  '__proto__',
  '%s%s%s%n',
  '../../../../etc/passwd',
]

/** Byte sequences that are not valid UTF-8. */
export const BAD_UTF8: readonly (readonly number[])[] = [
  [0xc0, 0x80], // overlong NUL
  [0x80], // lone continuation byte
  [0xed, 0xa0, 0x80], // a UTF-16 surrogate encoded in UTF-8
  [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
  [0xff, 0xfe],
  [0xe2, 0x82], // a cut 3-byte character
  [0xf0, 0x9f, 0x98], // a cut emoji
]

/** Random bytes mixing valid text, HTML, control characters and invalid UTF-8. */
export function garbageText(rng: Rng, maxBytes = 200): Uint8Array {
  const utf8 = new TextEncoder()
  const parts: number[] = []
  while (parts.length < maxBytes) {
    const r = rng.int(4)
    if (r === 0) parts.push(...utf8.encode(rng.pick(NASTY_STRINGS)))
    else if (r === 1) parts.push(...rng.pick(BAD_UTF8))
    else if (r === 2) parts.push(...rng.bytes(1 + rng.int(8)))
    else break
  }
  return Uint8Array.from(parts.slice(0, maxBytes))
}

/** A protobuf length-delimited field. */
function field(no: number, bytes: Uint8Array): number[] {
  const out = [(no << 3) | 2]
  let n = bytes.length
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  out.push(...bytes)
  return out
}

/** A `User` message whose names are garbage bytes (firmware does not validate them). */
export function garbageUser(from: number, longName: Uint8Array, shortName: Uint8Array): Uint8Array {
  const id = new TextEncoder().encode(`!${(from >>> 0).toString(16).padStart(8, '0')}`)
  return Uint8Array.from([...field(1, id), ...field(2, longName), ...field(3, shortName)])
}

/**
 * A node-info or text packet whose names or text are garbage, encrypted with the default key or
 * (as gateways with MQTT encryption off publish them) in plaintext.
 */
export function garbageNamePacket(rng: Rng, from: number, id: number): RawMessage {
  const gatewayId = `!${(0xa0000000 + rng.int(8)).toString(16)}`
  const text = rng.next() < 0.5
  const encrypt = rng.next() < 0.5
  const payload = text
    ? garbageText(rng)
    : garbageUser(from, garbageText(rng, 120), garbageText(rng, 12))
  const bytes = encodeEnvelope({
    from,
    id,
    portnum: text ? PortNum.TEXT_MESSAGE_APP : PortNum.NODEINFO_APP,
    payload,
    encrypt,
    gatewayId,
    hopStart: 3,
    hopLimit: 2,
    rxSnr: 5,
    rxRssi: -90,
  })
  return { topic: `msh/US/2/e/LongFast/${gatewayId}`, payload: bytes }
}

/** Every class of hostile input the mutator produces. */
export const HOSTILE_CLASSES = [
  'bit-flip',
  'byte-overwrite',
  'truncate',
  'extend',
  'splice',
  'varint-bomb',
  'random-topic',
  'wrong-channel-hash',
  'oversized',
  'utf8-garbage',
  'kind-confusion',
  'json-garbage',
  'not-bytes',
  'empty',
] as const

/** A class of hostile input. */
export type HostileClass = (typeof HOSTILE_CLASSES)[number]

const TOPIC_PARTS = [
  'msh',
  'US',
  'EU_868',
  '2',
  'e',
  'c',
  'map',
  'json',
  'LongFast',
  'PKI',
  '!deadbeef',
  '',
  '#',
  '+',
  '$SYS',
  '..',
  '%00',
  '\u0000',
  '💥',
  '<script>',
]

function randomTopic(rng: Rng): string | null | undefined {
  const r = rng.int(10)
  if (r === 0) return undefined
  if (r === 1) return null
  if (r === 2) return 'x'.repeat(1 + rng.int(70_000))
  if (r === 3) return new TextDecoder().decode(rng.bytes(rng.int(80)))
  const n = 1 + rng.int(9)
  const parts: string[] = []
  for (let i = 0; i < n; i++) parts.push(rng.pick(TOPIC_PARTS))
  return parts.join('/')
}

const KINDS = ['envelope', 'mapreport', 'meshpacket', 'json-uplink', 'data', 'bogus'] as const

const JSON_GARBAGE: readonly (() => string)[] = [
  () => '['.repeat(16_000),
  () => `${'['.repeat(5000)}${']'.repeat(5000)}`,
  () => '{"from":1e999,"to":-1,"id":"x","type":"text","payload":{"text":{}}}',
  () => '{"__proto__":{"polluted":1},"type":"nodeinfo","from":1,"payload":{"longname":7}}',
  () => '{"type":"position","from":4294967296,"payload":{"latitude_i":"NaN"}}',
  () => '"just a string"',
  () => 'null',
  () => '{"type":"telemetry","from":12,"payload":[1,2,3]}',
  () => '\uFEFF{"type":"text","from":1,"payload":"<img src=x onerror=alert(1)>"}',
]

/**
 * A seeded mutator over a pool of real messages. `next()` picks a message and a class and returns
 * the hostile version of it; `counts` tells how many of each class were made.
 */
export function createMutator(pool: readonly RawMessage[], seed: number) {
  if (pool.length === 0) throw new Error('createMutator: empty pool')
  const rng = createRng(seed)
  const counts = Object.fromEntries(HOSTILE_CLASSES.map((c) => [c, 0])) as Record<
    HostileClass,
    number
  >
  const big = rng.bytes(70_000)
  let nextId = 1
  const utf8 = new TextEncoder()

  function mutate(cls: HostileClass, m: RawMessage): RawMessage {
    const p = m.payload
    const topic = m.topic
    switch (cls) {
      case 'bit-flip': {
        const out = p.slice()
        const flips = 1 + rng.int(8)
        for (let i = 0; i < flips && out.length > 0; i++) {
          const at = rng.int(out.length)
          out[at] = (out[at] as number) ^ (1 << rng.int(8))
        }
        return { ...m, payload: out }
      }
      case 'byte-overwrite': {
        const out = p.slice()
        const n = 1 + rng.int(6)
        for (let i = 0; i < n && out.length > 0; i++) {
          out[rng.int(out.length)] = rng.pick([0, 0xff, 0x80, 0x7f, rng.int(256)])
        }
        return { ...m, payload: out }
      }
      case 'truncate':
        return { ...m, payload: p.subarray(0, rng.int(p.length + 1)) }
      case 'extend': {
        const extra = rng.bytes(1 + rng.int(64))
        const out = new Uint8Array(p.length + extra.length)
        out.set(p)
        out.set(extra, p.length)
        return { ...m, payload: out }
      }
      case 'splice': {
        const other = rng.pick(pool).payload
        const cut = rng.int(p.length + 1)
        const from = rng.int(other.length + 1)
        const out = new Uint8Array(cut + other.length - from)
        out.set(p.subarray(0, cut))
        out.set(other.subarray(from), cut)
        return { ...m, payload: out }
      }
      case 'varint-bomb': {
        // A length-delimited field claiming 2^32-1 bytes, or an endless varint, at a random place.
        const bomb = rng.next() < 0.5 ? [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f] : Array(12).fill(0xff)
        const at = rng.int(p.length + 1)
        const out = new Uint8Array(p.length + bomb.length)
        out.set(p.subarray(0, at))
        out.set(bomb, at)
        out.set(p.subarray(at), at + bomb.length)
        return { ...m, payload: out }
      }
      case 'random-topic': {
        const t = randomTopic(rng)
        const { topic: _drop, ...rest } = m
        // `null` breaks the type on purpose: JavaScript sources can pass one.
        return t === undefined ? rest : ({ ...rest, topic: t } as RawMessage)
      }
      case 'wrong-channel-hash': {
        const id = nextId++
        const gatewayId = `!${(0xb0000000 + rng.int(16)).toString(16)}`
        const channelId = rng.pick(['LongFast', 'Private', 'PKI', '', '💥', 'x'.repeat(300)])
        const payload = encodeEnvelope({
          from: (rng.int(0xffffffff) + 1) >>> 0,
          to: rng.next() < 0.7 ? 0xffffffff : rng.int(0xffffffff),
          id,
          portnum: rng.pick([PortNum.TEXT_MESSAGE_APP, PortNum.POSITION_APP, 9999, 0]),
          payload: rng.bytes(rng.int(40)),
          channelField: rng.int(256),
          channelId,
          gatewayId,
          hopStart: rng.int(16),
          hopLimit: rng.int(16),
          pkiEncrypted: rng.next() < 0.1,
        })
        return { topic: `msh/US/2/e/${channelId}/${gatewayId}`, payload }
      }
      case 'oversized': {
        const n = rng.pick([16_384, 16_385, 65_536, 70_000])
        return { ...m, payload: big.subarray(0, n) }
      }
      case 'utf8-garbage':
        return garbageNamePacket(rng, (0xc0000000 + rng.int(1000)) >>> 0, nextId++)
      case 'kind-confusion':
        return { ...m, kind: rng.pick(KINDS) as RawMessage['kind'] }
      case 'json-garbage':
        return {
          topic: rng.next() < 0.8 ? 'msh/US/2/json/LongFast/!abcdef01' : (topic ?? 'msh/US/2/json'),
          payload: utf8.encode(rng.pick(JSON_GARBAGE)()),
        }
      case 'not-bytes':
        return {
          ...m,
          payload: rng.pick<unknown>([
            'a string',
            null,
            undefined,
            42,
            [1, 2, 3],
            { length: 3 },
            new ArrayBuffer(8),
          ]) as Uint8Array,
        }
      case 'empty':
        return { ...m, payload: new Uint8Array(0) }
    }
  }

  return {
    counts,
    next(): { cls: HostileClass; message: RawMessage } {
      // Mostly the cheap byte mutations, like a fuzzer; every class often enough to matter.
      const r = rng.int(100)
      const cls: HostileClass =
        r < 22
          ? 'bit-flip'
          : r < 36
            ? 'byte-overwrite'
            : r < 50
              ? 'truncate'
              : r < 58
                ? 'extend'
                : r < 66
                  ? 'splice'
                  : r < 72
                    ? 'varint-bomb'
                    : r < 80
                      ? 'random-topic'
                      : r < 83
                        ? 'wrong-channel-hash'
                        : r < 85
                          ? 'oversized'
                          : r < 88
                            ? 'utf8-garbage'
                            : r < 93
                              ? 'kind-confusion'
                              : r < 95
                                ? 'json-garbage'
                                : r < 97
                                  ? 'not-bytes'
                                  : 'empty'
      counts[cls]++
      return { cls, message: mutate(cls, rng.pick(pool)) }
    },
  }
}
