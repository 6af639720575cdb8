/**
 * COG → PMTiles against GDAL: the finest zoom's tiles must hold what `gdalwarp` puts on the same
 * Web Mercator tiles (nearest for values and classes, bilinear for imagery), coarser zooms must be
 * the reductions of their children, and the archives must pass the reference Go CLI.
 */
import { mkdtempSync, readdirSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeValueTile,
  writeRasterTiles,
  type GeoDinoTilesetInfo,
  type RasterTilesSummary,
  type ValueEncoding,
} from '../src/index.js';
import { decodeRgba as decode, openArchive, tilesOf } from './support.js';
import { gdalJson, gdalTiles, makeFixtureRun, type FixtureRun } from '../../../test/support/fixture-run.js';
import { runPmtilesCli } from '../../../test/support/pmtiles-cli.js';
import { sharedData } from '../../../test/support/shared-data.js';

const dir = mkdtempSync(join(tmpdir(), 'gd-rtiles-'));
let run: FixtureRun;
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => {
  run = makeFixtureRun(join(dir, 'run'));
});

function verify(path: string): void {
  const r = runPmtilesCli(['verify', path]);
  expect(r.code, r.output).toBe(0);
  expect(r.output).not.toMatch(/invalid/i);
}

/** Web Mercator pixel size of the fixture's pixels, measured with GDAL, and the zoom it implies. */
function expectedMaxZoom(): number {
  const size = gdalJson(
    `
import json, sys
from osgeo import osr
a = osr.SpatialReference(); a.ImportFromEPSG(32652); a.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
b = osr.SpatialReference(); b.ImportFromEPSG(3857); b.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
t = osr.CoordinateTransformation(a, b)
gt = json.loads(sys.argv[1]); w, h = int(sys.argv[2]), int(sys.argv[3])
def p(c, r): return t.TransformPoint(gt[0] + c * gt[1], gt[3] + r * gt[5])
o, px, py = p(w / 2, h / 2), p(w / 2 + 1, h / 2), p(w / 2, h / 2 + 1)
print(json.dumps(abs((px[0]-o[0])*(py[1]-o[1]) - (px[1]-o[1])*(py[0]-o[0])) ** 0.5))
`,
    [JSON.stringify(run.geotransform), String(run.width), String(run.height)],
  ) as number;
  // The finest zoom whose pixel is no coarser than the source's (5% slack).
  let z = 0;
  while ((2 * Math.PI * 6378137) / (256 * 2 ** z) > size * 1.05) z++;
  return z;
}

describe('writeRasterTiles (canopy height)', () => {
  let summary: RasterTilesSummary;
  let path: string;
  beforeAll(async () => {
    path = join(dir, 'chm.pmtiles');
    summary = await writeRasterTiles(join(run.dir, 'chm.tif'), path, { layer: 'height', demo: true });
  });

  it('has the header, bounds and metadata a viewer needs', async () => {
    const archive = openArchive(path);
    const h = await archive.getHeader();
    expect(h.tileType).toBe(2);
    expect(h.maxZoom).toBe(expectedMaxZoom());
    expect(h.minZoom).toBe(0);
    const [w, s, e, n] = run.bbox;
    expect(h.minLon).toBeCloseTo(w, 6);
    expect(h.minLat).toBeCloseTo(s, 6);
    expect(h.maxLon).toBeCloseTo(e, 6);
    expect(h.maxLat).toBeCloseTo(n, 6);
    const meta = (await archive.getMetadata()) as { attribution: string; encoding: string; description: string; geo_dino: GeoDinoTilesetInfo };
    expect(meta.attribution).toMatch(/DEMO/);
    // Terrarium, said where generic clients look (top-level `encoding`, the description) and in geo_dino.
    expect(meta.encoding).toBe('terrarium');
    expect(meta.description).toMatch(/Terrarium: value = R\*256 \+ G \+ B\/256 - 32768/);
    expect(meta.geo_dino).toMatchObject({ layer: 'height', units: 'm', demo: true, encoding: { type: 'terrarium', mask: 'alpha' } });
    const stats = gdalJson(
      `
import json, sys
from osgeo import gdal
import numpy as np
ds = gdal.Open(sys.argv[1])
a = ds.GetRasterBand(1).ReadAsArray()
v = a[a != -9999]
print(json.dumps([float(v.min()), float(v.max())]))
`,
      [join(run.dir, 'chm.tif')],
    ) as [number, number];
    expect(meta.geo_dino.min).toBe(stats[0]);
    expect(meta.geo_dino.max).toBe(stats[1]);
    expect(summary.info.source).toMatchObject({ file: 'chm.tif', bands: [1], width: run.width, height: run.height });
    verify(path);
    const show = runPmtilesCli(['show', path]);
    expect(show.output).toMatch(/tile type: png/);
  });

  it('finest-zoom tiles hold the values GDAL warps there (nearest), to the centimetre', async () => {
    const archive = openArchive(path);
    const h = await archive.getHeader();
    const enc = summary.info.encoding as ValueEncoding;
    const finest = tilesOf(path).filter(([z]) => z === h.maxZoom);
    expect(finest.length).toBeGreaterThanOrEqual(6);
    const oracle = gdalTiles(join(run.dir, 'chm.tif'), join(dir, 'oracle-h'), 'near', [1], finest);
    let compared = 0;
    let maskDiff = 0;
    let valueDiff = 0;
    for (const [z, x, y] of finest) {
      const got = decodeValueTile(await decode((await archive.getZxy(z, x, y))!.data), enc);
      const want = oracle.get(`${z}/${x}/${y}`)!;
      for (let i = 0; i < got.length; i++) {
        const gv = !Number.isNaN(got[i]!);
        const wv = want.valid[i]! > 0;
        if (gv !== wv) maskDiff++;
        if (gv && wv) {
          compared++;
          if (Math.abs(got[i]! - want.bands[0]![i]!) > 0.005 + 1e-4) valueDiff++;
        }
      }
    }
    expect(compared).toBeGreaterThan(run.width * run.height); // finer than the source: every pixel seen
    // Pixel centres within a hair of a source pixel edge may round to the neighbour.
    expect(maskDiff / compared).toBeLessThan(0.001);
    expect(valueDiff / compared).toBeLessThan(0.001);
  });

  it('each coarser tile is the mean of its four children (valid where any child is)', async () => {
    const archive = openArchive(path);
    const enc = summary.info.encoding as ValueEncoding;
    const all = tilesOf(path);
    const have = new Set(all.map((t) => t.join('/')));
    const h = await archive.getHeader();
    let checked = 0;
    for (const [z, x, y] of all.filter(([z]) => z >= h.maxZoom - 3 && z < h.maxZoom)) {
      const parent = decodeValueTile(await decode((await archive.getZxy(z, x, y))!.data), enc);
      const kids: (Float32Array | null)[] = [];
      for (let q = 0; q < 4; q++) {
        const key = `${z + 1}/${2 * x + (q & 1)}/${2 * y + (q >> 1)}`;
        const t = have.has(key) ? await archive.getZxy(z + 1, 2 * x + (q & 1), 2 * y + (q >> 1)) : undefined;
        kids.push(t ? decodeValueTile(await decode(t.data), enc) : null);
      }
      for (let py = 0; py < 256; py++)
        for (let px = 0; px < 256; px++) {
          const q = (px >= 128 ? 1 : 0) + (py >= 128 ? 2 : 0);
          const kid = kids[q];
          const vals: number[] = [];
          if (kid) {
            const cx = (px % 128) * 2;
            const cy = (py % 128) * 2;
            for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
              const v = kid[(cy + dy) * 256 + cx + dx]!;
              if (!Number.isNaN(v)) vals.push(v);
            }
          }
          const p = parent[py * 256 + px]!;
          if (vals.length === 0) expect(Number.isNaN(p)).toBe(true);
          else {
            const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
            // children were rounded to 1 cm before this mean, the parent after its own mean
            expect(Math.abs(p - mean)).toBeLessThanOrEqual(0.0101);
          }
        }
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(3);
  });
});

describe('writeRasterTiles (other layers)', () => {
  it('uncertainty from band 2 matches GDAL', async () => {
    const path = join(dir, 'unc.pmtiles');
    const s = await writeRasterTiles(join(run.dir, 'chm.tif'), path, { layer: 'uncertainty' });
    expect(s.info.source.bands).toEqual([2]);
    const archive = openArchive(path);
    const h = await archive.getHeader();
    const finest = tilesOf(path).filter(([z]) => z === h.maxZoom).slice(0, 4);
    const oracle = gdalTiles(join(run.dir, 'chm.tif'), join(dir, 'oracle-u'), 'near', [2], finest);
    let bad = 0;
    let n = 0;
    for (const [z, x, y] of finest) {
      const got = decodeValueTile(await decode((await archive.getZxy(z, x, y))!.data), s.info.encoding as ValueEncoding);
      const want = oracle.get(`${z}/${x}/${y}`)!;
      for (let i = 0; i < got.length; i++)
        if (want.valid[i]! > 0 && !Number.isNaN(got[i]!)) {
          n++;
          if (Math.abs(got[i]! - want.bands[0]![i]!) > 0.0051) bad++;
        }
    }
    expect(n).toBeGreaterThan(10_000);
    expect(bad / n).toBeLessThan(0.002);
    verify(path);
  });

  it('imagery as WebP close to GDAL bilinear, mask in alpha', async () => {
    const path = join(dir, 'imagery.pmtiles');
    const s = await writeRasterTiles(join(run.dir, 'imagery.tif'), path);
    expect(s.layer).toBe('imagery');
    const archive = openArchive(path);
    const h = await archive.getHeader();
    expect(h.tileType).toBe(4);
    const finest = tilesOf(path).filter(([z]) => z === h.maxZoom).slice(0, 4);
    const oracle = gdalTiles(join(run.dir, 'imagery.tif'), join(dir, 'oracle-i'), 'bilinear', [1, 2, 3], finest);
    let sum = 0;
    let n = 0;
    let alphaDiff = 0;
    for (const [z, x, y] of finest) {
      const rgba = await decode((await archive.getZxy(z, x, y))!.data);
      const want = oracle.get(`${z}/${x}/${y}`)!;
      for (let i = 0; i < 65536; i++) {
        const a = rgba[i * 4 + 3]! > 0;
        const w = want.valid[i]! > 0;
        if (a !== w) alphaDiff++;
        if (a && w) for (let b = 0; b < 3; b++) (sum += Math.abs(rgba[i * 4 + b]! - want.bands[b]![i]!)), n++;
      }
    }
    expect(n).toBeGreaterThan(30_000);
    expect(sum / n).toBeLessThan(4); // lossy WebP at quality 85
    expect(alphaDiff / (n / 3)).toBeLessThan(0.01);
    verify(path);
  });

  it('land cover keeps classes exactly and its class table', async () => {
    const path = join(dir, 'landcover.pmtiles');
    const classes = [
      { value: 1, name: 'bare', color: '#d7c8a0' },
      { value: 2, name: 'low vegetation', color: '#bee678' },
      { value: 3, name: 'shrub', color: '#6eb446' },
      { value: 4, name: 'forest', color: '#146428' },
    ];
    const s = await writeRasterTiles(join(run.dir, 'landcover.tif'), path, { classes });
    expect(s.layer).toBe('landcover');
    const archive = openArchive(path);
    const meta = (await archive.getMetadata()) as { geo_dino: GeoDinoTilesetInfo };
    expect(meta.geo_dino.classes).toEqual(classes);
    expect(meta.geo_dino.encoding).toEqual({ type: 'class8', mask: 'alpha' });
    const h = await archive.getHeader();
    const finest = tilesOf(path).filter(([z]) => z === h.maxZoom).slice(0, 4);
    const oracle = gdalTiles(join(run.dir, 'landcover.tif'), join(dir, 'oracle-l'), 'near', [1], finest);
    let bad = 0;
    let n = 0;
    for (const [z, x, y] of finest) {
      const rgba = await decode((await archive.getZxy(z, x, y))!.data);
      const want = oracle.get(`${z}/${x}/${y}`)!;
      for (let i = 0; i < 65536; i++)
        if (want.valid[i]! > 0) {
          n++;
          if (rgba[i * 4 + 3] !== 255 || rgba[i * 4] !== want.bands[0]![i]) bad++;
        }
    }
    expect(n).toBeGreaterThan(10_000);
    expect(bad / n).toBeLessThan(0.002);

    // Without a table given, the palette of the file is used.
    const s2 = await writeRasterTiles(join(run.dir, 'landcover.tif'), join(dir, 'lc2.pmtiles'));
    expect(s2.info.classes?.filter((c) => c.value > 0)).toEqual(classes.map((c) => ({ ...c, name: `class ${c.value}` })));
    verify(path);
  });

  it('reads a Web Mercator source too (the real cogeo.tif imagery)', async () => {
    const path = join(dir, 'cogeo.pmtiles');
    const src = join(dir, 'cogeo.tif');
    copyFileSync(sharedData('rasterio', 'cogeo.tif'), src);
    await writeRasterTiles(src, path, { layer: 'imagery' });
    const archive = openArchive(path);
    const h = await archive.getHeader();
    const finest = tilesOf(path).filter(([z]) => z === h.maxZoom).slice(0, 3);
    const oracle = gdalTiles(src, join(dir, 'oracle-c'), 'bilinear', [1, 2, 3], finest);
    let sum = 0;
    let n = 0;
    for (const [z, x, y] of finest) {
      const rgba = await decode((await archive.getZxy(z, x, y))!.data);
      const want = oracle.get(`${z}/${x}/${y}`)!;
      for (let i = 0; i < 65536; i++)
        if (rgba[i * 4 + 3]! > 0 && want.valid[i]! > 0) for (let b = 0; b < 3; b++) (sum += Math.abs(rgba[i * 4 + b]! - want.bands[b]![i]!)), n++;
    }
    expect(n).toBeGreaterThan(30_000);
    expect(sum / n).toBeLessThan(5);
    verify(path);
  });
});

describe('writeRasterTiles errors', () => {
  it('names the file and leaves nothing behind', async () => {
    const out = mkdtempSync(join(dir, 'err-'));
    await expect(writeRasterTiles(join(dir, 'missing.tif'), join(out, 'x.pmtiles'))).rejects.toMatchObject({ code: 'E_FILE_NOT_FOUND' });
    await expect(writeRasterTiles(sharedData('rasterio', 'all-nodata.tif'), join(out, 'x.pmtiles'), { layer: 'height' })).rejects.toMatchObject({
      code: 'E_BAD_RASTER',
      message: expect.stringMatching(/all-nodata\.tif: has no valid pixels/),
    });
    await expect(writeRasterTiles(sharedData('rasterio', 'RGBA.uint16.tif'), join(out, 'x.pmtiles'), { layer: 'imagery' })).rejects.toMatchObject({
      code: 'E_UNSUPPORTED_RASTER',
      message: expect.stringMatching(/RGBA\.uint16\.tif: imagery tiles need 8-bit bands/),
    });
    await expect(writeRasterTiles(join(run.dir, 'chm.tif'), join(out, 'x.pmtiles'), { band: 3 })).rejects.toMatchObject({
      code: 'E_ARGUMENT',
      message: expect.stringMatching(/band 3 does not exist \(the raster has 2 bands\)/),
    });
    expect(readdirSync(out)).toEqual([]);
  });
});
