/**
 * A reader for the Prometheus text exposition format (version 0.0.4), enough for the soak sampler
 * to read the reference server's `/metrics`: comment lines are skipped, each sample line is
 * `name{label="value",…} number [timestamp]`.
 */

/** The samples of one scrape. */
export interface PromScrape {
  /** The value of `name` with exactly these labels (none by default); `undefined` when absent. */
  get(name: string, labels?: Record<string, string>): number | undefined
  /** The sum of every sample named `name`, whatever its labels (0 when absent). */
  sum(name: string): number
  /** Number of samples read. */
  readonly size: number
}

/** A line that is neither a comment, blank nor a valid sample. */
export class PromParseError extends Error {
  override readonly name = 'PromParseError'
}

function keyOf(name: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
  return `${name}{${parts.join(',')}}`
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?\s*$/
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y

function parseLabels(text: string, line: number): Record<string, string> {
  const out: Record<string, string> = {}
  LABEL.lastIndex = 0
  while (LABEL.lastIndex < text.length) {
    const m = LABEL.exec(text)
    if (!m) throw new PromParseError(`line ${line}: malformed labels {${text}}`)
    out[m[1] as string] = (m[2] as string).replace(/\\(.)/g, (_, c: string) =>
      c === 'n' ? '\n' : c,
    )
  }
  return out
}

/**
 * Parses a `/metrics` body.
 * @throws PromParseError naming the first malformed line.
 * @example parsePrometheus('up 1\n').get('up') // 1
 */
export function parsePrometheus(body: string): PromScrape {
  const values = new Map<string, number>()
  const sums = new Map<string, number>()
  const lines = body.split('\n')
  lines.forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const m = LINE.exec(line)
    if (!m) throw new PromParseError(`line ${i + 1}: not a sample: ${line.slice(0, 80)}`)
    const name = m[1] as string
    const labels = m[3] ? parseLabels(m[3], i + 1) : {}
    const text = m[4] as string
    const value =
      text === '+Inf' ? Number.POSITIVE_INFINITY : text === '-Inf' ? -Infinity : Number(text)
    if (Number.isNaN(value) && text !== 'NaN') {
      throw new PromParseError(`line ${i + 1}: not a number: ${text}`)
    }
    values.set(keyOf(name, labels), value)
    sums.set(name, (sums.get(name) ?? 0) + value)
  })
  return {
    get: (name, labels = {}) => values.get(keyOf(name, labels)),
    sum: (name) => sums.get(name) ?? 0,
    size: values.size,
  }
}
