#!/usr/bin/env node
import { ConfigError, describeConfig, loadConfig, USAGE } from './config.js'

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig(process.argv.slice(2))
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`meshtap-server: configuration error: ${e.message}\n`)
      process.exit(2)
    }
    throw e
  }
  if (config === 'help') {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  // Loaded after the configuration is checked, so `--help` and configuration errors are instant.
  const { startReferenceServer } = await import('./server.js')
  let server: Awaited<ReturnType<typeof startReferenceServer>>
  try {
    server = await startReferenceServer(config)
  } catch (e) {
    process.stderr.write(`meshtap-server: cannot start: ${(e as Error).message}\n`)
    process.exit(1)
  }
  const summary = describeConfig(config)
  process.stdout.write(
    [
      '',
      `  meshtap reference server is running: open ${server.url}`,
      `  API: ${server.url}/api/openapi.json   metrics: ${server.url}/metrics`,
      server.mqttUrl
        ? config.mqtt.host === '127.0.0.1' ||
          config.mqtt.host === '::1' ||
          config.mqtt.host === 'localhost'
          ? `  Embedded MQTT broker: ${server.mqttUrl} (loopback only: add --mqtt-host 0.0.0.0 for gateways on your network)`
          : `  Point your gateways' MQTT uplink at this machine, port ${server.mqttUrl.split(':').at(-1)} (root topic msh/…)`
        : '  Embedded MQTT broker: off',
      config.ingest
        ? `  Sources: ${[config.mqtt.enabled ? 'embedded broker' : '', ...(summary.brokers as string[]), config.simulate ? 'simulator' : ''].filter(Boolean).join(', ') || 'none'}${config.share ? ` (shared subscription group ${config.share})` : ''}`
        : '  Web-only: no ingest; live events come from the PostgreSQL change feed',
      `  Database: ${summary.database}   control API: ${summary.controlApi}`,
      '',
    ].join('\n'),
  )
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    process.stdout.write(`meshtap-server: ${signal}: draining and flushing…\n`)
    const force = setTimeout(() => {
      process.stderr.write('meshtap-server: shutdown took more than 20 s, exiting\n')
      process.exit(1)
    }, 20_000)
    force.unref()
    server.close().then(
      () => {
        process.stdout.write('meshtap-server: stopped\n')
        process.exit(0)
      },
      (e: unknown) => {
        process.stderr.write(`meshtap-server: error while stopping: ${(e as Error).message}\n`)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

main().catch((e: unknown) => {
  process.stderr.write(`meshtap-server: ${(e as Error)?.stack ?? String(e)}\n`)
  process.exit(1)
})
