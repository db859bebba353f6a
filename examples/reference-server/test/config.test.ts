import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, describeConfig, loadConfig, type ServerConfig } from '../src/config.js'

const load = (argv: string[], env: Record<string, string> = {}, cwd = '/srv') =>
  loadConfig(argv, env, cwd) as ServerConfig

function fails(argv: string[], env: Record<string, string> = {}): string {
  try {
    loadConfig(argv, env, '/srv')
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return (e as Error).message
  }
  throw new Error('expected a ConfigError')
}

describe('configuration', () => {
  it('has loopback defaults and a data dir', () => {
    const c = load([])
    expect(c).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      database: '/srv/data/meshtap.db',
      mqtt: { enabled: true, host: '127.0.0.1', port: 1883 },
      brokers: [],
      simulate: false,
      protectReads: false,
      rateLimit: 1200,
    })
  })

  it('flags win over environment variables, variables over the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rs-config-'))
    const file = join(dir, 'c.json')
    writeFileSync(
      file,
      JSON.stringify({ port: 1000, host: '0.0.0.0', mqtt: { port: 1884 }, simulate: true }),
    )
    const c = load([`--config=${file}`, '--port=3000'], {
      MESHTAP_PORT: '2000',
      MESHTAP_MQTT_PORT: '1885',
    })
    expect(c.port).toBe(3000)
    expect(c.host).toBe('0.0.0.0')
    expect(c.mqtt.port).toBe(1885)
    expect(c.simulate).toMatchObject({ rate: 20, nodes: 60 })
  })

  it('parses brokers with topics, credentials and TLS options, and the public preset', () => {
    const c = load([
      '--broker=mqtts://alice:s3cret@broker.example:8883?topic=msh/EU_868/#&topic=msh/EU_433/#&insecure=1',
      '--public=US',
    ])
    expect(c.brokers[0]).toMatchObject({
      id: 'broker-1',
      url: 'mqtts://alice:s3cret@broker.example:8883',
      topics: ['msh/EU_868/#', 'msh/EU_433/#'],
      tls: { rejectUnauthorized: false },
    })
    expect(c.brokers[1]).toMatchObject({
      id: 'public',
      url: 'mqtt://mqtt.meshtastic.org:1883',
      username: 'meshdev',
      topics: ['msh/US/#'],
    })
    const shown = JSON.stringify(describeConfig(c))
    expect(shown).not.toContain('s3cret')
    expect(shown).not.toContain('large4cats')
  })

  it('parses channel keys and never echoes a PSK in errors', () => {
    expect(load(['--key=Private=AQ==', '--key', 'Team=q2J5c2VjcmV0a2V5MTIzNA==']).keys).toEqual([
      { name: 'Private', psk: 'AQ==' },
      { name: 'Team', psk: 'q2J5c2VjcmV0a2V5MTIzNA==' },
    ])
    expect(load([], { MESHTAP_KEYS: 'A=AQ==,B=Ag==' }).keys.map((k) => k.name)).toEqual(['A', 'B'])
    const msg = fails(['--key=Private=%%%notbase64secret'])
    expect(msg).toMatch(/^--key\[0\]: channel "Private": the PSK must be base64/)
    expect(msg).not.toContain('notbase64secret')
  })

  it.each([
    [['--port=70000'], /^--port: expected an integer from 0 to 65535, got "70000"$/],
    [['--port=http'], /^--port: expected an integer/],
    [[], /^MESHTAP_MQTT_PORT: expected an integer/, { MESHTAP_MQTT_PORT: '-1' }],
    [['--public=U S'], /^--public: expected a region like US/],
    [['--broker=http://x'], /^--broker\[0\]: .*mqtt:\/\//],
    [['--broker=mqtt://h?topic=a/%23/b'], /^--broker\[0\]: .*"#" must be the last level/],
    [['--broker=mqtt://h?color=red'], /unknown URL parameter "color"/],
    [
      ['--token=short'],
      /^--token: expected at least 16 characters without spaces \(value hidden\)$/,
    ],
    [['--protect-reads'], /^--protect-reads: protecting reads needs a token/],
    [['--cors-origin=https://x.org/path'], /^--cors-origin\[0\]: expected an origin/],
    [
      ['--tile-url=ftp://x/{z}'],
      /^--tile-url: expected an http\(s\) URL with \{z\}, \{x\} and \{y\}/,
    ],
    [['--log-level=loud'], /^--log-level: expected one of/],
    [['--mqtt-username=u'], /give both mqtt.username and mqtt.password/],
    [['--simulate', '--no-mqtt'], /cannot be used with --no-mqtt/],
    [['--simulate', '--simulate-nodes=3', '--simulate-gateways=5'], /at most simulate.nodes/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [
      [],
      /^MESHTAP_SIMULATE: expected true or false, got "perhaps"$/,
      { MESHTAP_SIMULATE: 'perhaps' },
    ],
    [['--config=/nonexistent.json'], /^--config: cannot read "\/nonexistent.json": ENOENT$/],
  ] as [string[], RegExp, Record<string, string>?][])(
    'rejects %j with a precise error',
    (argv, re, env) => {
      expect(fails(argv, env ?? {})).toMatch(re)
    },
  )

  it('rejects unknown and mistyped keys in the file, naming them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rs-config-'))
    const f = (o: unknown) => {
      const file = join(dir, `${Math.random()}.json`)
      writeFileSync(file, typeof o === 'string' ? o : JSON.stringify(o))
      return fails([`--config=${file}`])
    }
    expect(f({ prot: 1 })).toBe('config file: unknown key "prot"')
    expect(f({ mqtt: { prot: 1 } })).toBe('config file: unknown key "mqtt.prot"')
    expect(f({ port: 'eighty' })).toBe(
      'config file key "port": expected an integer from 0 to 65535, got "eighty"',
    )
    expect(f({ token: 12 })).toBe(
      'config file key "token": expected a non-empty string, got (value hidden)',
    )
    expect(f('{ nope')).toMatch(/is not JSON/)
    const ok = join(dir, 'ok.json')
    writeFileSync(
      ok,
      JSON.stringify({
        brokers: [{ url: 'mqtt://h', topics: ['msh/EU/#'], username: 'u', password: 'pw' }],
      }),
    )
    expect(load([`--config=${ok}`]).brokers[0]).toMatchObject({
      id: 'broker-1',
      topics: ['msh/EU/#'],
      password: 'pw',
    })
  })
})
