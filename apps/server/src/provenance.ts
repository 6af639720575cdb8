/**
 * provenance.geojson: which scene (and date) every part of the map came from. Loaded once per file
 * version (size-capped), looked up by point.
 */
import { readFile, stat } from 'node:fs/promises';
import { isS3Url, s3Get } from '@geo-dino/storage';
import { bboxOf, pointInMultiPolygon, toMultiPolygon, type ArealGeometry, type Bbox, type MultiPolygonCoords } from '@geo-dino/geometry';

const MAX_BYTES = 32 << 20;

import type { SceneRef } from './api-types.js';

interface Part {
  bbox: Bbox;
  geometry: MultiPolygonCoords;
  scene: SceneRef;
}

const cache = new Map<string, { mtimeMs: number; parts: Promise<Part[]> }>();

function str(v: unknown): string | null {
  return typeof v === 'string' ? v.slice(0, 1000) : null;
}

async function load(path: string, size: number): Promise<Part[]> {
  if (size > MAX_BYTES) return [];
  const text = isS3Url(path) ? new TextDecoder().decode((await s3Get(path, null, { maxBytes: MAX_BYTES })).bytes) : await readFile(path, 'utf8');
  const json = JSON.parse(text) as { features?: unknown };
  const parts: Part[] = [];
  if (!Array.isArray(json.features)) return parts;
  for (const f of json.features as { geometry?: { type?: string }; properties?: Record<string, unknown> }[]) {
    const g = f?.geometry;
    if (!g || (g.type !== 'Polygon' && g.type !== 'MultiPolygon')) continue;
    try {
      const geometry = toMultiPolygon(g as ArealGeometry);
      const p = f.properties ?? {};
      parts.push({
        geometry,
        bbox: bboxOf(geometry),
        scene: { scene_id: str(p['scene_id']), datetime: str(p['datetime']), href: str(p['href']), collection: str(p['collection']) },
      });
    } catch {
      continue;
    }
  }
  return parts;
}

/** The scene that covers (lon, lat), or null; `path` is a file, or an object URL with its `version` from a listing. */
export async function sceneAt(path: string, lon: number, lat: number, version?: { mtimeMs: number; size: number }): Promise<SceneRef | null> {
  let st;
  try {
    st = version ?? (await stat(path));
  } catch {
    return null;
  }
  let hit = cache.get(path);
  if (!hit || hit.mtimeMs !== st.mtimeMs) {
    hit = { mtimeMs: st.mtimeMs, parts: load(path, st.size).catch(() => []) };
    cache.set(path, hit);
    if (cache.size > 64) cache.delete(cache.keys().next().value as string);
  }
  for (const part of await hit.parts) {
    const [w, s, e, n] = part.bbox;
    if (lon < w || lon > e || lat < s || lat > n) continue;
    if (pointInMultiPolygon([lon, lat], part.geometry)) return part.scene;
  }
  return null;
}
