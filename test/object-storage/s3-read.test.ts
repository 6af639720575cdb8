/**
 * Reading imagery and STAC documents from a real S3 server: SeaweedFS on loopback
 * (test/support/seaweedfs.ts), behind a fault proxy for requester pays, 503 SlowDown and
 * connection cuts (test/support/s3-fault-proxy.ts).
 *
 * Oracles: the local file's bytes (ranged reads must equal them byte for byte) and GDAL's read of
 * the local file (decoded pixels); errors must name the s3:// URL and never contain the secret key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GeoDinoError } from '@geo-dino/core';
import { readJsonDocument, detectImagerySource } from '@geo-dino/stac';
import type { S3Settings } from '@geo-dino/storage';
import { openByteSource, openRaster, type HttpOptions } from '@geo-dino/tiling';
import { sharedData } from '../support/shared-data.js';
import { requireGdal } from '../support/tools.js';
import { runCli } from '../support/cli.js';
import { BUCKETS, CLEAN_AWS_ENV, startS3TestBed, type S3TestBed, type S3TestServer } from '../support/seaweedfs.js';
import type { S3FaultProxy } from '../support/s3-fault-proxy.js';
import { rng } from '../support/rng.js';
import { diff, gdalRead } from '../../tiling/test/support/gdal.js';

const COGEO = sharedData('rasterio', 'cogeo.tif');
const LOCAL = readFileSync(COGEO);
const KEY = 'imagery/cogeo.tif';
const FAST: HttpOptions = { timeoutMs: 5000, retries: 4, backoffMs: 5 };

let bed: S3TestBed;
let server: S3TestServer;
let proxy: S3FaultProxy;
const use = (creds: { id: string; secret: string } | null, settings?: S3Settings): void => bed.use(creds, settings);
const admin = (): { id: string; secret: string } => bed.admin();

beforeAll(async () => {
  requireGdal();
  bed = await startS3TestBed();
  ({ server, proxy } = bed);
  for (const bucket of Object.values(BUCKETS)) {
    await server.admin.send(new PutObjectCommand({ Bucket: bucket, Key: KEY, Body: LOCAL }));
  }
  const item = {
    type: 'Feature',
    stac_version: '1.1.0',
    id: 'cogeo',
    geometry: { type: 'Polygon', coordinates: [[[128.65, 37.66], [128.67, 37.66], [128.67, 37.68], [128.65, 37.68], [128.65, 37.66]]] },
    bbox: [128.65, 37.66, 128.67, 37.68],
    properties: { datetime: '2020-01-01T00:00:00Z' },
    links: [],
    assets: { visual: { href: '../imagery/cogeo.tif', type: 'image/tiff; application=geotiff; profile=cloud-optimized', roles: ['visual'] } },
  };
  await server.admin.send(new PutObjectCommand({ Bucket: BUCKETS.private, Key: 'stac/item.json', Body: JSON.stringify(item) }));
}, 120_000);

afterAll(async () => {
  await bed?.close();
});

async function readAllBytes(url: string, http: HttpOptions = FAST): Promise<Uint8Array> {
  const src = await openByteSource(url, { http });
  try {
    return await src.read(0, src.size, 'whole file');
  } finally {
    await src.close();
  }
}

async function expectError(p: Promise<unknown>): Promise<GeoDinoError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GeoDinoError);
  const g = err as GeoDinoError;
  expect(g.message).not.toContain(server.secretAccessKey);
  expect(JSON.stringify(g.details)).not.toContain(server.secretAccessKey);
  return g;
}

describe('ranged reads from S3', () => {
  it('random ranges and the whole object equal the local file byte for byte', async () => {
    use(admin());
    const src = await openByteSource(`s3://${BUCKETS.private}/${KEY}`, { http: FAST });
    try {
      expect(src.size).toBe(LOCAL.length);
      const rnd = rng(16);
      for (let i = 0; i < 40; i++) {
        const offset = Math.floor(rnd() * LOCAL.length);
        const length = Math.min(LOCAL.length - offset, 1 + Math.floor(rnd() * 300_000));
        const got = await src.read(offset, length, 'random range');
        expect(Buffer.from(got).equals(LOCAL.subarray(offset, offset + length)), `bytes ${offset}+${length}`).toBe(true);
      }
      const many = await src.readMany([{ offset: 10, length: 100 }, { offset: 5000, length: 7000 }, { offset: LOCAL.length - 50, length: 50 }], 'several');
      expect(Buffer.from(many[1]!).equals(LOCAL.subarray(5000, 12000))).toBe(true);
      expect(Buffer.from(many[2]!).equals(LOCAL.subarray(LOCAL.length - 50))).toBe(true);
      await expect(src.read(LOCAL.length - 10, 20, 'past the end')).rejects.toThrow(/past the end of the file/);
    } finally {
      await src.close();
    }
    // Every request was a ranged GET of the object.
    expect(proxy.log.some((l) => l.path === `/${BUCKETS.private}/${KEY}`)).toBe(true);
  });

  it('a COG decoded from S3 equals GDAL reading the local file, full resolution and overview', async () => {
    use(admin());
    const src = await openRaster(`s3://${BUCKETS.private}/${KEY}`, { http: FAST });
    try {
      const { width, height } = src.info;
      const d = await src.read({ x: 0, y: 0, width, height });
      const ref = gdalRead(COGEO, [0, 0, width, height]);
      d.bands.forEach((b, i) => expect(diff(b, ref.bands[i]!).count, `band ${i + 1}`).toBe(0));
      expect(diff(d.valid, ref.valid).count).toBe(0);
      const o = await src.read({ x: 0, y: 0, width: 128, height: 128 }, { level: 3 });
      const refO = gdalRead(COGEO, [0, 0, 128, 128], { level: 3 });
      o.bands.forEach((b, i) => expect(diff(b, refO.bands[i]!).count).toBe(0));
    } finally {
      await src.close();
    }
  });

  it('a public bucket reads anonymously (--no-sign-request, and when no credentials exist)', async () => {
    use(admin(), { anonymous: true });
    expect(Buffer.from(await readAllBytes(`s3://${BUCKETS.public}/${KEY}`)).equals(LOCAL)).toBe(true);
    use(null);
    expect(Buffer.from(await readAllBytes(`s3://${BUCKETS.public}/${KEY}`)).equals(LOCAL)).toBe(true);
    // ... and an anonymous read of the private bucket is refused with a hint.
    const err = await expectError(readAllBytes(`s3://${BUCKETS.private}/${KEY}`));
    expect(err.code).toBe('E_ACCESS_DENIED');
    expect(err.message).toContain(`s3://${BUCKETS.private}/${KEY}: access denied`);
    expect(err.message).toMatch(/requests were unsigned/);
  });

  it('wrong credentials: one clear error naming the URL, secret not shown, no retries', async () => {
    use({ id: server.accessKeyId, secret: 'not-the-secret-' + server.secretAccessKey.slice(0, 4) });
    proxy.clearFaults();
    const err = await expectError(readAllBytes(`s3://${BUCKETS.private}/${KEY}`));
    expect(err.code).toBe('E_ACCESS_DENIED');
    expect(err.message.split('\n')).toHaveLength(1);
    expect(err.message).toContain(`s3://${BUCKETS.private}/${KEY}: access denied (HTTP 403`);
    expect(err.message).toContain('check the AWS credentials');
    expect(proxy.log.filter((l) => l.path === `/${BUCKETS.private}/${KEY}`)).toHaveLength(1);
    use({ id: 'GDNOSUCHKEY0000000', secret: 'whatever-secret-value' });
    const unknown = await expectError(readAllBytes(`s3://${BUCKETS.private}/${KEY}`));
    expect(unknown.code).toBe('E_ACCESS_DENIED');
    expect(unknown.message).not.toContain('whatever-secret-value');
  });

  it('credentials from the chain: a shared credentials file and AWS_PROFILE (no keys in the environment)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'geo-dino-aws-'));
    try {
      const file = join(dir, 'credentials');
      writeFileSync(file, `[default]\naws_access_key_id = GDWRONGDEFAULT000\naws_secret_access_key = wrong\n\n[gdtest]\naws_access_key_id = ${server.accessKeyId}\naws_secret_access_key = ${server.secretAccessKey}\n`);
      const env = { ...CLEAN_AWS_ENV, AWS_SHARED_CREDENTIALS_FILE: file, AWS_PROFILE: 'gdtest' };
      const ok = await runCli(['--json', 'raster', 'info', `s3://${BUCKETS.private}/${KEY}`, '--s3-endpoint', proxy.endpoint], { env });
      expect(ok.code, ok.stderr).toBe(0);
      expect((JSON.parse(ok.stdout) as { width: number }).width).toBe(1024);
      // The default profile's keys are refused: the profile was what made the first call work.
      const denied = await runCli(['raster', 'info', `s3://${BUCKETS.private}/${KEY}`, '--s3-endpoint', proxy.endpoint], { env: { ...env, AWS_PROFILE: 'default' } });
      expect(denied.code).toBe(1);
      expect(denied.stderr).toContain(`s3://${BUCKETS.private}/${KEY}: access denied`);
      expect(denied.stderr).not.toContain(server.secretAccessKey);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('missing bucket and missing key: E_FILE_NOT_FOUND naming the URL', async () => {
    use(admin());
    const nb = await expectError(readAllBytes(`s3://gd-no-such-bucket/${KEY}`));
    expect(nb.code).toBe('E_FILE_NOT_FOUND');
    expect(nb.message).toBe(`s3://gd-no-such-bucket/${KEY}: bucket "gd-no-such-bucket" does not exist at ${proxy.endpoint} (NoSuchBucket)`);
    const nk = await expectError(readAllBytes(`s3://${BUCKETS.private}/imagery/missing.tif`));
    expect(nk.code).toBe('E_FILE_NOT_FOUND');
    expect(nk.message).toBe(`s3://${BUCKETS.private}/imagery/missing.tif: no such object at ${proxy.endpoint} (NoSuchKey)`);
  });

  it('503 SlowDown is retried with backoff; when it persists, E_NETWORK names the URL', async () => {
    use(admin());
    proxy.clearFaults();
    proxy.slowDown(`/${BUCKETS.private}/${KEY}`, 3);
    expect(Buffer.from(await readAllBytes(`s3://${BUCKETS.private}/${KEY}`)).equals(LOCAL)).toBe(true);
    expect(proxy.log.filter((l) => l.fault === 'slowdown')).toHaveLength(3);
    proxy.clearFaults();
    proxy.slowDown(`/${BUCKETS.private}/${KEY}`, 100);
    const err = await expectError(readAllBytes(`s3://${BUCKETS.private}/${KEY}`, { ...FAST, retries: 2 }));
    expect(err.code).toBe('E_NETWORK');
    expect(err.message).toBe(`s3://${BUCKETS.private}/${KEY}: failed after 3 attempts: HTTP 503 SlowDown`);
    proxy.clearFaults();
  });

  it('a connection cut mid-object is retried and the bytes are right; when it persists, E_NETWORK names the URL', async () => {
    use(admin());
    proxy.clearFaults();
    const src = await openByteSource(`s3://${BUCKETS.private}/${KEY}`, { http: FAST });
    try {
      proxy.cutMidBody(`/${BUCKETS.private}/${KEY}`, 2);
      const got = await src.read(1000, 250_000, 'large range');
      expect(Buffer.from(got).equals(LOCAL.subarray(1000, 251_000))).toBe(true);
      expect(proxy.log.filter((l) => l.fault === 'cut')).toHaveLength(2);
    } finally {
      await src.close();
    }
    proxy.clearFaults();
    const src2 = await openByteSource(`s3://${BUCKETS.private}/${KEY}`, { http: { ...FAST, retries: 1 } });
    try {
      proxy.cutMidBody(`/${BUCKETS.private}/${KEY}`, 100);
      const err = await expectError(src2.read(1000, 250_000, 'large range'));
      expect(err.code).toBe('E_NETWORK');
      expect(err.message).toMatch(new RegExp(`^s3://${BUCKETS.private}/${KEY}: failed after 2 attempts: `));
    } finally {
      await src2.close();
      proxy.clearFaults();
    }
  });

  it('requester pays: refused without --s3-requester-pays (with the hint), read with it', async () => {
    use(admin());
    proxy.clearFaults();
    const err = await expectError(readAllBytes(`s3://${BUCKETS.requesterPays}/${KEY}`));
    expect(err.code).toBe('E_ACCESS_DENIED');
    expect(err.message).toContain('--s3-requester-pays');
    use(admin(), { requesterPays: true });
    proxy.clearFaults();
    expect(Buffer.from(await readAllBytes(`s3://${BUCKETS.requesterPays}/${KEY}`)).equals(LOCAL)).toBe(true);
    const reqs = proxy.log.filter((l) => l.path.startsWith(`/${BUCKETS.requesterPays}/`));
    expect(reqs.length).toBeGreaterThan(0);
    expect(reqs.every((l) => l.requestPayer && l.fault === null)).toBe(true);
  });

  it('STAC documents in S3: an Item is read and its relative asset resolves to an s3:// href', async () => {
    use(admin());
    const doc = (await readJsonDocument(`s3://${BUCKETS.private}/stac/item.json`)) as { id: string };
    expect(doc.id).toBe('cogeo');
    const src = await detectImagerySource(`s3://${BUCKETS.private}/stac/item.json`);
    expect(src.kind).toBe('stac-item');
    const raster = await detectImagerySource(`s3://${BUCKETS.private}/${KEY}`);
    expect(raster).toEqual({ kind: 'raster', href: `s3://${BUCKETS.private}/${KEY}` });
  });
});
