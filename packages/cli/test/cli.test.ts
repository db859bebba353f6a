import { spawn } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeEnvelope } from '@meshtap/core'
import { bytesToBase64, PortNum } from '@meshtap/protocol'
import { describe, expect, it } from 'vitest'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const tsx = resolve(repo, 'node_modules/.bin/tsx')
const bin = resolve(repo, 'packages/cli/src/bin.ts')

/** Runs the real `meshtap` command (from source) with stdin, like `pnpm meshtap …` does. */
function run(
  args: string[],
  stdin = '',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(tsx, ['--conditions=@meshtap/source', bin, ...args], { cwd: repo })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    child.on('error', fail)
    child.on('close', (code) => done({ code, stdout, stderr }))
    child.stdin.end(stdin)
  })
}

const secret = { name: 'Private', psk: bytesToBase64(new Uint8Array(16).fill(0x42)) }
const env = (id: number, channel?: typeof secret) =>
  bytesToBase64(
    encodeEnvelope({
      from: 0x1234abcd,
      id,
      portnum: PortNum.TEXT_MESSAGE_APP,
      payload: `message ${id}`,
      gatewayId: '!00000001',
      ...(channel ? { channel } : {}),
    }),
  )

describe('meshtap decode (the process)', () => {
  it('writes exactly one line per input line, in order, and exits 0 even when lines fail', async () => {
    const input = [
      JSON.stringify({ payload: env(1), topic: 'msh/US/2/e/LongFast/!00000001' }),
      'not json',
      JSON.stringify({ payload: env(2, secret), topic: 'msh/US/2/e/Private/!00000001' }),
      JSON.stringify({ payload: env(3) }),
      '',
      JSON.stringify({ payload: 'zz', encoding: 'hex' }),
    ].join('\n')
    const { code, stdout } = await run(['decode'], `${input}\n`)
    expect(code).toBe(0)
    const lines = stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines).toHaveLength(6)
    expect(lines[0]).toMatchObject({ ok: true, packet: { id: 1, payload: { text: 'message 1' } } })
    expect(lines[1]).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } })
    expect(lines[2]).toMatchObject({
      ok: false,
      error: { code: 'NO_MATCHING_KEY' },
      packet: { id: 2, fromId: '!1234abcd' },
    })
    expect(lines[3]).toMatchObject({ ok: true, packet: { id: 3, kind: 'envelope' } })
    expect(lines[4]).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } })
    expect(lines[5]).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } })
  })

  it('decrypts with --key NAME=PSK', async () => {
    const { code, stdout } = await run(
      ['decode', '--key', `${secret.name}=${secret.psk}`],
      `${JSON.stringify({ payload: env(2, secret), topic: 'msh/US/2/e/Private/!00000001' })}\n`,
    )
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toMatchObject({
      ok: true,
      packet: { keyName: 'Private', payload: { text: 'message 2' } },
    })
  })

  it('prints one readable line per packet with --format text', async () => {
    const input = [
      JSON.stringify({ payload: env(7), topic: 'msh/US/2/e/LongFast/!00000001' }),
      JSON.stringify({ payload: env(8, secret), topic: 'msh/US/2/e/Private/!00000001' }),
    ].join('\n')
    const { code, stdout } = await run(['decode', '--format', 'text'], `${input}\n`)
    expect(code).toBe(0)
    const lines = stdout.trimEnd().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^✓ !1234abcd → all {2}TEXT_MESSAGE_APP {2}text "message 7"/)
    expect(lines[1]).toMatch(/^✗ !1234abcd NO_MATCHING_KEY/)
  })

  it('exits 2 with a clear message on bad usage', async () => {
    const bad = await run(['decode', '--key', 'nokey'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--key: .*NAME=PSK/)
    const unknownFlag = await run(['decode', '--frobnicate'])
    expect(unknownFlag.code).toBe(2)
    const unknownCommand = await run(['frobnicate'])
    expect(unknownCommand.code).toBe(2)
    expect(unknownCommand.stderr).toMatch(/unknown command "frobnicate"/)
  })
})
