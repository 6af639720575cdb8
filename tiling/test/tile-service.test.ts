/**
 * Tile services as raster sources, against real tile servers on loopback that geo-dino did not
 * write: XYZ tiles made by `gdal2tiles.py --xyz` from cogeo.tif served by Python's `http.server`,
 * and a WMTS served by MapProxy over them (Web Mercator and a UTM tile matrix set, RESTful and
 * KVP). GDAL's WMS (TMS minidriver) and WMTS drivers read the same windows as the oracle.
 * A fault-injecting proxy in front of the tiles adds 429s, stalls, HTML error pages, missing and
 * blank tiles: retries succeed, errors are clear, missing tiles are nodata, nothing hangs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { GeoDinoError } from '@geo-dino/core';
import {
  TileDiskCache,
  openTileService,
  parseWmtsCapabilities,
  parseXyzTemplate,
  quadkey,
  redactTileUrl,
  xyzTileUrl,
  type OpenTileServiceOptions,
  type TileServiceRaster,
} from '@geo-dino/tiling';
import { sharedData } from '../../test/support/shared-data.js';
import { gdalTileWindow, gdalXyzDataset, makeXyzTiles, mapProxyConfig, startMapProxy, startStaticServer, type LoopbackServer } from '../../test/support/tile-servers.js';

/** cogeo.tif's lon/lat bounds (gdalinfo), a little inside. */
const BBOX: [number, number, number, number] = [128.6556, 37.6666, 128.6607, 37.6706];
const LAT = (BBOX[1] + BBOX[3]) / 2;

let tilesDir: string;
let cacheDir: string;
let statics: LoopbackServer;
let mapproxy: LoopbackServer;
let faults: Server;
let faultUrl: string;
const hits = new Map<string, number>();
const subdomainsSeen = new Set<string>();
let blankPng: Buffer;
const userAgents = new Set<string>();
let inFlight = 0;
let maxInFlight = 0;

function tileFile(z: number, x: number, y: number): Buffer | null {
  try {
    return readFileSync(join(tilesDir, String(z), String(x), `${y}.png`));
  } catch {
    return null;
  }
}

/** Independent quadkey decoding (Bing Maps tile system). */
function fromQuadkey(q: string): [number, number, number] {
  let x = 0;
  let y = 0;
  for (const ch of q) {
    const d = Number(ch);
    x = x * 2 + (d & 1);
    y = y * 2 + (d >> 1);
  }
  return [q.length, x, y];
}

beforeAll(async () => {
  tilesDir = mkdtempSync(join(tmpdir(), 'geo-dino-xyz-'));
  cacheDir = mkdtempSync(join(tmpdir(), 'geo-dino-tilecache-'));
  await makeXyzTiles(sharedData('rasterio', 'cogeo.tif'), tilesDir, '16-18');
  statics = await startStaticServer(tilesDir);
  mapproxy = await startMapProxy(mapProxyConfig(statics.url));
  blankPng = await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 250, g: 250, b: 250 } } }).png().toBuffer();
  // The fault-injecting server: /<mode>/... in front of the gdal2tiles tiles.
  faults = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    const n = (hits.get(path) ?? 0) + 1;
    hits.set(path, n);
    const parts = path.split('/').filter(Boolean);
    const mode = parts[0]!;
    let z: number;
    let x: number;
    let y: number;
    if (mode === 'quad') [z, x, y] = fromQuadkey(parts[1]!.replace('.png', ''));
    else {
      [z, x, y] = parts.slice(-3).map((p) => Number(p.replace(/\.\w+$/, ''))) as [number, number, number];
      if (mode === 'tms') y = 2 ** z - 1 - y;
    }
    if (mode.startsWith('sub-')) subdomainsSeen.add(`${mode}:${x + y}`);
    const file = tileFile(z, x, y);
    const send = (b: Buffer | null): void => {
      if (!b) res.writeHead(404).end('no such tile');
      else res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': b.length }).end(b);
    };
    userAgents.add(String(req.headers['user-agent']));
    switch (mode) {
      case 'auth':
        if (req.headers['authorization'] !== 'Bearer T0KEN') res.writeHead(401).end('unauthorised');
        else send(file);
        return;
      case 'slow':
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        setTimeout(() => {
          inFlight--;
          send(file);
        }, 30);
        return;
      case 'busy':
        if (n === 1) res.writeHead(429, { 'Retry-After': '1' }).end('slow down');
        else send(file);
        return;
      case 'stall':
        return; // never answers
      case 'webp':
        if (!file) res.writeHead(404).end();
        else void sharp(file).webp({ lossless: true }).toBuffer().then((b) => res.writeHead(200, { 'Content-Type': 'image/webp' }).end(b));
        return;
      case 'huge': {
        // A PNG whose header claims 65535 × 65535 pixels (a decompression bomb's first step).
        const b = Buffer.from(file ?? blankPng);
        b.writeUInt32BE(65535, 16);
        b.writeUInt32BE(65535, 20);
        res.writeHead(200, { 'Content-Type': 'image/png' }).end(b);
        return;
      }
      case 'html':
        res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body><h1>Invalid API key</h1></body></html>');
        return;
      case 'half':
        if ((x + y) % 2 === 1) res.writeHead(404).end();
        else send(file);
        return;
      case 'blank':
        if (x % 3 === 0) res.writeHead(204).end();
        else if ((x + y) % 2 === 1) send(blankPng);
        else send(file);
        return;
      default:
        send(file);
    }
  });
  await new Promise<void>((r) => faults.listen(0, '127.0.0.1', r));
  faultUrl = `http://127.0.0.1:${(faults.address() as AddressInfo).port}`;
}, 300_000);

afterAll(async () => {
  faults?.closeAllConnections();
  faults?.close();
  await mapproxy?.stop();
  await statics?.stop();
  rmSync(tilesDir, { recursive: true, force: true });
  rmSync(cacheDir, { recursive: true, force: true });
});

const base: Omit<OpenTileServiceOptions, 'bbox'> = { diskCache: null, http: { retries: 2, backoffMs: 10, timeoutMs: 10_000 } };

async function readAll(src: TileServiceRaster) {
  return src.read({ x: 0, y: 0, width: src.info.width, height: src.info.height });
}

/** Compare a whole-source read with GDAL's read of the same georeferenced window. */
async function expectSameAsGdal(src: TileServiceRaster, dataset: string): Promise<number> {
  const { width, height } = src.info;
  const gt = src.info.geoTransform!;
  const box: [number, number, number, number] = [gt[0], gt[3], gt[0] + width * gt[1], gt[3] + height * gt[5]];
  const oracle = await gdalTileWindow(dataset, box, width, height);
  const d = await readAll(src);
  let validCount = 0;
  for (let b = 0; b < 4; b++) {
    const mine = d.bands[b]!;
    const theirs = oracle[b]!;
    let differ = 0;
    for (let i = 0; i < mine.length; i++) if (mine[i] !== theirs[i]) differ++;
    expect(differ, `band ${b + 1}: pixels differing from GDAL`).toBe(0);
  }
  let wrongValidity = 0;
  for (let i = 0; i < d.valid.length; i++) {
    if (d.valid[i] !== (oracle[3]![i]! > 0 ? 1 : 0)) wrongValidity++;
    validCount += d.valid[i]!;
  }
  expect(wrongValidity, 'pixels whose validity differs from GDAL’s alpha').toBe(0);
  return validCount;
}

describe('XYZ templates', () => {
  it('parses placeholders, subdomains, TMS rows and quadkeys (independent values)', () => {
    const t = parseXyzTemplate('https://{s:1234}.tiles.example/{z}/{x}/{-y}.jpg?api_key=k');
    expect(t.subdomains).toEqual(['1', '2', '3', '4']);
    expect(xyzTileUrl(t, 3, 1, 2)).toBe('https://4.tiles.example/3/1/5.jpg?api_key=k');
    expect(parseXyzTemplate('https://{switch:a,b}.x.example/{z}/{x}/{y}.png').subdomains).toEqual(['a', 'b']);
    expect(parseXyzTemplate('https://{s}.x.example/{z}/{x}/{y}.png').subdomains).toEqual(['a', 'b', 'c']);
    // Bing Maps' documented example: tile (3, 5) at level 3 is quadkey "213".
    expect(quadkey(3, 3, 5)).toBe('213');
    expect(fromQuadkey('213')).toEqual([3, 3, 5]);
    for (const [bad, msg] of [
      ['https://h/{z}/{x}.png', /needs \{z\}, \{x\} and \{y\}/],
      ['https://h/{z}/{x}/{y}/{t}.png', /unknown placeholder \{t\}/],
      ['ftp://h/{z}/{x}/{y}.png', /must be an http\(s\) URL/],
    ] as const) {
      let err: unknown;
      try {
        parseXyzTemplate(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GeoDinoError);
      expect((err as GeoDinoError).code).toBe('E_ARGUMENT');
      expect((err as GeoDinoError).message).toMatch(msg);
    }
  });

  it('redacts keys, tokens and passwords, keeping placeholders', () => {
    expect(redactTileUrl('xyz:https://u:pw@h.example/{z}/{x}/{y}.png?api_key=abc&style=x&access_token=t#f')).toBe('xyz:https://u:***@h.example/{z}/{x}/{y}.png?api_key=***&style=x&access_token=***#f');
    expect(redactTileUrl('https://h.example/tiles/{z}/{x}/{y}')).toBe('https://h.example/tiles/{z}/{x}/{y}');
  });

  it('reads gdal2tiles XYZ tiles exactly as GDAL’s TMS driver does, the zoom chosen from the GSD at the latitude', async () => {
    // Independent: Web Mercator pixel size at zoom z, times cos(latitude), must be ≤ the target.
    const ground = (z: number): number => ((2 * Math.PI * 6378137) / (256 * 2 ** z)) * Math.cos((LAT * Math.PI) / 180);
    for (const gsd of [0.6, 1.0]) {
      let want = 0;
      while (ground(want) > gsd) want++;
      const src = await openTileService(`xyz:${statics.url}/{z}/{x}/{y}.png`, { ...base, bbox: BBOX, gsd });
      expect(src.service.zoom).toBe(String(want));
      expect(src.service.groundResolutionM).toBeCloseTo(ground(want), 2);
      await src.close();
    }
    const src = await openTileService(`xyz:${statics.url}/{z}/{x}/{y}.png`, { ...base, bbox: BBOX, zoom: 18 });
    expect(src.info.crs?.epsg).toBe(3857);
    const valid = await expectSameAsGdal(src, gdalXyzDataset(statics.url, 18));
    expect(valid).toBeGreaterThan(900 * 900); // cogeo.tif is 1024 × 1024 at zoom 18's pixel size
    await src.close();
  });

  it('reads TMS ({-y}), quadkey ({q}) and subdomain ({s}) templates to the same pixels', async () => {
    const ref = await openTileService(`xyz:${statics.url}/{z}/{x}/{y}.png`, { ...base, bbox: BBOX, zoom: 17 });
    const want = await readAll(ref);
    await ref.close();
    for (const template of [`${faultUrl}/tms/{z}/{x}/{-y}.png`, `${faultUrl}/quad/{q}.png`, `${faultUrl}/sub-{s:ab}/{z}/{x}/{y}.png`]) {
      const src = await openTileService(`xyz:${template}`, { ...base, bbox: BBOX, zoom: 17 });
      const got = await readAll(src);
      for (let b = 0; b < 4; b++) expect(Buffer.from(got.bands[b]!).equals(Buffer.from(want.bands[b]!)), template).toBe(true);
      await src.close();
    }
    // Each tile always goes to the same subdomain, (x + y) mod 2.
    for (const s of subdomainsSeen) expect(s.startsWith(Number(s.split(':')[1]) % 2 === 0 ? 'sub-a' : 'sub-b')).toBe(true);
  });
});

describe('WMTS (MapProxy)', () => {
  it('Web Mercator tile matrix set (RESTful): GDAL’s WMTS driver reads the same pixels; the declared attribution is kept', async () => {
    const caps = `${mapproxy.url}/wmts/1.0.0/WMTSCapabilities.xml`;
    const src = await openTileService(`wmts:${caps}`, { ...base, bbox: BBOX, gsd: 0.6 });
    expect(src.service).toMatchObject({ kind: 'wmts', layer: 'cogeo', tileMatrixSet: 'merc18', zoom: '18', attribution: 'geo-dino test imagery provider — Test imagery, CC-BY 4.0' });
    expect(src.service.template).toContain('{TileMatrix}');
    await expectSameAsGdal(src, `WMTS:${caps},layer=cogeo,tilematrixset=merc18,tilematrix=18`);
    await src.close();
  });

  it('a UTM tile matrix set (MapProxy reprojects): the level at least as fine as 0.6 m, same pixels as GDAL', async () => {
    const caps = `${mapproxy.url}/wmts/1.0.0/WMTSCapabilities.xml`;
    // A small area: MapProxy reprojects every tile (for geo-dino and again for GDAL).
    const small: [number, number, number, number] = [128.657, 37.668, 128.659, 37.6695];
    const src = await openTileService(`wmts:${caps}`, { ...base, bbox: small, gsd: 0.6, tileMatrixSet: 'utm52', attribution: 'my licence' });
    expect(src.info.crs?.epsg).toBe(32652);
    expect(src.info.geoTransform![1]).toBeCloseTo(0.3125, 9); // 0.625 m would be coarser than 0.6 m
    expect(src.service.attribution).toBe('my licence');
    const valid = await expectSameAsGdal(src, `WMTS:${caps},layer=cogeo,tilematrixset=utm52,tilematrix=${src.service.zoom}`);
    expect(valid).toBeGreaterThan(0);
    await src.close();
  }, 180_000);

  it('KVP GetTile (capabilities without ResourceURL) reads what the RESTful form reads', async () => {
    const rest = await openTileService(`wmts:${mapproxy.url}/wmts/1.0.0/WMTSCapabilities.xml`, { ...base, bbox: BBOX, zoom: '17' });
    const kvp = await openTileService(`wmts:${mapproxy.url}/service?REQUEST=GetCapabilities&SERVICE=WMTS`, { ...base, bbox: BBOX, zoom: '17' });
    expect(kvp.service.template).toMatch(/REQUEST=GetTile.*TILEMATRIX=\{TileMatrix\}/);
    const a = await readAll(rest);
    const b = await readAll(kvp);
    for (let i = 0; i < 4; i++) expect(Buffer.from(a.bands[i]!).equals(Buffer.from(b.bands[i]!))).toBe(true);
    expect(a.valid.reduce((s, v) => s + v, 0)).toBeGreaterThan(0);
    await rest.close();
    await kvp.close();
  });

  it('asks for a layer or tile matrix set by name when the choice is ambiguous or wrong', async () => {
    const xml = await (await fetch(`${mapproxy.url}/wmts/1.0.0/WMTSCapabilities.xml`)).text();
    const two = xml.replace(/<Layer>([\s\S]*?)<\/Layer>/, (l) => `${l}${l.replace('<ows:Identifier>cogeo</ows:Identifier>', '<ows:Identifier>other</ows:Identifier>')}`);
    expect(() => parseWmtsCapabilities(two, 'http://h/caps.xml')).toThrow(/--layer: the service has 2 layers, choose one: cogeo, other/);
    expect(parseWmtsCapabilities(two, 'http://h/caps.xml', { layer: 'other' }).layer).toBe('other');
    expect(() => parseWmtsCapabilities(xml, 'http://h/caps.xml', { tileMatrixSet: 'nope' })).toThrow(/--tile-matrix-set: layer cogeo has no tile matrix set "nope" \(it has merc18, utm52\)/);
    expect(() => parseWmtsCapabilities('<html><body>login</body></html>', 'http://h/caps.xml')).toThrow(/not a WMTS capabilities document/);
  });
});

describe('faults', () => {
  const one: [number, number, number, number] = [128.6580, 37.6685, 128.6581, 37.6686];

  it('429 with Retry-After, then 200: retried, same pixels', async () => {
    const ref = await openTileService(`xyz:${statics.url}/{z}/{x}/{y}.png`, { ...base, bbox: one, zoom: 18, marginTiles: 0 });
    const src = await openTileService(`xyz:${faultUrl}/busy/{z}/{x}/{y}.png`, { ...base, bbox: one, zoom: 18, marginTiles: 0 });
    const a = await readAll(ref);
    const b = await readAll(src);
    for (let i = 0; i < 4; i++) expect(Buffer.from(a.bands[i]!).equals(Buffer.from(b.bands[i]!))).toBe(true);
    expect(src.tiles.fetched).toBeGreaterThan(0);
    for (const [p, n] of hits) if (p.startsWith('/busy/')) expect(n).toBe(2);
    await ref.close();
    await src.close();
  });

  it('sends the caller’s headers and a descriptive User-Agent; at most maxConcurrency requests at once', async () => {
    const denied = await openTileService(`xyz:${faultUrl}/auth/{z}/{x}/{y}.png`, { ...base, bbox: one, zoom: 18, marginTiles: 0 });
    const err = await readAll(denied).catch((e: unknown) => e);
    expect((err as GeoDinoError).code).toBe('E_ACCESS_DENIED');
    await denied.close();
    const ok = await openTileService(`xyz:${faultUrl}/auth/{z}/{x}/{y}.png`, { ...base, headers: { Authorization: 'Bearer T0KEN' }, bbox: one, zoom: 18, marginTiles: 0 });
    expect((await readAll(ok)).valid.some((v) => v === 1)).toBe(true);
    await ok.close();
    expect([...userAgents].every((u) => /^geo-dino\/\S+ \(canopy-height mapping/.test(u))).toBe(true);
    const slow = await openTileService(`xyz:${faultUrl}/slow/{z}/{x}/{y}.png`, { ...base, http: { ...base.http, maxConcurrency: 3 }, bbox: BBOX, zoom: 18 });
    await readAll(slow);
    expect(slow.tiles.fetched).toBeGreaterThan(20);
    expect(maxInFlight).toBeLessThanOrEqual(3);
    expect(maxInFlight).toBeGreaterThan(1);
    await slow.close();
  });

  it('a stalled server: E_NETWORK naming the tile URL after the retries, no hang', async () => {
    const src = await openTileService(`xyz:${faultUrl}/stall/{z}/{x}/{y}.png?key=SECRET`, { ...base, http: { timeoutMs: 300, retries: 1, backoffMs: 10 }, bbox: one, zoom: 18, marginTiles: 0 });
    const err = await readAll(src).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GeoDinoError);
    expect((err as GeoDinoError).code).toBe('E_NETWORK');
    expect((err as GeoDinoError).message).toMatch(/\/stall\/18\/\d+\/\d+\.png\?key=\*\*\*: failed after 2 attempts: no complete answer within 300 ms/);
    expect((err as GeoDinoError).message).not.toContain('SECRET');
    await src.close();
  });

  it('WebP tiles (lossless) decode to the PNG tiles’ pixels; a forged oversized header is refused before decoding', async () => {
    const ref = await openTileService(`xyz:${statics.url}/{z}/{x}/{y}.png`, { ...base, bbox: BBOX, zoom: 17 });
    const src = await openTileService(`xyz:${faultUrl}/webp/{z}/{x}/{y}.webp`, { ...base, bbox: BBOX, zoom: 17 });
    const a = await readAll(ref);
    const b = await readAll(src);
    // libwebp may change the colour of fully transparent pixels: compare alpha everywhere, colour where opaque.
    expect(Buffer.from(a.bands[3]!).equals(Buffer.from(b.bands[3]!))).toBe(true);
    let differ = 0;
    for (let i = 0; i < a.valid.length; i++) if (a.valid[i] && (a.bands[0]![i] !== b.bands[0]![i] || a.bands[1]![i] !== b.bands[1]![i] || a.bands[2]![i] !== b.bands[2]![i])) differ++;
    expect(differ).toBe(0);
    expect(src.tiles.decoded).toBeGreaterThan(0);
    await ref.close();
    await src.close();
    const huge = await openTileService(`xyz:${faultUrl}/huge/{z}/{x}/{y}.png`, { ...base, bbox: one, zoom: 18, marginTiles: 0 });
    const err = await readAll(huge).catch((e: unknown) => e);
    expect((err as GeoDinoError).code).toBe('E_BAD_RASTER');
    expect((err as GeoDinoError).message).toMatch(/png tile is 65535×65535, the service declares 256×256 tiles/);
    await huge.close();
  });

  it('an HTML error page with status 200: E_BAD_RASTER saying what came back', async () => {
    const src = await openTileService(`xyz:${faultUrl}/html/{z}/{x}/{y}.png`, { ...base, bbox: one, zoom: 18, marginTiles: 0 });
    const err = await readAll(src).catch((e: unknown) => e);
    expect((err as GeoDinoError).code).toBe('E_BAD_RASTER');
    expect((err as GeoDinoError).message).toMatch(/HTTP 200 but not a tile image \(Content-Type text\/html\): "<html><body><h1>Invalid API key/);
    await src.close();
  });

  it('missing tiles (404, 204, a blank-tile signature) are nodata, the rest reads as usual; the disk cache answers a rerun', async () => {
    const ref = await openTileService(`xyz:${statics.url}/{z}/{x}/{y}.png`, { ...base, bbox: BBOX, zoom: 18 });
    const want = await readAll(ref);
    await ref.close();
    const T = 256;
    const col0 = Math.round((ref.info.geoTransform![0] + 20037508.342789244) / (T * ref.info.geoTransform![1]));
    const row0 = Math.round((20037508.342789244 - ref.info.geoTransform![3]) / (T * ref.info.geoTransform![1]));
    const blankSha = createHash('sha256').update(blankPng).digest('hex');
    for (const [mode, gone] of [
      ['half', (x: number, y: number) => (x + y) % 2 === 1],
      ['blank', (x: number, y: number) => x % 3 === 0 || (x + y) % 2 === 1],
    ] as const) {
      const opts = { ...base, bbox: BBOX, zoom: 18, blankTiles: [blankSha], diskCache: { dir: join(cacheDir, mode), maxBytes: 64 * 1024 * 1024 } };
      const expected = Uint8Array.from(want.valid);
      const W = ref.info.width;
      let missingTiles = 0;
      for (let r = 0; r < ref.info.height / T; r++) {
        for (let c = 0; c < W / T; c++) {
          if (!gone(col0 + c, row0 + r) && tileFile(18, col0 + c, row0 + r)) continue;
          missingTiles++;
          for (let y = r * T; y < (r + 1) * T; y++) expected.fill(0, y * W + c * T, y * W + (c + 1) * T);
        }
      }
      for (const pass of [1, 2]) {
        const src = await openTileService(`xyz:${faultUrl}/${mode}/{z}/{x}/{y}.png`, opts);
        const got = await readAll(src);
        expect(Buffer.from(got.valid).equals(Buffer.from(expected)), `${mode} pass ${pass}: validity`).toBe(true);
        let differ = 0;
        for (let i = 0; i < got.valid.length; i++) if (got.valid[i] && got.bands[0]![i] !== want.bands[0]![i]) differ++;
        expect(differ).toBe(0);
        expect(src.tiles.missing).toBe(missingTiles);
        if (pass === 1) expect(src.tiles.fromDiskCache).toBe(0);
        else expect(src.tiles.fetched).toBe(0); // everything, missing tiles included, from the cache
        await src.close();
      }
    }
  });
});

describe('on-disk tile cache', () => {
  it('keeps under its cap by evicting the least recently used tiles', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'geo-dino-lru-'));
    try {
      const c = new TileDiskCache({ dir, maxBytes: 1000 });
      const keys = ['a', 'b', 'c', 'd', 'e'].map((k) => TileDiskCache.keyOf(k));
      await c.put(keys[0]!, new Uint8Array(300).fill(1));
      await c.put(keys[1]!, new Uint8Array(300).fill(2));
      await c.put(keys[2]!, new Uint8Array(300).fill(3));
      expect((await c.get(keys[0]!))?.[0]).toBe(1); // a is now the most recently used
      await c.put(keys[3]!, new Uint8Array(300).fill(4)); // 1200 > 1000: evict b (then below 900: c)
      expect(c.bytes).toBeLessThanOrEqual(900);
      expect(await c.get(keys[1]!)).toBeUndefined();
      expect((await c.get(keys[0]!))?.[0]).toBe(1);
      expect((await c.get(keys[3]!))?.[0]).toBe(4);
      // A second process (a new object) sees the files left on disk.
      const again = new TileDiskCache({ dir, maxBytes: 1000 });
      expect((await again.get(keys[3]!))?.[0]).toBe(4);
      await again.put(keys[4]!, new Uint8Array(0)); // "no tile here"
      expect((await again.get(keys[4]!))?.length).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
