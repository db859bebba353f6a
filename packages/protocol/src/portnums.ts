/**
 * Meshtastic application port numbers (`Data.portnum`), by name. Includes ports newer than the
 * schemas bundled in `@meshtap/core`, so names stay correct for traffic from newer firmware.
 */
export const PortNum = {
  UNKNOWN_APP: 0,
  TEXT_MESSAGE_APP: 1,
  REMOTE_HARDWARE_APP: 2,
  POSITION_APP: 3,
  NODEINFO_APP: 4,
  ROUTING_APP: 5,
  ADMIN_APP: 6,
  TEXT_MESSAGE_COMPRESSED_APP: 7,
  WAYPOINT_APP: 8,
  AUDIO_APP: 9,
  DETECTION_SENSOR_APP: 10,
  ALERT_APP: 11,
  KEY_VERIFICATION_APP: 12,
  REMOTE_SHELL_APP: 13,
  REPLY_APP: 32,
  IP_TUNNEL_APP: 33,
  PAXCOUNTER_APP: 34,
  STORE_FORWARD_PLUSPLUS_APP: 35,
  NODE_STATUS_APP: 36,
  MESH_BEACON_APP: 37,
  SERIAL_APP: 64,
  STORE_FORWARD_APP: 65,
  RANGE_TEST_APP: 66,
  TELEMETRY_APP: 67,
  ZPS_APP: 68,
  SIMULATOR_APP: 69,
  TRACEROUTE_APP: 70,
  NEIGHBORINFO_APP: 71,
  ATAK_PLUGIN: 72,
  MAP_REPORT_APP: 73,
  POWERSTRESS_APP: 74,
  LORAWAN_BRIDGE: 75,
  RETICULUM_TUNNEL_APP: 76,
  CAYENNE_APP: 77,
  ATAK_PLUGIN_V2: 78,
  LORA_OTA_APP: 79,
  GROUPALARM_APP: 112,
  PRIVATE_APP: 256,
  ATAK_FORWARDER: 257,
  MAX: 511,
} as const

/** A port name known to meshtap. */
export type PortNumName = keyof typeof PortNum

const NAMES = new Map<number, PortNumName>(
  (Object.entries(PortNum) as [PortNumName, number][]).map(([k, v]) => [v, k]),
)

/**
 * The name of a port number (`3` → `'POSITION_APP'`), or `undefined` for a number no firmware
 * release has named.
 */
export function portnumName(portnum: number): PortNumName | undefined {
  return NAMES.get(portnum)
}

/** Whether a port number is one that firmware defines (including the private range 256–511). */
export function isKnownPortnum(portnum: number): boolean {
  return NAMES.has(portnum) || (portnum >= 256 && portnum <= 511)
}
