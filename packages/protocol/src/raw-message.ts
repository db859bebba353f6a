import type { PacketKind } from './packet.js'

/**
 * One message as a source delivers it: the MQTT topic and the payload bytes, untouched.
 * Sources produce these; the codec turns them into packets.
 */
export interface RawMessage {
  /** MQTT topic, when the message came from a broker (or a capture that kept it). */
  topic?: string
  /** The payload bytes (protobuf, or UTF-8 JSON text on `/2/json/` topics). */
  payload: Uint8Array
  /** What the payload is, when there is no topic to tell (default: from the topic, else `envelope`). */
  kind?: PacketKind
  /** When meshtap received it, Unix milliseconds. */
  receivedAt?: number
  /** The name of the source (broker) it came from. */
  source?: string
}
