/**
 * `geo-dino chm` reading imagery from and writing its run to a real S3 server (SeaweedFS on
 * loopback behind the fault proxy, reached with --s3-endpoint and the admin's keys in the
 * environment), killed mid-run and resumed.
 *
 * Oracle: the same run computed from the local file into a local directory; the chm.tif published
 * to the server must hold the same pixels (GDAL reads both), and every object must match the
 * manifest's checksums (sha256 computed here).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync, type Dirent } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { CLI_BIN, sharedData } from '../support/shared-data.js';
import { BUCKETS, CLEAN_AWS_ENV, startS3TestBed, type S3TestBed, type S3TestServer } from '../support/seaweedfs.js';
import type { S3FaultProxy } from '../support/s3-fault-proxy.js';
import { COGEO_AOI, chm, gdalBand, tempDir, tilesIn, writeJson } from '../chm/helpers.js';
import { requireGdal } from '../support/tools.js';

let bed: S3TestBed;
let server: S3TestServer;
let proxy: S3FaultProxy;
let dir: string;
let home: string;
let aoi: string;
const OUT = `s3://${BUCKETS.private}/runs/cogeo`;
const IMAGERY = `s3://${BUCKETS.private}/imagery/cogeo.tif`;
const ARGS = () => ['--model', 'demo', '--aoi', aoi, '--tile-size', '256', '--overlap', '32', '--no-web-tiles'];

/** Every file under `root`, as sorted '/'-separated relative paths (the oracle of what a publish uploads). */
function listFiles(root: string): string[] {
  return (readdirSync(root, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

function s3Env(): NodeJS.ProcessEnv {
  return { ...CLEAN_AWS_ENV, ...server.env(), AWS_ENDPOINT_URL: '' };
}

async function getObject(key: string): Promise<Buffer> {
  const r = await server.admin.send(new GetObjectCommand({ Bucket: BUCKETS.private, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

async function keys(prefix: string): Promise<string[]> {
  const r = await server.admin.send(new ListObjectsV2Command({ Bucket: BUCKETS.private, Prefix: prefix }));
  return (r.Contents ?? []).map((c) => c.Key!).sort();
}

beforeAll(async () => {
  requireGdal();
  dir = tempDir('s3');
  home = join(dir, 'home');
  aoi = writeJson(join(dir, 'aoi.geojson'), COGEO_AOI);
  bed = await startS3TestBed();
  ({ server, proxy } = bed);
  await server.admin.send(new PutObjectCommand({ Bucket: BUCKETS.private, Key: 'imagery/cogeo.tif', Body: readFileSync(sharedData('rasterio', 'cogeo.tif')) }));
}, 120_000);

afterAll(async () => {
  await bed?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('chm with imagery and output in S3', () => {
  it('killed mid-run, resumed: the published run equals a local run and its manifest checksums hold', async () => {
    const reference = join(dir, 'reference');
    const ref = await chm([...ARGS(), '--imagery', sharedData('rasterio', 'cogeo.tif'), '--out', reference], home);
    expect(ref.code, ref.stderr).toBe(0);
    const TOTAL = (ref.json!['tiles'] as { total: number }).total;
    expect(TOTAL).toBeGreaterThanOrEqual(6);
    expect(ref.json!['tiles']).toMatchObject({ predicted: TOTAL });

    // Start the S3 run and kill it once a few tiles are stored in the local staging state.
    const staging = join(home, 'staging', 's3', BUCKETS.private, 'runs');
    const state = join(staging, '.cogeo.geo-dino-state');
    const killed = await new Promise<{ signal: NodeJS.Signals | null; stored: number; stderr: string }>((resolve, reject) => {
      const p = spawn(process.execPath, [CLI_BIN, 'chm', ...ARGS(), '--imagery', IMAGERY, '--out', OUT, '--s3-endpoint', proxy.endpoint, '--json'], {
        env: { ...process.env, ...s3Env(), GEO_DINO_HOME: home, GEO_DINO_MODEL: '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      let stored = -1;
      const timer = setInterval(() => {
        const n = tilesIn(state);
        if (stored < 0 && n >= 3) {
          stored = n;
          p.kill('SIGKILL');
        }
      }, 10);
      const guard = setTimeout(() => p.kill('SIGKILL'), 180_000);
      p.on('error', reject);
      p.on('close', (_code, signal) => {
        clearInterval(timer);
        clearTimeout(guard);
        resolve({ signal, stored, stderr });
      });
    });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(killed.stored).toBeGreaterThanOrEqual(3);
    // Nothing of the run is visible in the bucket.
    expect(await keys('runs/')).toEqual([]);
    // The imagery was read from the server, in ranges.
    expect(proxy.log.some((l) => l.method === 'GET' && l.path === `/${BUCKETS.private}/imagery/cogeo.tif` && l.status === 206)).toBe(true);
    const stored = tilesIn(state);
    expect(stored).toBeLessThan(TOTAL);

    const r = await chm([...ARGS(), '--imagery', IMAGERY, '--out', OUT, '--s3-endpoint', proxy.endpoint, '--resume'], home, { env: s3Env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json!['out']).toBe(OUT);
    expect(r.json!['tiles']).toMatchObject({ total: TOTAL, resumed: stored, predicted: TOTAL - stored });
    // The staging directory is gone once published.
    expect(existsSync(join(staging, 'cogeo'))).toBe(false);

    const published = await keys('runs/cogeo/');
    expect(published).toContain('runs/cogeo/manifest.json');
    expect(published).toContain('runs/cogeo/chm.tif');
    // Same pixels as the local run (GDAL reads both); the files differ only in the config hash
    // in their metadata, which covers the imagery's href.
    const downloaded = join(dir, 's3-chm.tif');
    writeFileSync(downloaded, await getObject('runs/cogeo/chm.tif'));
    for (const band of [1, 2]) {
      const a = gdalBand(downloaded, band);
      const b = gdalBand(join(reference, 'chm.tif'), band);
      expect([a.width, a.height]).toEqual([b.width, b.height]);
      expect(Buffer.from(a.values.buffer).equals(Buffer.from(b.values.buffer)), `band ${band}`).toBe(true);
    }
    const manifest = JSON.parse((await getObject('runs/cogeo/manifest.json')).toString()) as { files: { path: string; 'file:checksum': string; 'file:size': number }[]; requestHash: string };
    expect(manifest.files.map((f) => `runs/cogeo/${f.path}`).sort()).toEqual(published.filter((k) => !k.endsWith('manifest.json')));
    for (const f of manifest.files) {
      const bytes = await getObject(`runs/cogeo/${f.path}`);
      expect(f['file:size']).toBe(bytes.length);
      expect(f['file:checksum']).toBe('1220' + createHash('sha256').update(bytes).digest('hex'));
    }
    // item.json's file:checksum (STAC) agrees with the object it describes.
    const item = JSON.parse((await getObject('runs/cogeo/item.json')).toString()) as { assets: Record<string, { href: string; 'file:checksum'?: string }> };
    const chmAsset = Object.values(item.assets).find((a) => a.href.endsWith('chm.tif'))!;
    expect(chmAsset['file:checksum']).toBe('1220' + createHash('sha256').update(await getObject('runs/cogeo/chm.tif')).digest('hex'));
    // Provenance names the s3:// imagery.
    const prov = JSON.parse((await getObject('runs/cogeo/provenance.geojson')).toString()) as { features: { properties: { href: string } }[] };
    expect(prov.features.map((f) => f.properties.href)).toEqual([IMAGERY]);
    expect(manifest.requestHash).toMatch(/^[0-9a-f]{64}$/);

    // The same command again: nothing to do. Another request to the same --out: refused.
    const again = await chm([...ARGS(), '--imagery', IMAGERY, '--out', OUT, '--s3-endpoint', proxy.endpoint], home, { env: s3Env() });
    expect(again.code, again.stderr).toBe(0);
    expect(again.json!['upToDate']).toBe(true);
    const other = await chm([...ARGS(), '--imagery', IMAGERY, '--out', OUT, '--s3-endpoint', proxy.endpoint, '--overlap', '16'], home, { env: s3Env() });
    expect(other.code).toBe(2);
    expect(other.stderr).toContain(`--out ${OUT}: already holds a different run`);
  });

  it('a sharded run (nested shards/…) is published whole: the same files as the local run, shard COGs byte-identical', async () => {
    const args = [...ARGS(), '--imagery', sharedData('rasterio', 'cogeo.tif'), '--shard-size', '512'];
    const local = join(dir, 'sharded-local');
    const l = await chm([...args, '--out', local], home, { timeoutMs: 300_000 });
    expect(l.code, l.stderr).toBe(0);
    const r = await chm([...args, '--out', `s3://${BUCKETS.private}/runs/sharded`, '--s3-endpoint', proxy.endpoint], home, { env: s3Env(), timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const localFiles = listFiles(local);
    expect(localFiles.some((f) => f.startsWith('shards/'))).toBe(true);
    expect(await keys('runs/sharded/')).toEqual([...localFiles, 'manifest.json'].map((f) => `runs/sharded/${f}`).sort());
    const cogs = localFiles.filter((f) => /^shards\/.*\/chm\.tif$/.test(f));
    expect(cogs.length).toBeGreaterThan(1);
    for (const f of cogs) expect((await getObject(`runs/sharded/${f}`)).equals(readFileSync(join(local, f))), f).toBe(true);
    // STAC self links: the published URL (the --out prefix) where the run lives; none in the local run.
    type Links = { links: { rel: string; href: string }[] };
    const selfOf = (doc: Links): string | undefined => doc.links.find((l) => l.rel === 'self')?.href;
    const items = localFiles.filter((f) => /^shards\/.*\/item\.json$/.test(f));
    expect(selfOf(JSON.parse((await getObject('runs/sharded/collection.json')).toString()) as Links)).toBe(`s3://${BUCKETS.private}/runs/sharded/collection.json`);
    expect(selfOf(JSON.parse((await getObject(`runs/sharded/${items[0]!}`)).toString()) as Links)).toBe(`s3://${BUCKETS.private}/runs/sharded/${items[0]!}`);
    expect(selfOf(JSON.parse(readFileSync(join(local, 'collection.json'), 'utf8')) as Links)).toBeUndefined();
  }, 600_000);

  it('bad credentials: one clear error naming the URL (the --out check comes first), exit 1, no secret in the output', async () => {
    const r = await chm([...ARGS(), '--imagery', IMAGERY, '--out', `s3://${BUCKETS.private}/runs/denied`, '--s3-endpoint', proxy.endpoint], home, {
      env: { ...s3Env(), AWS_SECRET_ACCESS_KEY: 'wrong-secret-value-0123456789' },
    });
    expect(r.code).toBe(1);
    const err = r.events.find((e) => e['type'] === 'error');
    expect(err?.['code']).toBe('E_ACCESS_DENIED');
    expect(err?.['message']).toMatch(new RegExp(`^s3://${BUCKETS.private}/runs/denied/manifest\\.json: access denied \\(HTTP 403 SignatureDoesNotMatch`));
    expect(r.stderr).not.toContain('wrong-secret-value-0123456789');
    expect(r.stderr).not.toContain(server.secretAccessKey);
    expect(await keys('runs/denied/')).toEqual([]);
  });
});
