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

/**
 * The ingest as a {@link LiveSource}, with the status events of sources the server runs itself
 * (the ingest only reports sources it was created with, and those cannot be stopped one by one).
 */
export function createLiveSource(ingest: Ingest) {
  const statusListeners = new Set<(s: SourceStatus) => void>()
  const live: LiveSource = {
    cache: ingest.cache,
    on<E extends keyof LiveEvents>(event: E, listener: (payload: LiveEvents[E]) => void) {
      if (event !== 'sourceStatus') return ingest.on(event, listener as never)
      const l = listener as (s: SourceStatus) => void
      statusListeners.add(l)
      return () => statusListeners.delete(l)
    },
  }
  return {
    live,
    emitStatus(s: SourceStatus) {
      for (const l of statusListeners) l(s)
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
