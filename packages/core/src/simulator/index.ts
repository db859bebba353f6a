export type {
  MeshSimulator,
  MeshSimulatorMix,
  MeshSimulatorOptions,
  MeshSimulatorStats,
  SimNode,
  SimPacketType,
  SimulatedMessage,
} from './mesh-simulator.js'
export { createMeshSimulator, truncateCoordinate } from './mesh-simulator.js'
