/**
 * Radius in metres of the area a position with `precisionBits` of precision can lie in, as the
 * Meshtastic apps draw it (10 bits ≈ 23.3 km … 19 bits ≈ 45 m). `undefined` for 0 (not shared)
 * and for 32 (full precision, no circle).
 *
 * The value halves with every extra bit: 23,300 m at 10 bits × 2^(10 − bits).
 *
 * @example
 * precisionRadiusM(14) // 1456.25 (≈ 1.5 km)
 */
export function precisionRadiusM(precisionBits: number | undefined): number | undefined {
  if (precisionBits === undefined || precisionBits <= 0 || precisionBits >= 32) return undefined
  return 23_300 * 2 ** (10 - precisionBits)
}

/** Whether a latitude/longitude pair is a real fix (in range and not "null island" 0,0). */
export function isPlausibleFix(latitude: number, longitude: number): boolean {
  if (!Number.isFinite(latitude) || !Number.isFinite(longitude)) return false
  if (latitude === 0 && longitude === 0) return false
  return latitude >= -90 && latitude <= 90 && longitude >= -180 && longitude <= 180
}
