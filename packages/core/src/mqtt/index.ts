export type { MqttReconnectOptions } from './backoff.js'
export type {
  MqttBrokerStats,
  MqttSource,
  MqttSourceStats,
  MqttSourceStatus,
} from './mqtt-source.js'
export { createMqttSource } from './mqtt-source.js'
export type { MqttBrokerOptions, MqttSourceOptions, MqttTlsOptions } from './options.js'
