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

/**
 * Parses a node id (`!fa75f7c0`, `fa75f7c0`, or a decimal string such as `'4202035136'` when
 * `allowDecimal` is set) into its uint32 node number. Returns `undefined` when the text is not a node id.
 *
 * @example
 * nodeNumFromId('!fa75f7c0') // 4202035136
 */
export function nodeNumFromId(id: string, allowDecimal = false): number | undefined {
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
