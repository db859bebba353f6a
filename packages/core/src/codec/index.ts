export type { Codec, CodecOptions, DecodeResult, MeshtasticCodec, PacketView } from './decode.js'
export { createCodec } from './decode.js'
export type { DataFields, EncodeEnvelopeInput, EncodePacketInput } from './encode.js'
export {
  channelCrypt,
  encodeAppPayload,
  encodeData,
  encodeEnvelope,
  encodeMeshPacket,
} from './encode.js'
export type { ChannelKey, ChannelKeyInput, KeyRing } from './keyring.js'
export {
  channelHash,
  createChannelKey,
  createKeyRing,
  DEFAULT_CHANNEL_NAME,
  DEFAULT_KEY,
  expandPsk,
  nameHash,
  parseChannelKeySpec,
  xorHash,
} from './keyring.js'
export { protobufJsonToBytes } from './protobuf-json.js'
export type { ParsedTopic } from './topic.js'
export { parseTopic } from './topic.js'
