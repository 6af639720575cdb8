/**
 * provenance.geojson: which scene (and date) every part of the map came from, and where two scenes
 * are blended. Loaded once per file version (size-capped); parsing and lookup are @geo-dino/zonal's
 * (shared with the viewer's static mode).
 */
import { readFile, stat } from 'node:fs/promises';
import { isS3Url, s3Get } from '@geo-dino/storage';
import { blendIn, provenanceIndex, sceneIn, type ProvenanceIndex, type SceneBlend, type SceneRef } from '@geo-dino/zonal';

const MAX_BYTES = 32 << 20;

const cache = new Map<string, { mtimeMs: number; index: Promise<ProvenanceIndex> }>();

async function load(path: string, size: number): Promise<ProvenanceIndex> {
  if (size > MAX_BYTES) return provenanceIndex(null);
  const text = isS3Url(path) ? new TextDecoder().decode((await s3Get(path, null, { maxBytes: MAX_BYTES })).bytes) : await readFile(path, 'utf8');
  return provenanceIndex(JSON.parse(text));
}

async function indexOf(path: string, version?: { mtimeMs: number; size: number }): Promise<ProvenanceIndex | null> {
  let st;
  try {
    st = version ?? (await stat(path));
  } catch {
    return null;
  }
  let hit = cache.get(path);
  if (!hit || hit.mtimeMs !== st.mtimeMs) {
    hit = { mtimeMs: st.mtimeMs, index: load(path, st.size).catch(() => provenanceIndex(null)) };
    cache.set(path, hit);
    if (cache.size > 64) cache.delete(cache.keys().next().value as string);
  }
  return hit.index;
}

/** The scene that covers (lon, lat), or null; `path` is a file, or an object URL with its `version` from a listing. */
export async function sceneAt(path: string, lon: number, lat: number, version?: { mtimeMs: number; size: number }): Promise<SceneRef | null> {
  const index = await indexOf(path, version);
  return index ? sceneIn(index, lon, lat) : null;
}

/** The transition zone across a scene seamline that covers (lon, lat), or null: the two scenes blended there. */
export async function blendAt(path: string, lon: number, lat: number, version?: { mtimeMs: number; size: number }): Promise<SceneBlend | null> {
  const index = await indexOf(path, version);
  return index ? blendIn(index, lon, lat) : null;
}
