/**
 * The schema, as the SQL of each migration. Every table that hangs off a logical packet references
 * `packets(id)` with `ON DELETE CASCADE`. Times are Unix milliseconds of when meshtap received the
 * data (`received_at`); every time index is append-ordered. See the README for the reasons.
 * @module
 */

/** Version 1: the Store contract — packets, receptions, undecoded packets, nodes, gateways. */
export const SCHEMA_V1 = `
CREATE TABLE strings (
  id INTEGER PRIMARY KEY,
  value TEXT NOT NULL UNIQUE
);

CREATE TABLE gateways (
  id INTEGER PRIMARY KEY,
  gateway_id TEXT NOT NULL UNIQUE,
  num INTEGER,
  first_seen INTEGER,
  last_seen INTEGER,
  receptions INTEGER NOT NULL DEFAULT 0,
  direct INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE packets (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  from_num INTEGER,
  to_num INTEGER,
  packet_id INTEGER,
  portnum INTEGER,
  channel_ref INTEGER,
  gw INTEGER,
  received_at INTEGER NOT NULL,
  rx_time INTEGER,
  hops_away INTEGER,
  json TEXT
);
CREATE INDEX packets_received_at ON packets (received_at, portnum);

CREATE TABLE receptions (
  id INTEGER PRIMARY KEY,
  packet_ref INTEGER NOT NULL REFERENCES packets (id) ON DELETE CASCADE,
  gw INTEGER NOT NULL,
  from_num INTEGER,
  topic_ref INTEGER,
  source_ref INTEGER,
  channel_ref INTEGER,
  rx_time INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  rx_snr REAL NOT NULL,
  rx_rssi INTEGER NOT NULL,
  hop_limit INTEGER NOT NULL,
  hop_start INTEGER NOT NULL,
  relay_node INTEGER,
  hops_away INTEGER,
  class INTEGER NOT NULL,
  app TEXT
);
CREATE UNIQUE INDEX receptions_packet_gw ON receptions (packet_ref, gw);
CREATE INDEX receptions_received_at ON receptions (received_at);

CREATE TABLE undecoded (
  id INTEGER PRIMARY KEY,
  packet_ref INTEGER NOT NULL REFERENCES packets (id) ON DELETE CASCADE,
  gw INTEGER NOT NULL,
  from_num INTEGER,
  to_num INTEGER,
  packet_id INTEGER,
  channel_hash INTEGER,
  channel_ref INTEGER,
  topic_ref INTEGER,
  received_at INTEGER NOT NULL,
  error_code TEXT NOT NULL,
  ciphertext BLOB,
  failure TEXT NOT NULL
);
CREATE UNIQUE INDEX undecoded_packet_gw ON undecoded (packet_ref, gw);
CREATE INDEX undecoded_received_at ON undecoded (received_at);

CREATE TABLE nodes (
  num INTEGER PRIMARY KEY,
  first_seen INTEGER NOT NULL,
  last_heard INTEGER NOT NULL,
  packets INTEGER NOT NULL DEFAULT 0,
  long_name TEXT,
  short_name TEXT,
  user_json TEXT,
  info_at INTEGER,
  latitude REAL,
  longitude REAL,
  altitude REAL,
  precision_bits INTEGER,
  radius_m REAL,
  position_at INTEGER,
  position_src INTEGER,
  device_json TEXT,
  device_at INTEGER,
  last_gw INTEGER,
  last_snr REAL,
  last_rssi INTEGER,
  last_class INTEGER,
  hops_away INTEGER,
  reception_at INTEGER,
  is_gateway INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX nodes_last_heard ON nodes (last_heard);
`

/**
 * Version 2: the typed tables a dashboard queries (positions, telemetry, messages, traceroutes,
 * neighbours, inferred links, map reports, waypoints, latest telemetry per node), filled from the
 * stored packets by a backfill when a version-1 file is upgraded.
 */
export const SCHEMA_V2 = `
ALTER TABLE nodes ADD COLUMN firmware_version TEXT;
ALTER TABLE nodes ADD COLUMN region;
ALTER TABLE nodes ADD COLUMN modem_preset;
ALTER TABLE nodes ADD COLUMN map_json TEXT;
ALTER TABLE nodes ADD COLUMN map_at INTEGER;

CREATE TABLE node_telemetry (
  num INTEGER NOT NULL,
  variant TEXT NOT NULL,
  at INTEGER NOT NULL,
  metrics TEXT NOT NULL,
  PRIMARY KEY (num, variant)
) WITHOUT ROWID;

CREATE TABLE positions (
  packet_ref INTEGER PRIMARY KEY REFERENCES packets (id) ON DELETE CASCADE,
  node INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  time INTEGER,
  latitude REAL NOT NULL,
  longitude REAL NOT NULL,
  altitude REAL,
  precision_bits INTEGER,
  radius_m REAL,
  sats_in_view INTEGER,
  ground_speed REAL,
  ground_track REAL,
  channel_ref INTEGER,
  gw INTEGER,
  cell INTEGER NOT NULL
);
CREATE INDEX positions_received_at ON positions (received_at);
CREATE INDEX positions_cell ON positions (cell, received_at);

CREATE TABLE telemetry (
  packet_ref INTEGER PRIMARY KEY REFERENCES packets (id) ON DELETE CASCADE,
  node INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  time INTEGER,
  variant TEXT NOT NULL,
  battery_level REAL,
  voltage REAL,
  channel_utilization REAL,
  air_util_tx REAL,
  uptime_seconds INTEGER,
  temperature REAL,
  relative_humidity REAL,
  barometric_pressure REAL,
  gas_resistance REAL,
  current REAL,
  iaq REAL,
  lux REAL,
  ch1_voltage REAL,
  ch1_current REAL,
  ch2_voltage REAL,
  ch2_current REAL,
  ch3_voltage REAL,
  ch3_current REAL,
  pm10_standard REAL,
  pm25_standard REAL,
  pm100_standard REAL,
  co2 REAL,
  extra TEXT,
  channel_ref INTEGER,
  gw INTEGER
);
CREATE INDEX telemetry_received_at ON telemetry (received_at);

CREATE TABLE messages (
  packet_ref INTEGER PRIMARY KEY REFERENCES packets (id) ON DELETE CASCADE,
  from_num INTEGER NOT NULL,
  to_num INTEGER NOT NULL,
  packet_id INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  rx_time INTEGER NOT NULL,
  channel_ref INTEGER,
  direct INTEGER NOT NULL,
  type TEXT NOT NULL,
  text TEXT NOT NULL,
  reply_id INTEGER,
  emoji INTEGER,
  is_reaction INTEGER NOT NULL,
  hops_away INTEGER,
  gw INTEGER
);
CREATE INDEX messages_received_at ON messages (received_at);

CREATE TABLE traceroutes (
  id INTEGER PRIMARY KEY,
  packet_ref INTEGER NOT NULL REFERENCES packets (id) ON DELETE CASCADE,
  gw INTEGER NOT NULL,
  from_num INTEGER NOT NULL,
  to_num INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  request_id INTEGER,
  route TEXT NOT NULL
);
CREATE UNIQUE INDEX traceroutes_packet_gw ON traceroutes (packet_ref, gw);
CREATE INDEX traceroutes_received_at ON traceroutes (received_at);

CREATE TABLE neighbors (
  packet_ref INTEGER NOT NULL REFERENCES packets (id) ON DELETE CASCADE,
  neighbor INTEGER NOT NULL,
  node INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  snr REAL,
  last_rx_time INTEGER,
  broadcast_interval INTEGER,
  PRIMARY KEY (packet_ref, neighbor)
) WITHOUT ROWID;
CREATE INDEX neighbors_received_at ON neighbors (received_at);

CREATE TABLE neighbor_links (
  node INTEGER NOT NULL,
  neighbor INTEGER NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  count INTEGER NOT NULL,
  last_snr REAL,
  PRIMARY KEY (node, neighbor)
) WITHOUT ROWID;
CREATE INDEX neighbor_links_last_seen ON neighbor_links (last_seen);
CREATE INDEX neighbor_links_neighbor ON neighbor_links (neighbor);

CREATE TABLE links (
  node INTEGER NOT NULL,
  gw INTEGER NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  count INTEGER NOT NULL,
  last_snr REAL,
  last_rssi INTEGER,
  PRIMARY KEY (node, gw)
) WITHOUT ROWID;
CREATE INDEX links_last_seen ON links (last_seen);
CREATE INDEX links_gw ON links (gw);

CREATE TABLE map_reports (
  packet_ref INTEGER PRIMARY KEY REFERENCES packets (id) ON DELETE CASCADE,
  node INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  long_name TEXT,
  short_name TEXT,
  firmware_version TEXT,
  latitude REAL,
  longitude REAL,
  radius_m REAL,
  json TEXT NOT NULL
);
CREATE INDEX map_reports_received_at ON map_reports (received_at);

CREATE TABLE waypoints (
  packet_ref INTEGER PRIMARY KEY REFERENCES packets (id) ON DELETE CASCADE,
  node INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  waypoint_id INTEGER,
  name TEXT,
  description TEXT,
  latitude REAL,
  longitude REAL,
  expire INTEGER,
  json TEXT NOT NULL
);
CREATE INDEX waypoints_received_at ON waypoints (received_at);
`

/**
 * Version 3: `(node, received_at)` on positions and telemetry, for one node's history. Measured
 * (`pnpm bench store`, 10 M receptions from 3000 nodes over 3 days): one node's positions over
 * 24 h went from 81 ms p50 / 92 ms p95 (a scan of the day) to 1.7 / 2.4 ms, its telemetry from
 * 82 / 88 ms to 1.4 / 1.9 ms, for about 10 % of the write rate in batches of 1000 (unlike the time
 * indexes, each touches one page per node per commit).
 */
export const SCHEMA_V3 = `
CREATE INDEX positions_node ON positions (node, received_at);
CREATE INDEX telemetry_node ON telemetry (node, received_at);
`

/**
 * Version 4: the bounding-box index covers what the box filter reads. `positions_cell` held
 * `(cell, received_at)`, so every candidate row of a 1° cell cost a lookup in the `positions`
 * table to test its latitude and longitude; at 10 M receptions (about 1.4 M positions, most of
 * them in a few cells) a 0.3° box measured p95 17–54 ms (about 3 ms with this index).
 * `positions_box` adds `packet_ref` (the tie-break of the keyset order, so the index still yields
 * rows in page order) and the coordinates, so SQLite tests the box on the index entry and reads
 * the table only for the rows it returns. Same append-ordered writes (one page per cell per
 * commit).
 */
export const SCHEMA_V4 = `
DROP INDEX positions_cell;
CREATE INDEX positions_box ON positions (cell, received_at, packet_ref, latitude, longitude);
`
