/**
 * `geo-dino raster info` and `geo-dino raster warp`, run as a user runs them (built CLI in a
 * child process), checked against gdalinfo, gdalwarp and GDAL's COG validator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../test/support/cli.js';
import { sharedData } from '../../test/support/shared-data.js';
import { requireGdal } from '../../test/support/tools.js';
import { gdal, gdalinfoJson, gdalRead, validateCog } from './support/gdal.js';

let dir: string;
beforeAll(() => {
  requireGdal();
  dir = mkdtempSync(join(tmpdir(), 'gd-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('geo-dino raster info', () => {
  it('--json: what gdalinfo says about cogeo.tif', async () => {
    const path = sharedData('rasterio', 'cogeo.tif');
    const r = await runCli(['--json', 'raster', 'info', path]);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as {
      width: number;
      height: number;
      bandCount: number;
      dtype: string;
      bands: { band: number; colorInterp: string }[];
      crs: { epsg: number };
      geoTransform: number[];
      levels: { width: number; hasMask: boolean }[];
      compression: string;
      mask: string;
      lonLatBounds: number[];
      problems: string[];
    };
    const g = gdalinfoJson(path) as { size: number[]; geoTransform: number[]; bands: { band: number; overviews: { size: number[] }[] }[]; wgs84Extent: { coordinates: number[][][] } };
    // Band numbers as GDAL counts them (from 1).
    expect(info.bands.map((b) => b.band)).toEqual(g.bands.map((b) => b.band));
    expect([info.width, info.height]).toEqual(g.size);
    expect(info.bandCount).toBe(3);
    expect(info.dtype).toBe('uint8');
    expect(info.bands.map((b) => b.colorInterp)).toEqual(['red', 'green', 'blue']);
    expect(info.crs.epsg).toBe(3857);
    info.geoTransform.forEach((v, i) => expect(v).toBeCloseTo(g.geoTransform[i]!, 9));
    expect(info.levels.slice(1).map((l) => l.width)).toEqual(g.bands[0]!.overviews.map((o) => o.size[0]));
    expect(info.levels.every((l) => l.hasMask)).toBe(true);
    expect(info.mask).toBe('internal');
    expect(info.compression).toBe('jpeg');
    expect(info.problems).toEqual([]);
    const xs = g.wgs84Extent.coordinates[0]!.map((p) => p[0]!);
    const ys = g.wgs84Extent.coordinates[0]!.map((p) => p[1]!);
    expect(info.lonLatBounds[0]).toBeCloseTo(Math.min(...xs), 5);
    expect(info.lonLatBounds[3]).toBeCloseTo(Math.max(...ys), 5);
  });

  it('human output lists bands, CRS, overviews and compression', async () => {
    const r = await runCli(['raster', 'info', sharedData('rasterio', 'RGBA.uint16.tif')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/size\s+634 × 411, 4 bands, uint16/);
    expect(r.stdout).toMatch(/bands\s+1 blue, 2 green, 3 red, 4 alpha/);
    expect(r.stdout).toMatch(/crs\s+EPSG:32612 \(WGS 84 \/ UTM zone 12N\)/);
    expect(r.stdout).toMatch(/validity\s+alpha band 4/);
    expect(r.stdout).toMatch(/compression\s+deflate/);
  });

  it('a damaged file: the info, its problem, and exit 2 naming the file', async () => {
    const path = sharedData('rasterio', 'corrupt.tif');
    const r = await runCli(['raster', 'info', path]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/problem\s+level 0: 1 block past the end of the file/);
    expect(r.stderr).toContain(`${path}: damaged`);
  });

  it('not a TIFF, a missing file: exit 2 with one clear line', async () => {
    const txt = join(dir, 'notes.tif');
    writeFileSync(txt, 'just some text');
    const a = await runCli(['raster', 'info', txt]);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain(`${txt}: not a TIFF file`);
    const b = await runCli(['raster', 'info', join(dir, 'nope.tif')]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('nope.tif: no such file');
  });
});

describe('geo-dino raster warp', () => {
  it('RGB.byte.tif → UTM 17N at 300 m, nearest: a valid COG equal to gdalwarp on the same grid', async () => {
    const out = join(dir, 'warped.tif');
    const r = await runCli(['--json', 'raster', 'warp', sharedData('rasterio', 'RGB.byte.tif'), '--out', out, '--crs', 'EPSG:32617', '--gsd', '300', '--resampling', 'near']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { width: number; height: number; transform: number[]; epsg: number; tilesWritten: number };
    expect(res.epsg).toBe(32617);
    const v = validateCog(out);
    expect(v.ok, v.output).toBe(true);
    const [x0, , , y0] = res.transform as [number, number, number, number];
    const ref = join(dir, 'gdalwarp.tif');
    gdal('gdalwarp', [
      '-q',
      '-t_srs',
      'EPSG:32617',
      '-te',
      String(x0),
      String(y0 - res.height * 300),
      String(x0 + res.width * 300),
      String(y0),
      '-ts',
      String(res.width),
      String(res.height),
      '-r',
      'near',
      '-et',
      '0',
      '-dstalpha',
      sharedData('rasterio', 'RGB.byte.tif'),
      ref,
    ]);
    const a = gdalRead(out, [0, 0, res.width, res.height], { bands: [0, 1, 2, 3] });
    const b = gdalRead(ref, [0, 0, res.width, res.height], { bands: [0, 1, 2, 3] });
    let agree = 0;
    let both = 0;
    let same = 0;
    for (let i = 0; i < res.width * res.height; i++) {
      const va = a.bands[3]![i]! > 0;
      const vb = b.bands[3]![i]! > 0;
      if (va === vb) agree++;
      if (!va || !vb) continue;
      both++;
      if ([0, 1, 2].every((c) => a.bands[c]![i] === b.bands[c]![i])) same++;
    }
    expect(both).toBeGreaterThan(300_000);
    expect(agree / (res.width * res.height)).toBeGreaterThan(0.995);
    expect(same / both).toBeGreaterThan(0.995);
    const info = gdalinfoJson(out) as { bands: { colorInterpretation: string }[] };
    expect(info.bands.map((x) => x.colorInterpretation)).toEqual(['Red', 'Green', 'Blue', 'Alpha']);
  });

  // gdalwarp sizes a downsampling kernel from its chunk (destination pixels over the source window
  // clamped to the raster), not from the pixel sizes: on this grid, larger than the scene, it
  // would stretch cubic by 2.89 instead of 3 (88 % within 1 DN). XSCALE/YSCALE give it the true
  // ratio, which geo-dino uses.
  const trueScale = ['-wo', `XSCALE=${300.037926675094809 / 900}`, '-wo', `YSCALE=${300.041782729804993 / 900}`];
  for (const [method, gsd, minBoth, extra] of [
    ['average', 900, 20_000, []],
    ['cubic', 900, 20_000, trueScale],
    ['cubic', 150, 1_000_000, []],
    ['mode', 900, 20_000, []],
  ] as const) {
    it(`--resampling ${method} (GDAL's name) at ${gsd} m: within 1 DN of gdalwarp -r ${method} on the same grid`, async () => {
      const out = join(dir, `warped-${method}-${gsd}.tif`);
      const src = sharedData('rasterio', 'RGB.byte.tif');
      const r = await runCli(['--json', 'raster', 'warp', src, '--out', out, '--crs', 'EPSG:32618', '--gsd', String(gsd), '--resampling', method]);
      expect(r.code, r.stderr).toBe(0);
      const res = JSON.parse(r.stdout) as { width: number; height: number; transform: number[] };
      const [x0, , , y0] = res.transform as [number, number, number, number];
      const ref = join(dir, `gdalwarp-${method}-${gsd}.tif`);
      gdal('gdalwarp', ['-q', '-t_srs', 'EPSG:32618', '-te', String(x0), String(y0 - res.height * gsd), String(x0 + res.width * gsd), String(y0), '-ts', String(res.width), String(res.height), '-r', method, '-et', '0', '-ovr', 'NONE', ...extra, '-dstalpha', src, ref]);
      const a = gdalRead(out, [0, 0, res.width, res.height], { bands: [0, 1, 2, 3] });
      const b = gdalRead(ref, [0, 0, res.width, res.height], { bands: [0, 1, 2, 3] });
      let both = 0;
      let close = 0;
      for (let i = 0; i < res.width * res.height; i++) {
        if (!(a.bands[3]![i]! > 0) || !(b.bands[3]![i]! > 0)) continue;
        both++;
        if ([0, 1, 2].every((c) => Math.abs(a.bands[c]![i]! - b.bands[c]![i]!) <= 1)) close++;
      }
      console.log(`${method} at ${gsd} m vs gdalwarp -r ${method}: ${close}/${both} pixels within 1 DN (${((100 * close) / both).toFixed(2)} %)`);
      expect(both).toBeGreaterThan(minBoth);
      expect(close / both).toBeGreaterThan(0.99);
    });
  }

  it('cogeo.tif with --bbox at the default grid (UTM of the centroid, 0.6 m)', async () => {
    const out = join(dir, 'cogeo-utm.tif');
    const r = await runCli(['--json', 'raster', 'warp', sharedData('rasterio', 'cogeo.tif'), '-o', out, '--bbox', '128.656,37.667,128.660,37.670']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { epsg: number; gsd: number; validPixels: number; width: number; height: number };
    expect(res.epsg).toBe(32652);
    expect(res.gsd).toBe(0.6);
    expect(res.validPixels).toBeGreaterThan(0.9 * res.width * res.height);
    expect(validateCog(out).ok).toBe(true);
  });

  it('bad flags are refused by name, and nothing is written', async () => {
    const out = join(dir, 'sub', 'never.tif');
    rmSync(join(dir, 'sub'), { recursive: true, force: true });
    gdal('mkdir', ['-p', join(dir, 'sub')]);
    const src = sharedData('rasterio', 'RGB.byte.tif');
    const cases: [string[], RegExp][] = [
      ...['lanczos', 'cubicspline', 'rms', 'max', 'min', 'med', 'q1', 'q3', 'sum'].map((m): [string[], RegExp] => [
        ['--resampling', m],
        new RegExp(`--resampling: "${m}" is a GDAL resampling method geo-dino's warper does not implement; use near \\(nearest\\), bilinear, cubic, average or mode, or warp with gdalwarp -r ${m} first`),
      ]),
      [['--resampling', 'sinc'], /--resampling: unknown resampling method "sinc"; use near \(nearest\), bilinear, cubic, average or mode/],
      [['--gsd', '-3'], /--gsd: must be > 0/],
      [['--bbox', '1,2,3'], /--bbox: must be four numbers: minlon,minlat,maxlon,maxlat/],
      [['--bbox', '37,-1,36,0'], /--bbox: minlon 37 is greater than maxlon 36 \(a box crossing the antimeridian.*did you swap the corners\?\)/],
      [['--bbox', '36,-95,37,0'], /--bbox: minlat -95 is outside \[-90, 90\]/],
      [['--bbox', '36,1,37,0'], /--bbox: minlat 1 must be below maxlat 0/],
      [['--crs', 'EPSG:99999'], /--crs: EPSG:99999 is not a CRS in PROJ's database/],
      [['--crs', 'ESPG:32737'], /--crs: not a CRS: "ESPG:32737" \(did you mean EPSG:32737/],
      [['--stretch', 'gamma:2'], /--stretch: unknown stretch "gamma"/],
      [['--bbox', '0,0,1,1', '--aoi', 'x.geojson'], /--aoi and --bbox: give one or the other, not both/],
    ];
    for (const [flags, msg] of cases) {
      const r = await runCli(['raster', 'warp', src, '--out', out, ...flags]);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.stderr, flags.join(' ')).toMatch(msg);
      expect(r.stderr.trim().split('\n'), flags.join(' ')).toHaveLength(1);
    }
    // An invalid AOI (a bow tie): geometry's error, naming the file.
    const bowtie = join(dir, 'bowtie.geojson');
    writeFileSync(bowtie, JSON.stringify({ type: 'Polygon', coordinates: [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]] }));
    const inv = await runCli(['raster', 'warp', src, '--out', out, '--aoi', bowtie]);
    expect(inv.code).toBe(2);
    expect(inv.stderr).toMatch(/bowtie\.geojson: .*crosses itself/);
    const missing = await runCli(['raster', 'warp', src]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--out: is required/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(join(dir, 'sub'))).toEqual([]);
  });

  it('an AOI the imagery does not cover: E_NO_OVERLAP, exit 2, no file left behind', async () => {
    const out = join(dir, 'empty.tif');
    const r = await runCli(['raster', 'warp', sharedData('rasterio', 'cogeo.tif'), '--out', out, '--bbox', '10,10,10.001,10.001']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no valid imagery of .*cogeo\.tif inside --bbox/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('.empty.tif'))).toEqual([]);
  });
});
