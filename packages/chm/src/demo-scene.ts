/**
 * The demo scene: a synthetic 0.6 m RGB "satellite image" of forest that geo-dino draws itself, so
 * `geo-dino chm --model demo` runs end to end on a fresh machine with no imagery and no network.
 *
 * What it draws (deterministic from a seed): soil and grass with noise; tree crowns as shaded
 * discs (sunlit side brighter, a shadow cast to the north-west) whose density and size vary over
 * the scene (closed forest, open woodland, a clearing); a dirt road and a meandering river. It is
 * georeferenced in WGS 84 / UTM zone 36N near Kakamega forest (Kenya), written as a COG with the
 * tiler's streaming COG writer, block row by block row (crowns are bucketed by row, so memory is
 * one block row whatever the size). The scene is labelled DEMO in its metadata.
 */
import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { GEO_DINO_VERSION, ensureDir, geoDinoHome, silentLogger, type Logger } from '@geo-dino/core';
import { parseAoi, type Aoi } from '@geo-dino/geometry';
import { Rng } from '@geo-dino/model';
import { createCogWriter, crsFromEpsg, openRaster, transformBetween, WGS84 } from '@geo-dino/tiling';

export interface SceneOptions {
  /** Pixels on each side (default 2048). */
  size?: number;
  seed?: number;
  /** Upper-left corner in EPSG:32636 metres (multiples of the pixel size keep grids aligned). */
  origin?: [number, number];
  /** Pixel size in metres (default 0.6). */
  gsd?: number;
  log?: Logger;
}

export const DEMO_SCENE_EPSG = 32636;
export const DEMO_SCENE_ORIGIN: [number, number] = [698_400, 32_400];
export const DEMO_SCENE_SIZE = 2048;
export const DEMO_SCENE_SEED = 0;
/** Acquisition time recorded for the synthetic scene (it is not a real acquisition). */
export const DEMO_SCENE_DATETIME = '2025-01-15T08:00:00Z';

interface Crown {
  x: number;
  y: number;
  r: number;
  tone: number;
}

/** Smooth value noise in [0, 1) from integer lattice hashes, bilinearly interpolated. */
function valueNoise(seed: number, x: number, y: number, scale: number): number {
  const fx = x / scale;
  const fy = y / scale;
  const x0 = Math.floor(fx);
  const y0 = Math.floor(fy);
  const tx = fx - x0;
  const ty = fy - y0;
  const h = (i: number, j: number): number => {
    let v = Math.imul(i, 374761393) + Math.imul(j, 668265263) + Math.imul(seed, 1442695041);
    v = Math.imul(v ^ (v >>> 13), 1274126177);
    return ((v ^ (v >>> 16)) >>> 0) / 4294967296;
  };
  const sx = tx * tx * (3 - 2 * tx);
  const sy = ty * ty * (3 - 2 * ty);
  const a = h(x0, y0) + (h(x0 + 1, y0) - h(x0, y0)) * sx;
  const b = h(x0, y0 + 1) + (h(x0 + 1, y0 + 1) - h(x0, y0 + 1)) * sx;
  return a + (b - a) * sy;
}

/** Tree density (0..1) at a pixel: closed forest, open woodland, a clearing. */
function density(seed: number, x: number, y: number, size: number): number {
  const n = 0.65 * valueNoise(seed + 11, x, y, size / 3) + 0.35 * valueNoise(seed + 12, x, y, size / 9);
  const cx = x - size * 0.68;
  const cy = y - size * 0.3;
  const clearing = Math.hypot(cx, cy) < size * 0.09 ? 0 : 1;
  return Math.max(0, Math.min(1, (n - 0.25) * 1.9)) * clearing;
}

/** River centre line x for a row, and the road's row band. */
function riverX(y: number, size: number): number {
  return size * 0.22 + size * 0.05 * Math.sin(y / (size / 5)) + size * 0.02 * Math.sin(y / (size / 17));
}

function makeCrowns(rng: Rng, seed: number, size: number, gsd: number): Crown[][] {
  // Bucket crowns by the block row of their top edge; a crown is at most 16 m across.
  const rows: Crown[][] = Array.from({ length: Math.ceil(size / 64) + 1 }, () => []);
  const attempts = Math.round((size * size * gsd * gsd) / 9);
  for (let i = 0; i < attempts; i++) {
    const x = rng.uniform() * size;
    const y = rng.uniform() * size;
    if (rng.uniform() > density(seed, x, y, size)) continue;
    if (Math.abs(x - riverX(y, size)) < 14) continue;
    const r = (1.5 + rng.uniform() * rng.uniform() * 6.5) / gsd;
    rows[Math.max(0, Math.floor((y - r) / 64))]!.push({ x, y, r, tone: rng.uniform() });
  }
  return rows;
}

/**
 * Write a synthetic forest scene as an RGB uint8 COG (see the module comment). The same options
 * always give the same pixels.
 */
export async function writeSyntheticScene(path: string, options: SceneOptions = {}): Promise<{ path: string; width: number; height: number; transform: [number, number, number, number, number, number]; epsg: number }> {
  const size = options.size ?? DEMO_SCENE_SIZE;
  const seed = options.seed ?? DEMO_SCENE_SEED;
  const gsd = options.gsd ?? 0.6;
  const [ox, oy] = options.origin ?? DEMO_SCENE_ORIGIN;
  const B = 512;
  const rng = new Rng(seed * 7919 + 17);
  const crowns = makeCrowns(rng, seed, size, gsd);
  const transform: [number, number, number, number, number, number] = [ox, gsd, 0, oy, 0, -gsd];
  const writer = await createCogWriter(path, {
    width: size,
    height: size,
    bands: 3,
    dtype: 'uint8',
    blockSize: B,
    crs: crsFromEpsg(DEMO_SCENE_EPSG),
    transform,
    colorInterp: ['red', 'green', 'blue'],
    metadata: {
      GEO_DINO_DEMO: 'YES',
      GEO_DINO_SCENE: `synthetic forest scene (seed ${seed}), not real imagery`,
      ACQUISITIONDATETIME: DEMO_SCENE_DATETIME,
      TIFFTAG_SOFTWARE: `geo-dino ${GEO_DINO_VERSION}`,
    },
    ...(options.log ? { log: options.log } : {}),
  });
  try {
    const across = Math.ceil(size / B);
    for (let br = 0; br * B < size; br++) {
      const y0 = br * B;
      const rows = Math.min(B, size - y0);
      const W = size;
      // Ground: soil/grass mix with two scales of noise; the river and the road.
      const r = new Float32Array(W * rows);
      const g = new Float32Array(W * rows);
      const b = new Float32Array(W * rows);
      const shade = new Float32Array(W * rows).fill(1);
      for (let j = 0; j < rows; j++) {
        const y = y0 + j;
        const rx = riverX(y, size);
        for (let x = 0; x < W; x++) {
          const i = j * W + x;
          const n = valueNoise(seed + 1, x, y, 24) * 0.6 + valueNoise(seed + 2, x, y, 5) * 0.4;
          const dry = valueNoise(seed + 3, x, y, size / 6);
          r[i] = 95 + 60 * dry + 30 * n;
          g[i] = 100 + 25 * dry + 30 * n;
          b[i] = 60 + 20 * dry + 15 * n;
          const dr = Math.abs(x - rx);
          if (dr < 9) {
            r[i] = 40 + 8 * n;
            g[i] = 62 + 10 * n;
            b[i] = 58 + 8 * n;
          } else if (dr < 12) {
            r[i] = 80;
            g[i] = 90;
            b[i] = 60;
          }
          const road = Math.abs(y - (size * 0.82 - 0.18 * x));
          if (road < 4) {
            r[i] = 170 + 20 * n;
            g[i] = 140 + 15 * n;
            b[i] = 105 + 10 * n;
          }
        }
      }
      // Crowns touching this block row (bucketed by their top edge, 64-pixel buckets).
      const first = Math.max(0, Math.floor((y0 - 64) / 64) - 1);
      const last = Math.min(crowns.length - 1, Math.floor((y0 + rows) / 64));
      for (let k = first; k <= last; k++) {
        for (const c of crowns[k]!) {
          // Shadow: offset towards the north-west (sun from the south-east), drawn first.
          const sx = c.x - c.r * 0.5;
          const sy = c.y - c.r * 0.5;
          const ya = Math.max(y0, Math.floor(Math.min(c.y, sy) - c.r));
          const yb = Math.min(y0 + rows - 1, Math.ceil(Math.max(c.y, sy) + c.r));
          const xa = Math.max(0, Math.floor(Math.min(c.x, sx) - c.r));
          const xb = Math.min(W - 1, Math.ceil(Math.max(c.x, sx) + c.r));
          for (let y = ya; y <= yb; y++) {
            for (let x = xa; x <= xb; x++) {
              const i = (y - y0) * W + x;
              if (Math.hypot(x - sx, y - sy) < c.r) shade[i] = Math.min(shade[i]!, 0.55);
            }
          }
          for (let y = ya; y <= yb; y++) {
            for (let x = xa; x <= xb; x++) {
              const dx = x - c.x;
              const dy = y - c.y;
              const d = Math.hypot(dx, dy) / c.r;
              if (d >= 1) continue;
              const i = (y - y0) * W + x;
              // Lambert-like shading of a dome lit from the south-east, with leaf texture.
              const nz = Math.sqrt(1 - d * d);
              const lit = 0.55 + 0.45 * Math.max(0, (0.45 * dx + 0.45 * dy) / c.r + 0.75 * nz);
              const leaf = 0.85 + 0.3 * valueNoise(seed + 5, x, y, 1.7);
              const k2 = lit * leaf;
              r[i] = (28 + 22 * c.tone) * k2;
              g[i] = (62 + 38 * c.tone) * k2;
              b[i] = (30 + 14 * c.tone) * k2;
              shade[i] = 1;
            }
          }
        }
      }
      for (let col = 0; col < across; col++) {
        const planes = [new Uint8Array(B * B), new Uint8Array(B * B), new Uint8Array(B * B)];
        const x0 = col * B;
        const cols = Math.min(B, W - x0);
        for (let j = 0; j < rows; j++) {
          for (let i = 0; i < cols; i++) {
            const s = j * W + x0 + i;
            const d = j * B + i;
            const sh = shade[s]!;
            planes[0]![d] = Math.max(0, Math.min(255, Math.round(r[s]! * sh)));
            planes[1]![d] = Math.max(0, Math.min(255, Math.round(g[s]! * sh)));
            planes[2]![d] = Math.max(0, Math.min(255, Math.round(b[s]! * sh)));
          }
        }
        await writer.writeBlock(col, br, planes);
      }
    }
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return { path, width: size, height: size, transform, epsg: DEMO_SCENE_EPSG };
}

/**
 * A lon/lat AOI covering a north-up grid rectangle of an EPSG CRS, inset by `insetPx` pixels
 * (a fraction of a pixel keeps the grid geo-dino derives from it identical to the rectangle's).
 */
export function rectangleAoi(epsg: number, transform: readonly number[], width: number, height: number, insetPx: number, source: string): Aoi {
  const t = transformBetween(crsFromEpsg(epsg), WGS84, source);
  const gsd = transform[1]!;
  const x0 = transform[0]! + insetPx * gsd;
  const x1 = transform[0]! + (width - insetPx) * gsd;
  const y0 = transform[3]! - insetPx * gsd;
  const y1 = transform[3]! - (height - insetPx) * gsd;
  const ring: [number, number][] = [];
  const n = 8;
  const edge = (ax: number, ay: number, bx: number, by: number): void => {
    for (let k = 0; k < n; k++) ring.push(t.forward(ax + ((bx - ax) * k) / n, ay + ((by - ay) * k) / n));
  };
  edge(x0, y0, x0, y1);
  edge(x0, y1, x1, y1);
  edge(x1, y1, x1, y0);
  edge(x1, y0, x0, y0);
  ring.push(ring[0]!);
  return parseAoi({ type: 'Polygon', coordinates: [ring] }, source);
}

export interface DemoScene {
  /** The COG (under $GEO_DINO_HOME/demo). */
  path: string;
  /** The scene's extent inset by 16 pixels, as the default AOI of a demo run. */
  aoi: Aoi;
  id: string;
  datetime: string;
}

/** Where the demo scene is cached. */
export function demoScenePath(env: NodeJS.ProcessEnv = process.env): string {
  return join(geoDinoHome(env), 'demo', `demo-scene-v1-seed${DEMO_SCENE_SEED}-${DEMO_SCENE_SIZE}.tif`);
}

/** The demo scene, drawn and cached on first use (a second or two). */
export async function ensureDemoScene(options: { env?: NodeJS.ProcessEnv; log?: Logger } = {}): Promise<DemoScene> {
  const log = options.log ?? silentLogger();
  const path = demoScenePath(options.env);
  const exists = await stat(path).then((s) => s.isFile()).catch(() => false);
  let ok = exists;
  if (exists) {
    // A damaged cache file is redrawn rather than trusted.
    try {
      const r = await openRaster(path, { log });
      ok = r.info.width === DEMO_SCENE_SIZE && r.info.height === DEMO_SCENE_SIZE && r.info.bandCount === 3;
      await r.close();
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    log.info({ path }, 'drawing the synthetic demo scene (first run only)');
    await ensureDir(join(path, '..'));
    await writeSyntheticScene(path, { log });
  }
  const transform = [DEMO_SCENE_ORIGIN[0], 0.6, 0, DEMO_SCENE_ORIGIN[1], 0, -0.6];
  return {
    path,
    aoi: rectangleAoi(DEMO_SCENE_EPSG, transform, DEMO_SCENE_SIZE, DEMO_SCENE_SIZE, 16, 'demo scene'),
    id: `geo-dino-demo-scene-seed${DEMO_SCENE_SEED}`,
    datetime: DEMO_SCENE_DATETIME,
  };
}
