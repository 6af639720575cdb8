/**
 * `npm run bench -- seams [--scene=real|synthetic] [--size=N] [--reps=N] [--keep=DIR]`
 *
 * Seams between source scenes (issue 20). Two scenes cut from one 0.6 m base scene, `--size` px
 * square: `real` (the default) is ../shared/data/rasterio/cogeo.tif warped by gdalwarp to a 0.6 m
 * UTM grid (as the scene-seams test does; size ≤ 600, default 576), `synthetic` the demo scene's
 * generator (default 1024). A = the west 62.5 % as it is, B = the east 62.5 % as another
 * acquisition (gamma 0.6, warmer colour balance, shifted 1.2 m east and 0.6 m south); they
 * overlap over a quarter of the width. 256² tiles, 64 px overlap.
 *
 * The model is the demo's architecture with the `local` fixture weights (`createDemoModel(dir,
 * { local: true })`, built by `buildModel`, run through onnxruntime): the demo's own random
 * weights mix the whole tile through attention, so their heights hardly step at a radiometric
 * edge and the step figures would say nothing; the fixture's heights respond to local radiometry
 * (colour balance above all) as a trained model's do. On the synthetic scene, whose colours are
 * not a real acquisition's, the fixture's plain mosaic hardly steps either.
 *
 * Rows:
 * 1. End-to-end time of `runChm` with the default `--scene-feather` against `--scene-feather 0`
 *    (the plain priority mosaic), interleaved `reps` times, medians — the cost of feathering.
 * 2. Extra tiles inferred (model inputs beyond one per tile) against the run's tiles.
 * 3. The step statistic across the seamline (per 32-row segment |mean of 3 columns right − mean
 *    of 3 columns left|, averaged) of the feathered map, against the same statistic on columns
 *    inside one scene (the background); of the plain mosaic (`--scene-feather 0`) at scene A's
 *    edge, where it switches scenes; and of a hard switch at the seamline between the two scenes'
 *    own predictions (each scene alone, padded with nodata to the same grid).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backgroundStep, rectangleAoi, runChm, seamStep, writeSyntheticScene } from '@geo-dino/chm';
import { createDemoModel } from '@geo-dino/model';
import { createCogWriter, openRaster } from '@geo-dino/tiling';
import type { BenchModule, BenchReport } from './report.js';

const SHARED = resolve(process.env['GEO_DINO_SHARED_DATA'] ?? join(fileURLToPath(new URL('../..', import.meta.url)), '..', 'shared', 'data'));

/** The real base scene: cogeo.tif warped by gdalwarp to 0.6 m UTM (EPSG:32652), an S × S window from (100, 100), RGB. */
function realBase(work: string, S: number): { path: string; transform: [number, number, number, number, number, number]; epsg: number } {
  if (!(S > 0 && S <= 600)) throw new Error(`--size=${S}: the real scene gives at most 600 px`);
  const utm = join(work, 'utm.tif');
  const path = join(work, 'base.tif');
  const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] });
  run('gdalwarp', ['-q', '-overwrite', '-t_srs', 'EPSG:32652', '-tr', '0.6', '0.6', '-tap', '-r', 'bilinear', join(SHARED, 'rasterio', 'cogeo.tif'), utm]);
  run('gdal_translate', ['-q', '-srcwin', '100', '100', String(S), String(S), '-b', '1', '-b', '2', '-b', '3', '-mask', 'none', utm, path]);
  const gt = (JSON.parse(run('gdalinfo', ['-json', path])) as { geoTransform: number[] }).geoTransform;
  return { path, transform: [gt[0]!, gt[1]!, gt[2]!, gt[3]!, gt[4]!, gt[5]!], epsg: 32652 };
}

function arg(args: readonly string[], name: string): string | undefined {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit?.slice(name.length + 3);
}

const NODATA = -9999;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}


async function readHeights(path: string): Promise<{ h: Float32Array; width: number; height: number }> {
  const r = await openRaster(path);
  try {
    const { width, height } = r.info;
    const d = await r.read({ x: 0, y: 0, width, height }, { bands: [0] });
    return { h: d.bands[0] as Float32Array, width, height };
  } finally {
    await r.close();
  }
}

/** Write a 3-band uint8 GeoTIFF of `width` × `height` whose pixel (x, y) band c is `px(c, x, y)` (null: nodata 0). */
async function writeScene(path: string, width: number, height: number, epsg: number, transform: [number, number, number, number, number, number], px: (c: number, x: number, y: number) => number | null, nodata: boolean): Promise<void> {
  const B = 256;
  const w = await createCogWriter(path, { width, height, bands: 3, dtype: 'uint8', blockSize: B, crs: `EPSG:${epsg}`, transform, ...(nodata ? { nodata: 0 } : {}), overviews: 0 });
  for (let by = 0; by * B < height; by++) {
    for (let bx = 0; bx * B < width; bx++) {
      const planes = [0, 1, 2].map(() => new Uint8Array(B * B));
      for (let y = 0; y < B && by * B + y < height; y++) {
        for (let x = 0; x < B && bx * B + x < width; x++) {
          for (let c = 0; c < 3; c++) {
            const v = px(c, bx * B + x, by * B + y);
            planes[c]![y * B + x] = v === null ? 0 : Math.max(1, Math.min(255, Math.round(v)));
          }
        }
      }
      await w.writeBlock(bx, by, planes);
    }
  }
  await w.close();
}

export const seamsBench: BenchModule = {
  description: 'scene feathering across seamlines: step statistic, extra tiles inferred, end-to-end time vs --scene-feather 0',
  async run(args): Promise<BenchReport> {
    const scene = arg(args, 'scene') ?? 'real';
    if (scene !== 'real' && scene !== 'synthetic') throw new Error(`--scene=${scene}: real or synthetic`);
    const S = Number(arg(args, 'size') ?? (scene === 'real' ? 576 : 1024));
    const reps = Math.max(1, Number(arg(args, 'reps') ?? 2));
    const keep = arg(args, 'keep');
    const work = keep ?? (await mkdtemp(join(tmpdir(), 'geo-dino-bench-seams-')));
    const log = (m: string): boolean => process.stderr.write(`  ${m}\n`);
    try {
      const env = { ...process.env, GEO_DINO_HOME: join(work, 'home') };
      const model = join(work, 'local-model');
      await createDemoModel(model, { local: true, force: true });
      const base = scene === 'real' ? realBase(work, S) : await writeSyntheticScene(join(work, 'base.tif'), { size: S, seed: 5 });
      const r = await openRaster(base.path);
      const rgb = (await r.read({ x: 0, y: 0, width: S, height: S })).bands as Uint8Array[];
      await r.close();
      const aEnd = Math.round(S * 0.625);
      const bStart = S - aEnd;
      const [sx, sy] = [2, 1];
      const t = base.transform;
      const at = (x0: number, y0: number): [number, number, number, number, number, number] => [t[0] + x0 * t[1], t[1], 0, t[3] + y0 * t[5], 0, t[5]];
      const value = (c: number, x: number, y: number): number => rgb[c]![y * S + x]!;
      const balance = [1.15, 1, 0.8];
      const other = (c: number, x: number, y: number): number => 255 * (value(c, x, y) / 255) ** 0.6 * balance[c]!;
      log('writing the scenes…');
      await writeScene(join(work, 'a.tif'), aEnd, S, base.epsg, at(0, 0), (c, x, y) => value(c, x, y), false);
      await writeScene(join(work, 'b.tif'), S - bStart, S, base.epsg, at(bStart + sx, sy), (c, x, y) => other(c, bStart + x, y), false);
      await writeScene(join(work, 'alone-a.tif'), S, S, base.epsg, at(0, 0), (c, x, y) => (x < aEnd ? value(c, x, y) : null), true);
      await writeScene(join(work, 'alone-b.tif'), S, S, base.epsg, at(sx, sy), (c, x, y) => (x >= bStart ? other(c, x, y) : null), true);
      const aoi = rectangleAoi(base.epsg, base.transform, S, S, 8, 'seams bench');
      const common = { model, aoi, tileSize: 256, overlap: 64, webTiles: false, force: true, device: 'cpu' as const, env };

      const times: Record<string, number[]> = { feathered: [], off: [] };
      let info: { px: number; featheredTiles: number; extraTileInferences: number; lines: { points: [number, number][]; featherPx: number }[] } | null = null;
      let tiles = 0;
      let gridX0 = 0;
      for (let rep = 0; rep < reps; rep++) {
        for (const name of ['off', 'feathered'] as const) {
          log(`[${rep + 1}/${reps}] ${name}…`);
          const t0 = performance.now();
          const res = await runChm({ ...common, imagery: [join(work, 'a.tif'), join(work, 'b.tif')], out: join(work, `run-${name}`), ...(name === 'off' ? { sceneFeather: 0 } : {}) });
          times[name]!.push((performance.now() - t0) / 1000);
          if (name === 'feathered') {
            info = res.run['sceneFeather'] as NonNullable<typeof info>;
            tiles = res.tiles.total;
            gridX0 = (res.run['grid'] as { transform: number[] }).transform[0]!;
          }
        }
      }
      log('with --harmonise…');
      const th = performance.now();
      const hres = await runChm({ ...common, imagery: [join(work, 'a.tif'), join(work, 'b.tif')], out: join(work, 'run-harmonised'), harmonise: true });
      const harmoniseSeconds = (performance.now() - th) / 1000;
      const fit = (hres.run['sceneFeather'] as { harmonised?: { gain: number[]; offset: number[] }[] }).harmonised?.[0];
      if (!fit) throw new Error('the harmonised run recorded no fit');
      // Scene B alone as the harmonised run saw it (the fitted gain and offset applied here).
      await writeScene(join(work, 'alone-bh.tif'), S, S, base.epsg, at(sx, sy), (c, x, y) => (x >= bStart ? Math.max(0, Math.min(255, Math.round(Math.max(1, Math.min(255, Math.round(other(c, x, y)))) * fit.gain[c]! + fit.offset[c]!))) : null), true);
      log('each scene alone…');
      for (const s of ['a', 'b', 'bh']) await runChm({ ...common, imagery: [join(work, `alone-${s}.tif`)], out: join(work, `run-alone-${s}`) });
      const f = await readHeights(join(work, 'run-feathered', 'chm.tif'));
      const o = await readHeights(join(work, 'run-off', 'chm.tif'));
      const ha = await readHeights(join(work, 'run-alone-a', 'chm.tif'));
      const hb = await readHeights(join(work, 'run-alone-b', 'chm.tif'));
      const hbh = await readHeights(join(work, 'run-alone-bh', 'chm.tif'));
      const { width: W, height: H } = f;
      const pts = info!.lines[0]!.points;
      const seamX = (y: number): number => {
        const yc = y + 0.5;
        let k = 1;
        while (k < pts.length - 1 && pts[k]![1] < yc) k++;
        const [p, q] = [pts[k - 1]!, pts[k]!];
        const u = Math.max(0, Math.min(1, (yc - p[1]) / (q[1] - p[1])));
        return p[0] * (1 - u) + q[0] * u;
      };
      const hard = new Float32Array(W * H);
      const hardH = new Float32Array(W * H);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          hard[y * W + x] = x + 0.5 < seamX(y) ? ha.h[y * W + x]! : hb.h[y * W + x]!;
          hardH[y * W + x] = x + 0.5 < seamX(y) ? ha.h[y * W + x]! : hbh.h[y * W + x]!;
        }
      }
      // The scenes' own predictions on their overlap: mean |A − B|, without and with harmonisation.
      let dAB = 0;
      let dABh = 0;
      let nAB = 0;
      for (let i = 0; i < W * H; i++) {
        if (ha.h[i] === NODATA || hb.h[i] === NODATA || hbh.h[i] === NODATA) continue;
        dAB += Math.abs(ha.h[i]! - hb.h[i]!);
        dABh += Math.abs(ha.h[i]! - hbh.h[i]!);
        nAB++;
      }
      // Grid column of the base scene's column 0.
      const x0 = Math.round((t[0] - gridX0) / t[1]);
      const away: [number, number][] = [
        [x0 + 24, x0 + bStart + sx - 24],
        [x0 + aEnd + 24, x0 + S - 24],
      ];
      const background = (h: Float32Array | Float64Array): number => backgroundStep(h, W, H, away);
      const bg = background(f.h);
      const bgOff = background(o.h);
      const stepOff = seamStep(o.h, W, H, () => x0 + aEnd);
      const seamCol = (y: number): number => Math.round(seamX(y));
      const stepF = seamStep(f.h, W, H, seamCol);
      const stepHard = seamStep(hard, W, H, seamCol);
      const stepHardH = seamStep(hardH, W, H, seamCol);
      const tf = median(times['feathered']!);
      const to = median(times['off']!);
      return {
        name: 'seams',
        context: { scene, size: S, overlapPx: aEnd - bStart - sx, featherPx: info!.px, tiles, reps, model: 'demo architecture, local fixture weights' },
        rows: [
          { metric: 'end to end, default --scene-feather', value: tf, unit: 's', reference: { name: '--scene-feather 0 (priority mosaic)', value: to }, better: 'lower', note: 'ratio < 1: what feathering costs' },
          { metric: 'extra tiles inferred', value: tiles + info!.extraTileInferences, unit: 'model inputs', reference: { name: 'tiles of the run', value: tiles }, better: 'lower', note: `${info!.featheredTiles} tiles feathered, ${info!.extraTileInferences} extra inputs` },
          { metric: 'step across the seamline, feathered', value: stepF, unit: 'm', reference: { name: 'background (inside one scene)', value: bg }, better: 'lower', note: 'ratio ≥ 1: at or below the background' },
          { metric: "step at scene A's edge, --scene-feather 0 (plain mosaic)", value: stepOff, unit: 'm', reference: { name: 'background (inside one scene)', value: bgOff }, better: 'lower', note: 'what feathering removes' },
          { metric: "step of a hard switch between the scenes' own predictions", value: stepHard, unit: 'm', reference: { name: 'background (inside one scene)', value: bg }, better: 'lower', note: 'at the seamline' },
          { metric: 'the same with --harmonise', value: stepHardH, unit: 'm', reference: { name: 'without --harmonise', value: stepHard }, better: 'lower', note: `gain ${fit.gain.map((g) => g.toFixed(3)).join('/')}, offset ${fit.offset.map((o) => o.toFixed(1)).join('/')}` },
          { metric: "mean |A − B| of the scenes' own predictions on the overlap, --harmonise", value: dABh / nAB, unit: 'm', reference: { name: 'without --harmonise', value: dAB / nAB }, better: 'lower', note: `${nAB} px` },
          { metric: 'end to end, --harmonise', value: harmoniseSeconds, unit: 's', reference: { name: 'default --scene-feather (one run)', value: times['feathered']![times['feathered']!.length - 1]! }, better: 'lower' },
        ],
      };
    } finally {
      if (!keep) await rm(work, { recursive: true, force: true });
    }
  },
};
