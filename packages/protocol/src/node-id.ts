/** The broadcast node number (`!ffffffff`): a packet sent to everyone on the channel. */
export const BROADCAST_NUM = 0xffffffff

const NODE_ID_RE = /^!?([0-9a-fA-F]{1,8})$/

/**
 * Formats a node number as a Meshtastic node id: `!` followed by 8 lowercase hex digits.
 * Negative or out-of-range numbers are normalised to uint32 first (old firmware JSON wrote `-1`).
 *
 * @example
 * nodeIdFromNum(0xfa75f7c0) // '!fa75f7c0'
 * nodeIdFromNum(-1)         // '!ffffffff'
 */
export function nodeIdFromNum(num: number): string {
  const n = num >>> 0
  return `!${HEX[n >>> 24]}${HEX[(n >>> 16) & 0xff]}${HEX[(n >>> 8) & 0xff]}${HEX[n & 0xff]}`
}

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) =>
  i.toString(16).padStart(2, '0'),
)

/** Hex digit values by character code (0–9, a–f, A–F), -1 for anything else. */
const HEX_VALUE: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1)
  for (let i = 0; i < 10; i++) t[48 + i] = i
  for (let i = 0; i < 6; i++) {
    t[97 + i] = 10 + i
    t[65 + i] = 10 + i
  }
  return t
})()

/**
 * Parses a node id (`!fa75f7c0`, `fa75f7c0`, or a decimal string such as `'4202035136'` when
 * `allowDecimal` is set) into its uint32 node number. Returns `undefined` when the text is not a node id.
 *
 * @example
 * nodeNumFromId('!fa75f7c0') // 4202035136
 */
export function nodeNumFromId(id: string, allowDecimal = false): number | undefined {
  // The canonical form, on every message (gateway ids in topics): parsed without a regex.
  if (id.length === 9 && id.charCodeAt(0) === 0x21) {
    let n = 0
    for (let i = 1; i < 9; i++) {
      const v = HEX_VALUE[id.charCodeAt(i)] ?? -1
      if (v < 0) return undefined
      n = n * 16 + v
    }
    return n
  }
  const m = NODE_ID_RE.exec(id)
  if (m && (id.startsWith('!') || !allowDecimal)) return Number.parseInt(m[1] as string, 16) >>> 0
  if (allowDecimal && /^\d{1,10}$/.test(id)) {
    const n = Number(id)
    return n <= 0xffffffff ? n : undefined
  }
  return undefined
}

/** Normalises any JSON number (signed or unsigned) to a uint32 node number or packet id. */
export function toUint32(value: number): number {
  return value >>> 0
}

/** Whether the node number is the broadcast address. */
export function isBroadcast(num: number): boolean {
  return num >>> 0 === BROADCAST_NUM
}
