/**
 * Real tile services on loopback for tests, none written by geo-dino:
 *
 * - XYZ tiles made by GDAL's `gdal2tiles.py --xyz` (from `/usr/bin/python3`'s osgeo_utils),
 *   served by Python's `http.server` (a plain static file server: 404 for missing tiles);
 * - a WMTS served by MapProxy (PyPI), configured over those tiles, in Web Mercator and in a UTM
 *   tile matrix set it reprojects to. `npm test` / `npm run test:tools` installs MapProxy
 *   (test/tools/tools.mjs) into a virtualenv outside the repository (`$GEO_DINO_MAPPROXY_TOOLS`,
 *   by default `$GEO_DINO_TOOLS/mapproxy@<version>`);
 * - GDAL's WMS (TMS minidriver) and WMTS drivers as the oracle reading the same services
 *   (`tile-oracle.py`).
 *
 * A missing tool fails the test with the reason (requireTool); servers are stopped by PID.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, stopProcess, waitForHttp } from './stac-api-server.js';
import { REPO_ROOT } from './shared-data.js';
import { GDAL_PYTHON, mapproxyTools, requireGdal, requireTool } from './tools.js';

const run = promisify(execFile);


export interface LoopbackServer {
  url: string;
  port: number;
  log(): string;
  stop(): Promise<void>;
}

function spawnLogged(cmd: string, args: string[]): { proc: ChildProcess; logs: () => string } {
  let out = '';
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  proc.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  return { proc, logs: () => out };
}

async function serve(cmd: string, args: (port: number) => string[], probe: string): Promise<LoopbackServer> {
  const port = await freePort();
  const { proc, logs } = spawnLogged(cmd, args(port));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}${probe}`, proc, logs, 60_000);
  } catch (err) {
    await stopProcess(proc);
    throw err;
  }
  return { url, port, log: logs, stop: () => stopProcess(proc) };
}

/** `gdal2tiles.py --xyz` of a raster into `dir` (PNG with alpha, 256 px), zoom levels `zooms` (e.g. "16-18"). */
export async function makeXyzTiles(raster: string, dir: string, zooms: string): Promise<void> {
  requireGdal();
  await run(GDAL_PYTHON, ['-m', 'osgeo_utils.gdal2tiles', '--xyz', '-q', '-w', 'none', '-r', 'bilinear', '-z', zooms, '--processes=1', raster, dir], { timeout: 300_000 });
}

/** Python's `http.server` on loopback serving `dir` (missing files: 404). */
export function startStaticServer(dir: string): Promise<LoopbackServer> {
  requireTool(GDAL_PYTHON, ['--version']);
  return serve(GDAL_PYTHON, (port) => ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', dir], '/');
}

/** MapProxy configuration: a WMTS layer `cogeo` over XYZ tiles at `tilesUrl`, in Web Mercator and UTM zone 52N. */
export function mapProxyConfig(tilesUrl: string): string {
  return `services:
  wmts:
    restful: true
    kvp: true
    md:
      title: geo-dino test WMTS
      contact:
        organization: geo-dino test imagery provider
      access_constraints: 'Test imagery, CC-BY 4.0'
layers:
  - name: cogeo
    title: cogeo.tif tiles
    sources: [cogeo_cache]
caches:
  cogeo_merc:
    grids: [merc18]
    sources: [cogeo_tiles]
    disable_storage: true
    format: image/png
    request_format: image/png
  cogeo_cache:
    grids: [merc18, utm52]
    sources: [cogeo_merc]
    disable_storage: true
    format: image/png
    request_format: image/png
sources:
  cogeo_tiles:
    type: tile
    url: ${tilesUrl}/%(z)s/%(x)s/%(y)s.png
    grid: GLOBAL_WEBMERCATOR
    transparent: true
    on_error:
      404:
        response: transparent
        cache: false
grids:
  # Web Mercator down to zoom 18 (the tiles gdal2tiles made), so that finer UTM levels are
  # reprojected from zoom 18 rather than from missing zoom-19 tiles.
  merc18:
    base: GLOBAL_WEBMERCATOR
    num_levels: 19
  utm52:
    srs: 'EPSG:32652'
    bbox: [465000, 4165000, 475240, 4175240]
    bbox_srs: 'EPSG:32652'
    origin: nw
    res: [10.0, 5.0, 2.5, 1.25, 0.625, 0.3125]
    tile_size: [256, 256]
globals:
  image:
    paletted: false
`;
}

/** MapProxy serving `config` (YAML) on loopback; RESTful capabilities at `${url}/wmts/1.0.0/WMTSCapabilities.xml`. */
export async function startMapProxy(config: string): Promise<LoopbackServer> {
  const python = join(mapproxyTools(), 'bin', 'python');
  requireTool(python, ['-c', 'import mapproxy.wsgiapp']);
  const dir = mkdtempSync(join(tmpdir(), 'geo-dino-mapproxy-'));
  const file = join(dir, 'mapproxy.yaml');
  writeFileSync(file, config);
  const s = await serve(python, (port) => [join(REPO_ROOT, 'test', 'support', 'mapproxy-serve.py'), file, String(port)], '/wmts/1.0.0/WMTSCapabilities.xml').catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  return {
    ...s,
    stop: async () => {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** GDAL's reading of a georeferenced window of a tile service: 4 planes (R, G, B, alpha), uint8. */
export async function gdalTileWindow(dataset: string, box: [number, number, number, number], width: number, height: number): Promise<Uint8Array[]> {
  const dir = mkdtempSync(join(tmpdir(), 'geo-dino-tile-oracle-'));
  try {
    const out = join(dir, 'window.bin');
    await run(GDAL_PYTHON, [join(REPO_ROOT, 'test', 'support', 'tile-oracle.py'), dataset, ...box.map(String), String(width), String(height), out], { timeout: 120_000 });
    const b = new Uint8Array(readFileSync(out));
    const n = width * height;
    return [0, 1, 2, 3].map((i) => b.slice(i * n, (i + 1) * n));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A GDAL_WMS description of an XYZ service (TMS minidriver, top origin) at one zoom level. */
export function gdalXyzDataset(tilesUrl: string, zoom: number): string {
  const H = 20037508.342789244;
  return `<GDAL_WMS><Service name="TMS"><ServerUrl>${tilesUrl}/\${z}/\${x}/\${y}.png</ServerUrl></Service><DataWindow><UpperLeftX>${-H}</UpperLeftX><UpperLeftY>${H}</UpperLeftY><LowerRightX>${H}</LowerRightX><LowerRightY>${-H}</LowerRightY><TileLevel>${zoom}</TileLevel><TileCountX>1</TileCountX><TileCountY>1</TileCountY><YOrigin>top</YOrigin></DataWindow><Projection>EPSG:3857</Projection><BlockSizeX>256</BlockSizeX><BlockSizeY>256</BlockSizeY><BandsCount>4</BandsCount><ZeroBlockHttpCodes>204,404</ZeroBlockHttpCodes></GDAL_WMS>`;
}
