/**
 * Why a message could not be decoded. Stable strings: tools and stores match on them.
 *
 * - `INVALID_INPUT`: the input itself is unusable (not base64/hex/JSON, unknown kind).
 * - `PAYLOAD_TOO_LARGE`: more bytes than any Meshtastic message can have; not parsed.
 * - `UNKNOWN_TOPIC`: the MQTT topic is not a Meshtastic topic (`…/2/e/…`, `…/2/map/`, `…/2/json/…`, `…/2/c/…`).
 * - `MALFORMED_ENVELOPE`: the `ServiceEnvelope` (or bare `MeshPacket`) is not valid protobuf or has no packet.
 * - `MALFORMED_JSON`: a JSON input (firmware JSON uplink or protobuf-JSON) does not have the expected shape.
 * - `EMPTY_PACKET`: the packet carries neither a decoded nor an encrypted payload.
 * - `PKI_ENCRYPTED`: a public-key (PKI) direct message; only the recipient's private key opens it.
 * - `NO_MATCHING_KEY`: encrypted with a channel key meshtap does not have (or not plausibly decryptable).
 * - `MALFORMED_DATA`: a plaintext `Data` that is not valid protobuf, or has no port number.
 * - `MALFORMED_PAYLOAD`: the application payload does not parse as its port's message.
 */
export type DecodeErrorCode =
  | 'INVALID_INPUT'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNKNOWN_TOPIC'
  | 'MALFORMED_ENVELOPE'
  | 'MALFORMED_JSON'
  | 'EMPTY_PACKET'
  | 'PKI_ENCRYPTED'
  | 'NO_MATCHING_KEY'
  | 'MALFORMED_DATA'
  | 'MALFORMED_PAYLOAD'

/** Every {@link DecodeErrorCode}, in a stable order (useful for metrics labels). */
export const DECODE_ERROR_CODES: readonly DecodeErrorCode[] = [
  'INVALID_INPUT',
  'PAYLOAD_TOO_LARGE',
  'UNKNOWN_TOPIC',
  'MALFORMED_ENVELOPE',
  'MALFORMED_JSON',
  'EMPTY_PACKET',
  'PKI_ENCRYPTED',
  'NO_MATCHING_KEY',
  'MALFORMED_DATA',
  'MALFORMED_PAYLOAD',
]

/** A decode failure: a code to branch on and a message that says what to do about it. */
export interface DecodeError {
  readonly code: DecodeErrorCode
  readonly message: string
}
