/**
 * The workspace code and third-party modules the benchmarks use, in one place. Packages resolve
 * through the root's devDependencies (to their sources, with the `@meshtap/source` condition);
 * the codec internals timed on their own (envelope reader, AES-CTR engine, JSON decoder) are not
 * public API, so they are imported from the source files.
 */

export type { DescMessage } from '@bufbuild/protobuf'
export {
  fromBinary,
  toJson,
} from '@bufbuild/protobuf'
export type { ChannelKey, DecodeResult } from '@meshtap/core'
export {
  createChannelKey,
  createCodec,
  DEFAULT_KEY,
  encodeEnvelope,
} from '@meshtap/core'
export type { AppPayload } from '@meshtap/protocol'
export { PortNum } from '@meshtap/protocol'
export {
  Mesh,
  Mqtt,
  Telemetry,
} from '@meshtastic/protobufs'
export { createAesCtr } from '../../packages/core/src/codec/aes-ctr.js'
export { readEnvelope } from '../../packages/core/src/codec/envelope.js'
export { compileJsonDecoder } from '../../packages/core/src/codec/proto-json.js'
