import type { Prng } from './prng.js'

/**
 * Word lists and generators for simulated node names and chat. Everything here is made up for
 * meshtap; names are chosen to look like what people give their nodes, texts like mesh chatter.
 * @internal
 * @module
 */

const ADJECTIVES = [
  'Foggy',
  'Salty',
  'Golden',
  'Rusty',
  'Quiet',
  'Lucky',
  'Sunny',
  'Misty',
  'Crimson',
  'Silver',
  'Windy',
  'Hidden',
  'Brave',
  'Sleepy',
  'Cosmic',
  'Coastal',
  'Solar',
  'Lonely',
  'Happy',
  'Wild',
]

const NOUNS = [
  'Pelican',
  'Otter',
  'Redwood',
  'Bridge',
  'Harbor',
  'Ridge',
  'Coyote',
  'Heron',
  'Sparrow',
  'Summit',
  'Lighthouse',
  'Seal',
  'Hawk',
  'Poppy',
  'Cable Car',
  'Tide',
  'Canyon',
  'Owl',
  'Raven',
  'Quail',
]

const SUFFIXES = ['Base', 'Mobile', 'Relay', 'Node', 'Portable', 'Home', 'Van', 'Attic', 'Roof']

const EMOJI_SHORT = ['🦦', '🌉', '📡', '🐻', '🌲', '🚲', '🦅', '🐙']

const PLACES = [
  'Oakland',
  'Berkeley',
  'the Mission',
  'Daly City',
  'San Mateo',
  'Fremont',
  'San Jose',
  'Walnut Creek',
  'Marin',
  'Mt Diablo',
  'Hayward',
  'Palo Alto',
]

const OPENERS = [
  'Good morning mesh!',
  'Anyone on from {place}?',
  'Testing new antenna on the roof',
  'Radio check, how copy?',
  'Hello from {place} 👋',
  'Just set up a node in {place}',
  'Is anyone hearing me direct?',
  'Heading up to {place}, will be on the air',
  'Solar node is back online',
  'Net tonight at 8pm on LongFast',
  'Who is running the router near {place}?',
  'Anyone have a spare RAK board?',
  'Power is out in {place}, running on battery',
  'Range test from {place} in 10 min',
  'Moved my node higher, better coverage now',
]

const REPLIES = [
  'Copy, loud and clear',
  'Heard you {n} hops out',
  'Got you from {place}',
  'Welcome to the mesh!',
  'Hearing you direct, SNR looks good',
  'Yep, that one is mine',
  'Nice! Which antenna?',
  'Same here, all good',
  'Roger that',
  'Thanks!',
]

const REACTIONS = ['👍', '❤️', '😂', '🎉', '📡', '👋']

const DM_TEXTS = [
  'Hey, are you around?',
  'Can you check your node?',
  'Meet at the trailhead at 9',
  'Got your message, thanks',
  'What settings are you using?',
  'On my way',
]

function fill(template: string, rng: Prng): string {
  return template.replace('{place}', rng.pick(PLACES)).replace('{n}', String(rng.intBetween(1, 3)))
}

/** A long/short name pair; `hex4` is the last 4 hex digits of the node id (firmware default names). */
export function nodeNames(rng: Prng, hex4: string): { longName: string; shortName: string } {
  const r = rng.next()
  if (r < 0.15) return { longName: `Meshtastic ${hex4}`, shortName: hex4 }
  const adjective = rng.pick(ADJECTIVES)
  const noun = rng.pick(NOUNS)
  let longName = `${adjective} ${noun}`
  if (rng.chance(0.4)) longName += ` ${rng.pick(SUFFIXES)}`
  if (r < 0.25) {
    // Ham-style: callsign + suffix.
    const letters = 'ABCDEFGHJKLMNPRSTUVWXYZ'
    let call = rng.pick(['K', 'W', 'N', 'KD', 'KJ', 'KN'])
    call += String(rng.int(10))
    for (let i = 0, n = rng.intBetween(2, 3); i < n; i++) call += rng.pick([...letters])
    longName = `${call} ${rng.pick(SUFFIXES)}`
    return { longName, shortName: call.slice(-4) }
  }
  if (r < 0.33) return { longName, shortName: rng.pick(EMOJI_SHORT) }
  const initials = `${adjective[0]}${noun[0]}`
  return { longName, shortName: `${initials}${rng.int(100)}`.slice(0, 4) }
}

/** A channel message that starts a conversation. */
export function openerText(rng: Prng): string {
  return fill(rng.pick(OPENERS), rng)
}

/** A reply to a channel message. */
export function replyText(rng: Prng): string {
  return fill(rng.pick(REPLIES), rng)
}

/** A tapback: the emoji text and its code point (carried in `Data.emoji`). */
export function reaction(rng: Prng): { text: string; codePoint: number } {
  const text = rng.pick(REACTIONS)
  return { text, codePoint: text.codePointAt(0) as number }
}

/** A direct message text. */
export function dmText(rng: Prng): string {
  return rng.pick(DM_TEXTS)
}

/** Truncates a string to at most `maxBytes` UTF-8 bytes without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  const encoder = new TextEncoder()
  if (encoder.encode(text).length <= maxBytes) return text
  let out = ''
  let bytes = 0
  for (const ch of text) {
    const n = encoder.encode(ch).length
    if (bytes + n > maxBytes) break
    out += ch
    bytes += n
  }
  return out
}
