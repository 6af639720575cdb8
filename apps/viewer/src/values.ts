/**
 * Value-encoded tiles in the browser: a MapLibre protocol `gdv://<layer key>/{z}/{x}/{y}` that
 * reads the tile from the PMTiles archive (HTTP Range), decodes the PNG without premultiplication
 * or colour conversion, keeps the decoded values (LRU), and colours them with the layer's current
 * ramp (height, uncertainty) or class table (land cover). Changing the ramp re-colours from the
 * cache. The same cache answers "what value is under the cursor".
 */
import { addProtocol } from 'maplibre-gl';
import { PMTiles } from 'pmtiles';
import { classValues, decodeValueTile, isValueEncoding, TILE_SIZE, type ClassEncoding, type LandCoverClass, type ValueEncoding } from '@geo-dino/pmtiles/encoding';
import { colourClasses, colourValues } from '@geo-dino/pmtiles/colormap';

export interface ValueStyle {
  lut: Uint8Array;
  min: number;
  max: number;
}

export interface ValueLayerSpec {
  /** Absolute URL of the .pmtiles archive. */
  archive: string;
  minzoom: number;
  maxzoom: number;
  encoding: ValueEncoding | ClassEncoding;
  classes?: LandCoverClass[];
  /** Current colours (value layers). */
  style?: () => ValueStyle;
}

interface Decoded {
  /** Values (NaN = nodata); class values for land cover. */
  values: Float32Array;
}

const N = TILE_SIZE;
const layers = new Map<string, ValueLayerSpec>();
const archives = new Map<string, PMTiles>();
const cache = new Map<string, Decoded | null>();
const MAX_CACHE = 384;
let transparent: Promise<ImageBitmap> | null = null;

export function registerValueLayer(key: string, spec: ValueLayerSpec): void {
  layers.set(key, spec);
}

function archive(url: string): PMTiles {
  let a = archives.get(url);
  if (!a) {
    a = new PMTiles(url);
    archives.set(url, a);
  }
  return a;
}

function remember(key: string, d: Decoded | null): void {
  cache.delete(key);
  cache.set(key, d);
  while (cache.size > MAX_CACHE) cache.delete(cache.keys().next().value as string);
}

async function decodePng(bytes: ArrayBuffer): Promise<Uint8ClampedArray> {
  const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }), { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  const canvas = new OffscreenCanvas(N, N);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('no 2D canvas');
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return ctx.getImageData(0, 0, N, N, { colorSpace: 'srgb' }).data;
}

async function load(key: string, spec: ValueLayerSpec, z: number, x: number, y: number, signal: AbortSignal): Promise<Decoded | null> {
  const cacheKey = `${key}/${z}/${x}/${y}`;
  if (cache.has(cacheKey)) return cache.get(cacheKey)!;
  const tile = await archive(spec.archive).getZxy(z, x, y, signal);
  if (!tile) {
    remember(cacheKey, null);
    return null;
  }
  const rgba = await decodePng(tile.data);
  let values: Float32Array;
  // Terrarium (current archives) or rg16 (archives written before 0.2).
  if (isValueEncoding(spec.encoding)) values = decodeValueTile(rgba, spec.encoding);
  else values = classValues(rgba);
  const d = { values };
  remember(cacheKey, d);
  return d;
}

function colourise(spec: ValueLayerSpec, d: Decoded): ImageData {
  const out = new ImageData(N, N);
  if (spec.encoding.type === 'class8') {
    out.data.set(colourClasses(d.values, spec.classes ?? []));
    return out;
  }
  const { lut, min, max } = spec.style!();
  out.data.set(colourValues(d.values, lut, min, max));
  return out;
}

/** Register the `gdv` protocol with MapLibre (once). */
export function installValueProtocol(): void {
  addProtocol('gdv', async (params, abort) => {
    const m = /^gdv:\/\/([^/]+)\/(\d+)\/(\d+)\/(\d+)/.exec(params.url);
    if (!m) throw new Error(`bad tile URL ${params.url}`);
    const key = decodeURIComponent(m[1]!);
    const spec = layers.get(key);
    if (!spec) throw new Error(`unknown layer ${key}`);
    const d = await load(key, spec, Number(m[2]), Number(m[3]), Number(m[4]), abort.signal);
    if (!d) {
      transparent ??= createImageBitmap(new ImageData(N, N));
      return { data: await transparent };
    }
    return { data: await createImageBitmap(colourise(spec, d)) };
  });
}

/**
 * The decoded value under (lon, lat) at the finest zoom ≤ `zoom` already loaded for the layer:
 * { value, z } or null. NaN value = nodata.
 */
export function valueUnder(key: string, lon: number, lat: number, zoom: number): { value: number; z: number } | null {
  const spec = layers.get(key);
  if (!spec) return null;
  const mx = (lon + 180) / 360;
  const s = Math.sin((Math.max(-85.0511, Math.min(85.0511, lat)) * Math.PI) / 180);
  const my = 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI);
  for (let z = Math.min(spec.maxzoom, Math.floor(zoom)); z >= spec.minzoom; z--) {
    const n = 2 ** z;
    const gx = mx * n * N;
    const gy = my * n * N;
    const tx = Math.floor(gx / N);
    const ty = Math.floor(gy / N);
    const d = cache.get(`${key}/${z}/${tx}/${ty}`);
    if (d === undefined) continue;
    if (d === null) return { value: NaN, z };
    const i = Math.floor(gy - ty * N) * N + Math.floor(gx - tx * N);
    return { value: d.values[i]!, z };
  }
  return null;
}
