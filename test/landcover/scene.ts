/**
 * A synthetic land-cover scene made by the tests: a 0.6 m RGB image (UTM 36N) partitioned into
 * Voronoi regions, each of one class drawn with its own colour *and* texture, plus the exact
 * label raster on the same grid. The classes are learnable from colour and texture, which is
 * what a linear probe on (even random-weight) backbone features can pick up:
 *
 * | value | class     | drawing                                                              |
 * |---|---|---|
 * | 10 | tree_cover   | dark green, crowns: high-contrast value noise at ~5 px, dark shadows |
 * | 30 | grassland    | yellow-green, faint fine noise                                       |
 * | 50 | built_up     | grey roofs on a 12 px street grid (dark lines)                        |
 * | 60 | bare         | tan, medium grain noise                                              |
 * | 80 | water        | dark blue, very smooth                                               |
 *
 * Regions are large (a few hundred pixels) so most pixels are far from a class boundary, where a
 * 16-pixel patch mixes classes. Deterministic from the seed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCogWriter, crsFromEpsg } from '@geo-dino/tiling';
import { Rng } from '@geo-dino/model';

export const SCENE_EPSG = 32636;
export const SCENE_ORIGIN: [number, number] = [698_400, 32_400];
export const GSD = 0.6;

export const SCENE_CLASSES = [
  { value: 10, name: 'tree_cover', color: '#006400' },
  { value: 30, name: 'grassland', color: '#ffff4c' },
  { value: 50, name: 'built_up', color: '#fa0000' },
  { value: 60, name: 'bare', color: '#b4b4b4' },
  { value: 80, name: 'water', color: '#0064c8' },
] as const;

/** Smooth value noise in [0, 1) (lattice hashes, smoothstep-interpolated). */
function noise(seed: number, x: number, y: number, scale: number): number {
  const fx = x / scale;
  const fy = y / scale;
  const x0 = Math.floor(fx);
  const y0 = Math.floor(fy);
  const h = (i: number, j: number): number => {
    let v = Math.imul(i, 374761393) + Math.imul(j, 668265263) + Math.imul(seed, 1442695041);
    v = Math.imul(v ^ (v >>> 13), 1274126177);
    return ((v ^ (v >>> 16)) >>> 0) / 4294967296;
  };
  const sx = (fx - x0) * (fx - x0) * (3 - 2 * (fx - x0));
  const sy = (fy - y0) * (fy - y0) * (3 - 2 * (fy - y0));
  const a = h(x0, y0) + (h(x0 + 1, y0) - h(x0, y0)) * sx;
  const b = h(x0, y0 + 1) + (h(x0 + 1, y0 + 1) - h(x0, y0 + 1)) * sx;
  return a + (b - a) * sy;
}

/** Classes drawn as a flat colour plus value noise: base colour, noise seed offset, grain (px), amplitude. */
const FLAT: Record<string, { rgb: [number, number, number]; seed: number; scale: number; amp: number }> = {
  grassland: { rgb: [150, 172, 82], seed: 2, scale: 2, amp: 12 },
  bare: { rgb: [172, 140, 104], seed: 4, scale: 3, amp: 36 },
  water: { rgb: [28, 58, 108], seed: 5, scale: 40, amp: 6 },
};

export interface SceneSpec {
  size: number;
  seed: number;
  /** Voronoi seeds (regions). */
  regions: number;
}

export interface Scene {
  size: number;
  /** Class value per pixel, row-major. */
  labels: Uint8Array;
  /** Planar RGB (3 × size²). */
  rgb: Uint8Array;
  transform: [number, number, number, number, number, number];
}

export function drawScene(spec: SceneSpec): Scene {
  const { size, seed } = spec;
  const rng = new Rng(seed);
  const pts = Array.from({ length: spec.regions }, (_, i) => ({ x: rng.uniform() * size, y: rng.uniform() * size, cls: i % SCENE_CLASSES.length }));
  // Shuffle class assignment so neighbouring seeds differ in a seeded way.
  for (let i = pts.length - 1; i > 0; i--) {
    const j = rng.nextU32() % (i + 1);
    const c = pts[i]!.cls;
    pts[i]!.cls = pts[j]!.cls;
    pts[j]!.cls = c;
  }
  const n = size * size;
  const labels = new Uint8Array(n);
  const rgb = new Uint8Array(3 * n);
  const clamp = (v: number): number => Math.max(0, Math.min(255, Math.round(v)));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let best = 0;
      let bd = Infinity;
      for (let k = 0; k < pts.length; k++) {
        const d = (pts[k]!.x - x) ** 2 + (pts[k]!.y - y) ** 2;
        if (d < bd) {
          bd = d;
          best = k;
        }
      }
      const cls = pts[best]!.cls;
      const i = y * size + x;
      labels[i] = SCENE_CLASSES[cls]!.value;
      let r = 0;
      let g = 0;
      let b = 0;
      switch (SCENE_CLASSES[cls]!.name) {
        case 'tree_cover': {
          const c = noise(seed + 1, x, y, 5);
          const shade = c > 0.55 ? 1.25 : c < 0.3 ? 0.45 : 0.9;
          r = 35 * shade;
          g = 80 * shade;
          b = 30 * shade;
          break;
        }
        case 'built_up': {
          const street = x % 12 < 2 || y % 12 < 2;
          const roof = 150 + (noise(seed + 3, Math.floor(x / 12), Math.floor(y / 12), 1) - 0.5) * 60;
          r = street ? 60 : roof;
          g = street ? 60 : roof - 5;
          b = street ? 65 : roof - 10;
          break;
        }
        default: {
          // Flat colour with noise of its own grain and strength.
          const t = FLAT[SCENE_CLASSES[cls]!.name]!;
          const v = (noise(seed + t.seed, x, y, t.scale) - 0.5) * t.amp;
          r = t.rgb[0] + v;
          g = t.rgb[1] + v;
          b = t.rgb[2] + v;
        }
      }
      rgb[i] = clamp(r);
      rgb[n + i] = clamp(g);
      rgb[2 * n + i] = clamp(b);
    }
  }
  const transform: Scene['transform'] = [SCENE_ORIGIN[0], GSD, 0, SCENE_ORIGIN[1], 0, -GSD];
  return { size, labels, rgb, transform };
}

async function writeBands(path: string, scene: Scene, bands: Uint8Array[], extra: { nodata?: number; colorInterp?: ('red' | 'green' | 'blue')[]; categorical?: boolean }): Promise<void> {
  const B = 256;
  const { size } = scene;
  const w = await createCogWriter(path, {
    width: size,
    height: size,
    bands: bands.length,
    dtype: 'uint8',
    blockSize: B,
    crs: crsFromEpsg(SCENE_EPSG),
    transform: scene.transform,
    ...(extra.nodata !== undefined ? { nodata: extra.nodata } : {}),
    ...(extra.colorInterp ? { colorInterp: extra.colorInterp } : {}),
    // Class rasters get mode overviews (an average of class values is no class).
    ...(extra.categorical ? { overviewResampling: 'mode' as const } : {}),
  });
  for (let by = 0; by * B < size; by++) {
    for (let bx = 0; bx * B < size; bx++) {
      const blocks = bands.map(() => new Uint8Array(B * B));
      for (let y = 0; y < B && by * B + y < size; y++) {
        for (let x = 0; x < B && bx * B + x < size; x++) {
          const i = (by * B + y) * size + bx * B + x;
          bands.forEach((band, k) => (blocks[k]![y * B + x] = band[i]!));
        }
      }
      await w.writeBlock(bx, by, blocks);
    }
  }
  await w.close();
}

/** The RGB image as a COG. */
export async function writeSceneImage(path: string, scene: Scene): Promise<void> {
  const n = scene.size * scene.size;
  await writeBands(path, scene, [scene.rgb.subarray(0, n), scene.rgb.subarray(n, 2 * n), scene.rgb.subarray(2 * n)], { colorInterp: ['red', 'green', 'blue'] });
}

/** A label raster (uint8, nodata 0) on the image's grid. */
export async function writeLabelRaster(path: string, scene: Scene, labels: Uint8Array = scene.labels): Promise<void> {
  await writeBands(path, scene, [labels], { nodata: 0, categorical: true });
}

/** A scene's files in `dir`: the image (scene.tif), its label raster (labels.tif) and the class table (classes.json). */
export async function writeSceneFiles(dir: string, scene: Scene): Promise<{ img: string; lab: string; classes: string }> {
  const img = join(dir, 'scene.tif');
  const lab = join(dir, 'labels.tif');
  await writeSceneImage(img, scene);
  await writeLabelRaster(lab, scene);
  const classes = join(dir, 'classes.json');
  writeFileSync(classes, JSON.stringify({ classes: SCENE_CLASSES }));
  return { img, lab, classes };
}
