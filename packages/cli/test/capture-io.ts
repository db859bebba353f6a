import { PassThrough, type Readable } from 'node:stream'
import type { CliIo } from '../src/index.js'

/** An in-memory stdin/stdout/stderr for running a command in process, with what it wrote. */
export function captureIo(stdin: Readable = new PassThrough()) {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d) => {
    out += d
  })
  stderr.on('data', (d) => {
    err += d
  })
  return {
    io: { stdin, stdout, stderr } as CliIo,
    out: () => out,
    err: () => err,
  }
}
