/** The WGS 84 / UTM zone of a lon/lat position (standard 6° zones; no Norway/Svalbard exceptions). */
export function utmZoneOf(lon: number, lat: number): { zone: number; north: boolean; epsg: number; label: string } {
  let l = ((((lon + 180) % 360) + 360) % 360) - 180;
  if (l === 180) l = -180;
  const zone = Math.min(60, Math.max(1, Math.floor((l + 180) / 6) + 1));
  const north = lat >= 0;
  return { zone, north, epsg: (north ? 32600 : 32700) + zone, label: `${zone}${north ? 'N' : 'S'}` };
}
