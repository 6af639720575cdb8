/**
 * `geo-dino serve s3://bucket/prefix`: runs published to a real S3 server (SeaweedFS on loopback)
 * browsed through the server, which proxies their objects.
 *
 * Oracles: the local files (ranges must equal their bytes), and the same runs served from the
 * local directory (apps/server's tests check that one against GDAL): /api/runs and /api/point must
 * answer the same. A run without its manifest (half published) is not listed, its objects not served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startServer, type PointResponse, type RunInfo, type RunningServer } from '@geo-dino/server';
import { publishDirectory, resetS3Clients, setS3Defaults } from '@geo-dino/storage';
import { makeFixtureRoot, type FixtureRoot } from '../support/fixture-runs.js';
import { BUCKETS, startSeaweedFs, type S3TestServer } from '../support/seaweedfs.js';

let s3: S3TestServer;
let dir: string;
let fx: FixtureRoot;
let remote: RunningServer;
let local: RunningServer;
const ROOT = `s3://${BUCKETS.private}/served`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-serve-s3-'));
  fx = await makeFixtureRoot(join(dir, 'root'));
  s3 = await startSeaweedFs();
  resetS3Clients();
  setS3Defaults({ endpoint: s3.endpoint }, { ...s3.env(), AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' });
  for (const r of fx.runs) await publishDirectory(join(fx.root, ...r.id.split('/')), `${ROOT}/${r.id}`);
  // Half published: objects without a manifest.
  await s3.admin.send(new PutObjectCommand({ Bucket: BUCKETS.private, Key: 'served/forest/half/chm.pmtiles', Body: readFileSync(join(fx.root, 'forest', '2024-05-01', 'chm.pmtiles')) }));
  remote = await startServer({ root: ROOT, port: 0 });
  local = await startServer({ root: fx.root, port: 0 });
}, 240_000);

afterAll(async () => {
  await remote?.close();
  await local?.close();
  setS3Defaults({});
  resetS3Clients();
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function runsOf(server: RunningServer): Promise<RunInfo[]> {
  return ((await (await fetch(`${server.url}api/runs`)).json()) as { runs: RunInfo[] }).runs;
}

describe('serve s3://', () => {
  it('lists the published runs exactly as it lists them from the directory, and not the half-published one', async () => {
    const r = await runsOf(remote);
    expect(r.map((x) => x.id)).toEqual(['forest/2024-05-01', 'forest/2025-06-11']);
    expect(r).toEqual(await runsOf(local));
  });

  it('proxies ranges, whole files, validators and 416 like the directory server', async () => {
    const path = 'data/forest/2024-05-01/chm.pmtiles';
    const bytes = readFileSync(join(fx.root, 'forest', '2024-05-01', 'chm.pmtiles'));
    const part = await fetch(`${remote.url}${path}`, { headers: { Range: 'bytes=100-70000' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-70000/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 70001))).toBe(true);
    const suffix = await fetch(`${remote.url}${path}`, { headers: { Range: 'bytes=-1000' } });
    expect(Buffer.from(await suffix.arrayBuffer()).equals(bytes.subarray(bytes.length - 1000))).toBe(true);
    const whole = await fetch(`${remote.url}data/forest/2024-05-01/item.json`);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(readFileSync(join(fx.root, 'forest', '2024-05-01', 'item.json')))).toBe(true);
    const etag = part.headers.get('etag')!;
    expect((await fetch(`${remote.url}${path}`, { headers: { 'If-None-Match': etag } })).status).toBe(304);
    expect((await fetch(`${remote.url}${path}`, { headers: { Range: `bytes=${bytes.length + 5}-` } })).status).toBe(416);
    expect((await fetch(`${remote.url}data/forest/half/chm.pmtiles`)).status).toBe(404);
    expect((await fetch(`${remote.url}data/forest/2024-05-01/manifest.txt`)).status).toBe(404);
    expect((await fetch(`${remote.url}data/..%2Fforest/2024-05-01/chm.tif`)).status).toBe(404);
  });

  it('answers /api/point and /api/stats from the COG in S3 as from the file', async () => {
    const f = fx.runs[0]!.fixture;
    const [w, s, e, n] = f.bbox;
    for (const [fx_, fy] of [[0.2, 0.3], [0.5, 0.5], [0.8, 0.7]] as const) {
      const q = `api/point?run=forest/2024-05-01&lon=${w + (e - w) * fx_}&lat=${s + (n - s) * fy}`;
      const a = (await (await fetch(`${remote.url}${q}`)).json()) as PointResponse;
      const b = (await (await fetch(`${local.url}${q}`)).json()) as PointResponse;
      expect(a.inside).toBe(true);
      expect(a).toEqual(b);
    }
    const poly = { type: 'Polygon', coordinates: [[[w + (e - w) * 0.2, s + (n - s) * 0.2], [w + (e - w) * 0.7, s + (n - s) * 0.2], [w + (e - w) * 0.7, s + (n - s) * 0.6], [w + (e - w) * 0.2, s + (n - s) * 0.2]]] };
    const post = async (server: RunningServer): Promise<unknown> =>
      (await fetch(`${server.url}api/stats?run=forest/2025-06-11`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(poly) })).json();
    const a = (await post(remote)) as { pixels?: { valid: number } };
    expect(a.pixels?.valid).toBeGreaterThan(0);
    expect(a).toEqual(await post(local));
  });
});
