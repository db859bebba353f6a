import { createDecipheriv } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import { type ChainOutcome, createBaselineChain, PAYLOAD_SCHEMAS } from './lib/baseline-chain.js'
import { buildCodecMix, CATEGORIES, type CodecMix } from './lib/codec-mix.js'
import {
  type AppPayload,
  compileJsonDecoder,
  createAesCtr,
  createCodec,
  DEFAULT_KEY,
  type DecodeResult,
  type DescMessage,
  fromBinary,
  Mqtt,
  readEnvelope,
  toJson,
} from './lib/deps.js'
import { describeMachine, describeRevision, NOISY_THRESHOLD, waitForQuiet } from './lib/machine.js'
import {
  type Benchmark,
  type BenchOptions,
  type BenchReport,
  type BusySummary,
  formatPercent,
  formatRange,
  formatRate,
  formatRatio,
  type Table,
} from './lib/report.js'
import {
  type Alternated,
  alternate,
  type Contender,
  cpuRates,
  median,
  othersPerRound,
  pairedRatios,
  rates,
  type Spread,
  spread,
  warmUp,
} from './lib/timing.js'

/** The canonical JSON message inside an app payload, the part both chains must agree on. */
export function appMessage(app: AppPayload): unknown {
  switch (app.type) {
    case 'text':
    case 'alert':
    case 'detection':
    case 'rangetest':
    case 'reply':
      return { text: app.text }
    case 'position':
      return app.position
    case 'nodeinfo':
      return app.user
    case 'routing':
      return app.routing
    case 'telemetry':
      return app.telemetry
    case 'traceroute':
      return app.routeDiscovery
    case 'neighborinfo':
      return app.neighborInfo
    case 'mapreport':
      return app.mapReport
    case 'waypoint':
      return app.waypoint
    case 'storeforward':
      return app.storeForward
    case 'paxcounter':
      return app.paxcount
    case 'opaque':
      return app.message
  }
}

const FAILURE_CLASS: Record<string, string> = {
  NO_MATCHING_KEY: 'undecryptable',
  PKI_ENCRYPTED: 'pki',
  MALFORMED_ENVELOPE: 'malformed-envelope',
  MALFORMED_PAYLOAD: 'malformed-payload',
  EMPTY_PACKET: 'empty-packet',
}

function outcomeOf(r: DecodeResult): ChainOutcome {
  if (r.ok) {
    const p = r.value
    return { ok: true, from: p.from, id: p.id, portnum: p.portnum, json: appMessage(p.app) }
  }
  const code = r.error.error.code
  return {
    ok: false,
    failure: FAILURE_CLASS[code] ?? code,
    from: r.error.packet.from ?? 0,
    id: r.error.packet.id ?? 0,
  }
}

/** Path of the first difference between two JSON values, e.g. `deviceMetrics.voltage`. */
function firstDifference(a: unknown, b: unknown, path = ''): string {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null)
    return path || '(root)'
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  for (const k of keys) {
    const va = (a as Record<string, unknown>)[k]
    const vb = (b as Record<string, unknown>)[k]
    if (!isDeepStrictEqual(va, vb)) return firstDifference(va, vb, path ? `${path}.${k}` : k)
  }
  return path || '(root)'
}

interface Mismatch {
  index: number
  field: string
  ours: unknown
  baseline: unknown
}

function compare(index: number, ours: ChainOutcome, base: ChainOutcome): Mismatch | undefined {
  const m = (field: string, o: unknown, b: unknown) => ({ index, field, ours: o, baseline: b })
  if (ours.ok !== base.ok) {
    return m('ok', ours.ok ? 'ok' : ours.failure, base.ok ? 'ok' : base.failure)
  }
  if (!ours.ok && ours.failure !== base.failure)
    return m('failure class', ours.failure, base.failure)
  if (ours.from !== base.from) return m('from', ours.from, base.from)
  if (ours.id !== base.id) return m('id', ours.id, base.id)
  if (!ours.ok) return undefined
  if (ours.portnum !== base.portnum) return m('portnum', ours.portnum, base.portnum)
  if (!isDeepStrictEqual(ours.json, base.json)) {
    const path = firstDifference(ours.json, base.json)
    return m(`payload JSON at ${path}`, JSON.stringify(ours.json), JSON.stringify(base.json))
  }
  return undefined
}

/** Decodes every message with both chains and fails on any difference. */
function verify(
  mix: CodecMix,
  ours: (i: number) => DecodeResult,
  base: (i: number) => ChainOutcome,
): { ok: number; keyOrderDiffs: number } {
  const mismatches: Mismatch[] = []
  let ok = 0
  let keyOrderDiffs = 0
  for (let i = 0; i < mix.messages.length; i++) {
    const o = outcomeOf(ours(i))
    const b = base(i)
    const m = compare(i, o, b)
    if (m) mismatches.push(m)
    else if (o.ok) {
      ok++
      if (JSON.stringify(o.json) !== JSON.stringify(b.json)) keyOrderDiffs++
    }
  }
  if (mismatches.length > 0) {
    const lines = mismatches.slice(0, 10).map((m) => {
      const msg = mix.messages[m.index]!
      return `  #${m.index} [${msg.category}/${msg.app}] ${msg.topic}: ${m.field}: ours ${String(m.ours)} vs baseline ${String(m.baseline)}\n    envelope (base64): ${Buffer.from(msg.payload).toString('base64')}`
    })
    throw new Error(
      `codec and baseline disagree on ${mismatches.length} of ${mix.messages.length} messages; not timing a codec that gives different answers:\n${lines.join('\n')}`,
    )
  }
  return { ok, keyOrderDiffs }
}

interface Measured {
  label: string
  rate: Spread
  cpuRate: Spread
}

function measured(a: Alternated): Measured[] {
  return a.contenders.map((c, i) => ({
    label: c.label,
    rate: spread(rates(a.rounds[i]!)),
    cpuRate: spread(cpuRates(a.rounds[i]!)),
  }))
}

function busySummary(all: Alternated[]): BusySummary | undefined {
  const others = all.flatMap((a) => a.rounds.flatMap((r) => othersPerRound(r)))
  if (others.length === 0) return undefined
  return {
    medianOthers: median(others),
    maxOthers: Math.max(...others),
    noisyRounds: others.filter((v) => v > NOISY_THRESHOLD).length,
    rounds: others.length,
  }
}

async function run(options: BenchOptions): Promise<BenchReport> {
  const machine = describeMachine()
  const rounds = options.quick ? 2 : 7
  const roundMs = options.quick ? 200 : 1000
  const subRounds = options.quick ? 2 : 5
  const subMs = options.quick ? 100 : 500
  const log = (s: string) => process.stderr.write(`${s}\n`)

  const t0 = performance.now()
  const mix = buildCodecMix({ count: 20_000 })
  const msgs = mix.messages
  const n = msgs.length
  log(
    `codec: built ${n} messages (${mix.avgBytes.toFixed(0)} B average, ${mix.senders} senders, ${mix.gateways} gateways) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  )

  const codec = createCodec()
  const inputs = msgs.map((m) => ({ topic: m.topic, payload: m.payload }))
  const chain = createBaselineChain([{ name: 'LongFast', key: DEFAULT_KEY }])
  const topics = msgs.map((m) => m.topic)
  const payloads = msgs.map((m) => m.payload)

  // 1. Same answers on every message.
  const check = verify(
    mix,
    (i) => codec.decode(inputs[i]!),
    (i) => chain(topics[i]!, payloads[i]!),
  )
  log(`codec: both chains agree on all ${n} messages (${check.ok} decoded)`)

  // 2. The whole decode, alternating.
  const ours: Contender = {
    label: 'meshtap `createCodec().decode`',
    count: n,
    step: (i) => {
      const r = codec.decode(inputs[i]!)
      return r.ok ? r.value.portnum : 1
    },
  }
  const base: Contender = {
    label: 'baseline chain (protobuf-es + `createDecipheriv` per packet + `toJson`)',
    count: n,
    step: (i) => {
      const r = chain(topics[i]!, payloads[i]!)
      return r.ok ? (r.portnum ?? 0) : 1
    },
  }
  warmUp([ours, base], options.quick ? 1 : 3)
  let quietNote: string | undefined
  if (!options.quick) {
    // Like the performance notes: give a neighbour (a build, a test run) up to a minute to finish.
    const q = await waitForQuiet(60_000)
    if (q.others !== undefined) {
      quietNote = `waited ${(q.waitedMs / 1000).toFixed(0)} s for the machine to be quiet before timing (others then at ${formatPercent(q.others)})`
      log(`codec: ${quietNote}`)
    }
  }
  log(`codec: timing ${rounds} rounds × ${roundMs} ms each, alternating`)
  const main = alternate([ours, base], rounds, roundMs)

  // 3. Sub-steps, for "where the time goes".
  const envOurs: Contender = {
    label: 'envelope: meshtap `readEnvelope`',
    count: n,
    step: (i) => readEnvelope(payloads[i]!)?.packet?.hopStart ?? 0,
  }
  const envBase: Contender = {
    label: 'envelope: `fromBinary(ServiceEnvelope)`',
    count: n,
    step: (i) => fromBinary(Mqtt.ServiceEnvelopeSchema, payloads[i]!).packet?.hopStart ?? 0,
  }

  const enc: { ct: Uint8Array; from: number; id: number }[] = []
  for (let i = 0; i < n; i++) {
    if (msgs[i]!.category !== 'default-key') continue
    const env = readEnvelope(payloads[i]!)!
    const p = env.packet!
    enc.push({ ct: payloads[i]!.slice(p.payloadStart, p.payloadEnd), from: p.from, id: p.id })
  }
  const aes = createAesCtr(DEFAULT_KEY)
  const key = Buffer.from(DEFAULT_KEY)
  const decipherOnce = (e: { ct: Uint8Array; from: number; id: number }) => {
    const nonce = Buffer.alloc(16)
    nonce.writeUInt32LE(e.id, 0)
    nonce.writeUInt32LE(e.from, 8)
    const d = createDecipheriv('aes-128-ctr', key, nonce)
    return Buffer.concat([d.update(e.ct), d.final()])
  }
  for (const e of enc) {
    if (!Buffer.from(aes.crypt(e.ct, 0, e.ct.length, e.from, e.id)).equals(decipherOnce(e))) {
      throw new Error('meshtap AES-CTR and createDecipheriv disagree')
    }
  }
  const decOurs: Contender = {
    label: 'decrypt: meshtap AES-CTR (one reused ECB cipher)',
    count: enc.length,
    step: (i) => {
      const e = enc[i]!
      return aes.crypt(e.ct, 0, e.ct.length, e.from, e.id)[0]!
    },
  }
  const decBase: Contender = {
    label: 'decrypt: `createDecipheriv` per packet',
    count: enc.length,
    step: (i) => decipherOnce(enc[i]!)[0]!,
  }

  // Payload bytes of every decoded message with a schema (from the baseline's Data).
  const pl: {
    desc: DescMessage
    bytes: Uint8Array
    decode: ReturnType<typeof compileJsonDecoder>
  }[] = []
  for (let i = 0; i < n; i++) {
    const r = codec.decode(inputs[i]!)
    if (!r.ok) continue
    const desc = PAYLOAD_SCHEMAS.get(r.value.portnum)
    if (!desc) continue
    pl.push({
      desc,
      bytes: Buffer.from(r.value.payload, 'base64'),
      decode: compileJsonDecoder(desc),
    })
  }
  const plOurs: Contender = {
    label: 'payload → JSON: meshtap compiled decoder',
    count: pl.length,
    step: (i) => {
      const p = pl[i]!
      return p.decode(p.bytes) === undefined ? 0 : 1
    },
  }
  const plBase: Contender = {
    label: 'payload → JSON: `toJson(fromBinary(schema))`',
    count: pl.length,
    step: (i) => {
      const p = pl[i]!
      return toJson(p.desc, fromBinary(p.desc, p.bytes)) === null ? 0 : 1
    },
  }
  const subs: Alternated[] = []
  for (const pair of [
    [envOurs, envBase],
    [decOurs, decBase],
    [plOurs, plBase],
  ] as [Contender, Contender][]) {
    warmUp(pair, 2)
    log(`codec: sub-step ${pair[0].label.split(':')[0]}`)
    subs.push(alternate(pair, subRounds, subMs))
  }

  // 4. Report.
  const [mo, mb] = measured(main) as [Measured, Measured]
  const ratio = mo.rate.median / mb.rate.median
  const paired = spread(pairedRatios(main.rounds[0]!, main.rounds[1]!))
  const cpuRatio = mo.cpuRate.median / mb.cpuRate.median

  const count = (c: string) => mix.byCategory.get(c as never) ?? 0
  const mixLine = CATEGORIES.map((c) => `${c} ${((count(c) / n) * 100).toFixed(1)} %`).join(', ')
  const apps = [...mix.byApp.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([a, k]) => `${a} ${k}`)
    .join(', ')

  const mainTable: Table = {
    header: ['chain', 'packets/s (median)', 'min..max', 'packets per CPU-second', 'ratio'],
    rows: [
      [
        mo.label,
        `**${formatRate(mo.rate.median)}**`,
        formatRange(mo.rate),
        formatRate(mo.cpuRate.median),
        `**${formatRatio(ratio)}**`,
      ],
      [
        mb.label,
        `**${formatRate(mb.rate.median)}**`,
        formatRange(mb.rate),
        formatRate(mb.cpuRate.median),
        formatRatio(1),
      ],
    ],
  }

  // Where the time goes: cost per message of the mix, in µs.
  const us = (m: Measured) => 1e6 / m.rate.median
  const [eo, eb] = measured(subs[0]!) as [Measured, Measured]
  const [dO, dB] = measured(subs[1]!) as [Measured, Measured]
  const [po, pb] = measured(subs[2]!) as [Measured, Measured]
  // Decryptions per message: the baseline decrypts only hash-matching (default-key) packets; the
  // codec also tries the default key on the private-channel ones (tryAllKeys) before giving up.
  const decShareBase = count('default-key') / n
  const decShareOurs = (count('default-key') + count('private-key')) / n
  const plShare = pl.length / n
  const subTable: Table = {
    caption:
      '**Where the time goes** (sub-steps timed alone, same rounds scheme; µs per message of the mix = cost × share of messages that need the step):',
    header: ['step', 'meshtap', 'baseline', 'ratio', 'µs/msg meshtap', 'µs/msg baseline'],
    rows: [
      [
        'read the envelope (all messages)',
        `${formatRate(eo.rate.median)}/s`,
        `${formatRate(eb.rate.median)}/s`,
        formatRatio(eo.rate.median / eb.rate.median),
        us(eo).toFixed(2),
        us(eb).toFixed(2),
      ],
      [
        `AES-CTR decrypt (${enc.length} default-key packets; needed by ${formatPercent(decShareOurs)} of messages for meshtap, ${formatPercent(decShareBase)} for the baseline)`,
        `${formatRate(dO.rate.median)}/s`,
        `${formatRate(dB.rate.median)}/s`,
        formatRatio(dO.rate.median / dB.rate.median),
        (us(dO) * decShareOurs).toFixed(2),
        (us(dB) * decShareBase).toFixed(2),
      ],
      [
        `payload → canonical JSON (${pl.length} payloads with a schema, ${formatPercent(plShare)} of messages)`,
        `${formatRate(po.rate.median)}/s`,
        `${formatRate(pb.rate.median)}/s`,
        formatRatio(po.rate.median / pb.rate.median),
        (us(po) * plShare).toFixed(2),
        (us(pb) * plShare).toFixed(2),
      ],
      [
        '**whole decode** (from the table above)',
        `${formatRate(mo.rate.median)}/s`,
        `${formatRate(mb.rate.median)}/s`,
        formatRatio(ratio),
        `**${us(mo).toFixed(2)}**`,
        `**${us(mb).toFixed(2)}**`,
      ],
    ],
  }
  const restOurs = us(mo) - us(eo) - us(dO) * decShareOurs - us(po) * plShare
  const restBase = us(mb) - us(eb) - us(dB) * decShareBase - us(pb) * plShare
  // Steps timed alone run hotter (or colder) than inside the chain, so the remainder is only an
  // estimate; near or below zero it means "the sub-steps are all of it".
  const rest = (v: number) => (v < 0.1 ? 'about 0' : `about ${v.toFixed(2)}`)

  const notes = [
    `Ratio of medians ${formatRatio(ratio)}; median of the ${rounds} paired rounds ${formatRatio(paired.median)} [${paired.min.toFixed(2)}..${paired.max.toFixed(2)}]; per CPU-second ${formatRatio(cpuRatio)}.`,
    `Rest of the decode (topic parsing, header object, \`Data\` reading, base64 of the payload, typed payload, checks — everything but the three sub-steps; whole-decode cost minus the sub-steps, which were timed alone, so a rough estimate): ${rest(restOurs)} µs per message for meshtap, ${rest(restBase)} µs for the baseline (\`fromBinary(Data)\`, TextDecoder).`,
    `Both chains were checked to give identical answers on all ${n} messages before timing: same ok/failed, same failure class (undecryptable / PKI), same \`from\` and \`id\`, same port, deep-equal canonical payload JSON (${check.ok} decoded payloads${check.keyOrderDiffs > 0 ? `; key order differed in ${check.keyOrderDiffs}` : ', same key order too'}).`,
    'Packets per CPU-second count every thread of the process, including V8 collecting garbage on the other core (the baseline allocates more and pays more there); unlike packets per wall-clock second they do not lose the time the process was waiting for a CPU.',
    'Both chains run from the TypeScript sources through tsx (`pnpm bench` uses the `@meshtap/source` condition). tsx compiles with esbuild `keepNames`, which adds a `__name()` call wherever the codec creates a closure per call; the published build (tsup) has none, so these figures slightly understate the built package.',
    'meshtap does more per message than the baseline: it builds the full `DecodedPacket` (header, node ids, hops, reception class, base64 payload, typed payload), gates keys on the channel hash and checks plausibility, and by default (`tryAllKeys`) also tries the default key on the private-channel packets before reporting them undecryptable; the baseline only looks up the key by hash.',
  ]

  const what = [
    `Decoding MQTT \`ServiceEnvelope\`s from the public-broker shape into packets, single thread. The mix: ${n} messages built with meshtap's encoder from a fixed seed, ${mix.avgBytes.toFixed(0)} bytes on average, ${mix.senders} senders heard through ${mix.gateways} gateways, topics like \`msh/US/2/e/LongFast/!a0100012\` under several roots — ${mixLine} (default key: LongFast, PSK \`AQ==\`; private-key: channel \`Secret\` with a key the codec does not have; PKI: random ciphertext). By payload: ${apps}.`,
    "Baseline, on the same bytes in the same run: `fromBinary(ServiceEnvelope)` with `@bufbuild/protobuf` (via `@meshtastic/protobufs`), a new `createDecipheriv('aes-128-ctr')` per encrypted packet with the key whose channel hash matches (`update` + `final`), `fromBinary(Data)`, then `fromBinary(<payload schema>)` + `toJson` (UTF-8 for text) — the straightforward chain most tools use.",
  ]

  return {
    name: 'codec',
    title: 'Decoding MQTT envelopes (`createCodec().decode`)',
    what,
    machine,
    revision: describeRevision(),
    busy: busySummary([main, ...subs]),
    tables: [mainTable, subTable],
    notes,
    headline: `meshtap ${formatRate(mo.rate.median)} packets/s vs baseline ${formatRate(mb.rate.median)} packets/s: ${formatRatio(ratio)} (paired ${formatRatio(paired.median)}, per CPU-second ${formatRatio(cpuRatio)})`,
    settings: `${rounds} rounds × ${(roundMs / 1000).toFixed(1)} s per chain, alternating, after warm-up; sub-steps ${subRounds} × ${(subMs / 1000).toFixed(1)} s${quietNote ? `; ${quietNote}` : ''}`,
    quick: options.quick,
  }
}

export const codecBenchmark: Benchmark = {
  name: 'codec',
  description: 'createCodec().decode vs the straightforward protobuf-es + createDecipheriv chain',
  run,
}
