import { type ChannelKeyInput, createCodec, type Ingest, type MeshtasticCodec } from '@meshtap/core'
import type { LiveEvents, LiveSource, SourceStatus } from '@meshtap/protocol'

/**
 * A codec whose key ring can be replaced at run time (the ingest takes one codec at creation; core
 * has no `addKey`). Messages are decoded one at a time, synchronously, so a swap between two
 * messages is safe.
 */
export function createSwappableCodec(keys: readonly ChannelKeyInput[]) {
  let current = [...keys]
  let inner = createCodec({ keys: current })
  const codec: MeshtasticCodec = {
    name: inner.name,
    get keyRing() {
      return inner.keyRing
    },
    decode: (m) => inner.decode(m),
    inspect: (m) => inner.inspect(m),
    open: (v) => inner.open(v),
  }
  return {
    codec,
    keys: () => [...new Set(current.map((k) => k.name))],
    /** Adds (or replaces) a channel key; returns a codec with only the new key, for re-decryption. */
    add(key: ChannelKeyInput): MeshtasticCodec {
      // Kept next to other keys of the same name: a wrong PSK must not evict a working one.
      if (!current.some((k) => k.name === key.name && k.psk === key.psk))
        current = [...current, key]
      inner = createCodec({ keys: current })
      return createCodec({ keys: [key] })
    },
  }
}

/** The events a relay forwards from its upstream (`sourceStatus` comes from the server's own sources). */
const RELAYED = ['packet', 'reception', 'undecoded', 'nodeUpdate', 'drop', 'flush'] as const

/**
 * The {@link LiveSource} the WebSocket serves: the events of an upstream (the ingest, or the
 * PostgreSQL change feed, which can be replaced when it is restarted) plus the status events of
 * the sources the server runs itself (reported with the ids the control API uses, including the
 * simulator and the change feed, which are not ingest sources).
 */
export function createLiveSource(initial?: LiveSource) {
  const listeners = new Map<keyof LiveEvents, Set<(payload: never) => void>>()
  let upstream: LiveSource | undefined
  let detach: (() => void) | undefined
  const emit = <E extends keyof LiveEvents>(event: E, payload: LiveEvents[E]) => {
    for (const l of listeners.get(event) ?? []) (l as (p: LiveEvents[E]) => void)(payload)
  }
  const live: LiveSource = {
    cache: {
      get: (node) => upstream?.cache.get(node),
      list: () => upstream?.cache.list() ?? [],
    },
    on<E extends keyof LiveEvents>(event: E, listener: (payload: LiveEvents[E]) => void) {
      let set = listeners.get(event)
      if (!set) {
        set = new Set()
        listeners.set(event, set)
      }
      const l = listener as (payload: never) => void
      set.add(l)
      return () => {
        set.delete(l)
      }
    },
  }
  /** Forwards `source`'s events from now on (instead of the previous upstream's). */
  const attach = (source: LiveSource) => {
    detach?.()
    upstream = source
    const offs = RELAYED.map((event) =>
      source.on(event, (payload) => emit(event, payload as LiveEvents[typeof event])),
    )
    detach = () => {
      for (const off of offs) off()
    }
  }
  if (initial) attach(initial)
  return {
    live,
    attach,
    emitStatus(s: SourceStatus) {
      emit('sourceStatus', s)
    },
  }
}

/** Envelopes and packets per second over the last `windowS` seconds, sampled every second. */
export function createRateMeter(ingest: Ingest, windowS = 10) {
  const samples: { t: number; received: number; packets: number }[] = []
  const sample = () => {
    const c = ingest.metrics().counters
    samples.push({ t: Date.now(), received: c.received, packets: c.packets })
    if (samples.length > windowS + 1) samples.shift()
  }
  sample()
  const timer = setInterval(sample, 1000)
  timer.unref()
  return {
    rate() {
      const first = samples[0]
      const c = ingest.metrics().counters
      if (!first) return { envelopesPerSec: 0, packetsPerSec: 0 }
      const dt = Math.max(1, Date.now() - first.t) / 1000
      return {
        envelopesPerSec: Math.round(((c.received - first.received) / dt) * 10) / 10,
        packetsPerSec: Math.round(((c.packets - first.packets) / dt) * 10) / 10,
      }
    },
    close: () => clearInterval(timer),
  }
}
