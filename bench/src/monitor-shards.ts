/**
 * `npm run bench -- monitor-shards [--size=3072] [--shard-size=1024]`
 *
 * Monitoring at regional scale (issue 13): a region on the shard grid recomputes only the shards
 * that new imagery touches. In one process, on one machine:
 *
 * - the region's first run (a synthetic `--size`² scene in a static STAC catalog, demo model,
 *   `--shard-size` shards): every shard computed — the reference;
 * - a new scene over the core of one tile inside one shard (the part no other tile overlaps), then
 *   the next scheduled run: planning (the new scenes, then the region), that shard predicted,
 *   written, compared with its previous result, the current map rewritten.
 *
 * The ratio (first run / incremental run) is printed beside the tiles each run predicted (the bound
 * it can approach: a shard's tiles include those straddling its border, so small shards cost more
 * than their share) and the shard counts.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { rectangleAoi, writeSyntheticScene } from '@geo-dino/chm';
import { ManualClock, MonitorStore, addRegion, createExecutor, monitorPaths, runRegionNow } from '@geo-dino/monitor';
import type { BenchModule, BenchReport } from './report.js';

function arg(args: readonly string[], name: string): string | undefined {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit?.slice(name.length + 3);
}

const GSD = 0.6;

/** A static STAC catalog of the scenes written so far (one item per scene, asset `visual`). */
async function writeCatalog(dir: string, scenes: { id: string; datetime: string; file: string; epsg: number; transform: number[]; width: number; height: number }[]): Promise<string> {
  await mkdir(join(dir, 'items'), { recursive: true });
  for (const s of scenes) {
    const fp = rectangleAoi(s.epsg, s.transform, s.width, s.height, 0, s.id);
    await writeFile(
      join(dir, 'items', `${s.id}.json`),
      JSON.stringify({
        type: 'Feature',
        stac_version: '1.0.0',
        stac_extensions: ['https://stac-extensions.github.io/projection/v1.1.0/schema.json'],
        id: s.id,
        geometry: { type: 'MultiPolygon', coordinates: fp.geometry },
        bbox: fp.bbox,
        properties: { datetime: s.datetime, gsd: GSD, 'proj:epsg': s.epsg },
        links: [{ rel: 'root', href: '../catalog.json', type: 'application/json' }],
        assets: { visual: { href: `../${s.file}`, type: 'image/tiff; application=geotiff; profile=cloud-optimized', roles: ['visual'] } },
      }),
    );
  }
  const catalog = join(dir, 'catalog.json');
  await writeFile(
    catalog,
    JSON.stringify({
      type: 'Catalog',
      stac_version: '1.0.0',
      id: 'bench-imagery',
      description: 'synthetic scenes (monitor-shards benchmark)',
      links: [{ rel: 'root', href: './catalog.json', type: 'application/json' }, ...scenes.map((s) => ({ rel: 'item', href: `./items/${s.id}.json`, type: 'application/geo+json' }))],
    }),
  );
  return catalog;
}

export const monitorShardsBench: BenchModule = {
  description: 'a monitored region on the shard grid: incremental run (new scene touching 1 of N shards) vs the full first run',
  async run(args): Promise<BenchReport> {
    const size = Number(arg(args, 'size') ?? 3072);
    const shardSize = Number(arg(args, 'shard-size') ?? 1024);
    const root = await mkdtemp(join(tmpdir(), 'geo-dino-bench-monitor-shards-'));
    const home = join(root, 'home');
    const env = { ...process.env, GEO_DINO_HOME: home };
    const paths = monitorPaths(home);
    const store = MonitorStore.open(paths.store);
    try {
      const imagery = join(root, 'imagery');
      await mkdir(imagery, { recursive: true });
      const base = await writeSyntheticScene(join(imagery, 'base.tif'), { size, seed: 1 });
      const scenes = [{ id: 'base', datetime: '2024-06-01T08:00:00Z', file: 'base.tif', epsg: base.epsg, transform: base.transform, width: size, height: size }];
      const catalog = await writeCatalog(imagery, scenes);
      const aoi = rectangleAoi(base.epsg, base.transform, size, size, 50, 'region');
      const aoiPath = join(root, 'aoi.geojson');
      await writeFile(aoiPath, JSON.stringify({ type: 'MultiPolygon', coordinates: aoi.geometry }));
      const clock = new ManualClock('2025-01-06T03:00:00Z');
      await addRegion(store, paths, { name: 'bench', aoi: aoiPath, schedule: '0 3 * * 1', imagery: catalog, model: 'demo', shardSize }, { env, clock });
      const execute = createExecutor({ store, paths, clock, env, webTiles: false });

      let t = performance.now();
      const first = await runRegionNow('bench', { store, paths, execute, clock });
      const fullSeconds = (performance.now() - t) / 1000;
      if (first.status !== 'succeeded') throw new Error(`first run ${first.status}: ${first.errorMessage ?? ''}`);
      const shards = store.shardResults(first.seq);

      // A tile inside one shard and the AOI; the new scene covers its core.
      const run = JSON.parse(await readFile(join(first.dir, 'run.json'), 'utf8')) as { zones: { transform: number[]; width: number; height: number }[]; tiling: { tileSize: number; stride: number } };
      const z = run.zones[0]!;
      const { tileSize: T, stride } = run.tiling;
      const gx = z.transform[0]!;
      const gy = z.transform[3]!;
      const inset = 50 * GSD;
      const aoiBox = [base.transform[0] + inset, base.transform[3] - size * GSD + inset, base.transform[0] + size * GSD - inset, base.transform[3] - inset];
      let origin: [number, number] | null = null;
      const m = 12;
      for (let i = 0; !origin && i * stride + T <= z.height; i++) {
        for (let j = 0; !origin && j * stride + T <= z.width; j++) {
          const box = [gx + j * stride * GSD, gy - (i * stride + T) * GSD, gx + (j * stride + T) * GSD, gy - i * stride * GSD];
          const k = (T - stride) * GSD;
          const inAoi = box[0]! + k >= aoiBox[0]! && box[1]! + k >= aoiBox[1]! && box[2]! - k <= aoiBox[2]! && box[3]! - k <= aoiBox[3]!;
          if (inAoi && shards.some((r) => box[0]! >= r.bounds[0] && box[1]! >= r.bounds[1] && box[2]! <= r.bounds[2] && box[3]! <= r.bounds[3])) {
            origin = [gx + (j * stride + (T - stride) + m) * GSD, gy - (i * stride + (T - stride) + m) * GSD];
          }
        }
      }
      if (!origin) throw new Error(`no tile lies inside one shard: use a larger --size or --shard-size (size ${size}, shards ${shardSize})`);
      const coreSize = 2 * stride - T - 2 * m;
      const fresh = await writeSyntheticScene(join(imagery, 'new.tif'), { size: coreSize, seed: 2, origin });
      await writeCatalog(imagery, [...scenes, { id: 'new', datetime: '2025-06-01T08:00:00Z', file: 'new.tif', epsg: fresh.epsg, transform: fresh.transform, width: coreSize, height: coreSize }]);

      clock.set('2025-06-09T03:00:00Z');
      t = performance.now();
      const second = await runRegionNow('bench', { store, paths, execute, clock });
      const incSeconds = (performance.now() - t) / 1000;
      if (second.status !== 'succeeded') throw new Error(`incremental run ${second.status}: ${second.errorMessage ?? ''}`);
      const recomputed = store.shardResults(second.seq).length;
      const predicted = async (dir: string): Promise<number> => {
        const r = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as { tiles: { predicted: number; empty: number } };
        return r.tiles.predicted + r.tiles.empty;
      };
      const tilesFirst = await predicted(first.dir);
      const tilesInc = await predicted(second.dir);
      return {
        name: 'monitor-shards',
        context: { size: `${size}²`, shardSize, tileSize: T, shards: shards.length, recomputed, tilesFirst, tilesIncremental: tilesInc, model: 'demo', cpus: cpus().length },
        rows: [
          {
            metric: `incremental run (new scene touching ${recomputed} of ${shards.length} shards)`,
            value: incSeconds,
            unit: 's',
            reference: { name: `first run (all ${shards.length} shards)`, value: fullSeconds },
            better: 'lower',
            note: `tiles predicted ${tilesFirst} vs ${tilesInc} (≈ ${(tilesFirst / Math.max(1, tilesInc)).toFixed(1)}×: a shard's tiles include those straddling its border); shards ${shards.length} vs ${recomputed}`,
          },
        ],
      };
    } finally {
      store.close();
      await rm(root, { recursive: true, force: true });
    }
  },
};
