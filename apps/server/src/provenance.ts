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

/** A transition zone across a scene seamline (the file's `transition_zones`). */
interface Zone {
  bbox: Bbox;
  geometry: MultiPolygonCoords;
  blend: { scene_ids: [string, string]; width_m: number | null };
}

interface Parts {
  parts: Part[];
  zones: Zone[];
}

const cache = new Map<string, { mtimeMs: number; parts: Promise<Parts> }>();

function str(v: unknown): string | null {
  return typeof v === 'string' ? v.slice(0, 1000) : null;
}

function areal(g: { type?: string } | undefined): MultiPolygonCoords | null {
  if (!g || (g.type !== 'Polygon' && g.type !== 'MultiPolygon')) return null;
  try {
    return toMultiPolygon(g as ArealGeometry);
  } catch {
    return null;
  }
}

async function load(path: string, size: number): Promise<Parts> {
  const out: Parts = { parts: [], zones: [] };
  if (size > MAX_BYTES) return out;
  const text = isS3Url(path) ? new TextDecoder().decode((await s3Get(path, null, { maxBytes: MAX_BYTES })).bytes) : await readFile(path, 'utf8');
  const json = JSON.parse(text) as { features?: unknown; transition_zones?: unknown };
  const parts = out.parts;
  if (Array.isArray(json.transition_zones)) {
    for (const f of json.transition_zones as { geometry?: { type?: string }; properties?: Record<string, unknown> }[]) {
      const geometry = areal(f?.geometry);
      const ids = f?.properties?.['scene_ids'];
      if (!geometry || !Array.isArray(ids) || ids.length !== 2) continue;
      const w = f.properties?.['width_m'];
      out.zones.push({ geometry, bbox: bboxOf(geometry), blend: { scene_ids: [String(str(ids[0])), String(str(ids[1]))], width_m: typeof w === 'number' ? w : null } });
    }
  }
  if (!Array.isArray(json.features)) return out;
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
  return out;
}

async function partsOf(path: string, version?: { mtimeMs: number; size: number }): Promise<Parts | null> {
  let st;
  try {
    st = version ?? (await stat(path));
  } catch {
    return null;
  }
  let hit = cache.get(path);
  if (!hit || hit.mtimeMs !== st.mtimeMs) {
    hit = { mtimeMs: st.mtimeMs, parts: load(path, st.size).catch((): Parts => ({ parts: [], zones: [] })) };
    cache.set(path, hit);
    if (cache.size > 64) cache.delete(cache.keys().next().value as string);
  }
  return hit.parts;
}

/** The scene that covers (lon, lat), or null; `path` is a file, or an object URL with its `version` from a listing. */
export async function sceneAt(path: string, lon: number, lat: number, version?: { mtimeMs: number; size: number }): Promise<SceneRef | null> {
  const all = await partsOf(path, version);
  if (!all) return null;
  for (const part of all.parts) {
    const [w, s, e, n] = part.bbox;
    if (lon < w || lon > e || lat < s || lat > n) continue;
    if (pointInMultiPolygon([lon, lat], part.geometry)) return part.scene;
  }
  return null;
}

/** The transition zone across a scene seamline that covers (lon, lat), or null: the two scenes blended there. */
export async function blendAt(path: string, lon: number, lat: number, version?: { mtimeMs: number; size: number }): Promise<Zone['blend'] | null> {
  const all = await partsOf(path, version);
  if (!all) return null;
  for (const z of all.zones) {
    const [w, s, e, n] = z.bbox;
    if (lon < w || lon > e || lat < s || lat > n) continue;
    if (pointInMultiPolygon([lon, lat], z.geometry)) return z.blend;
  }
  return null;
}
