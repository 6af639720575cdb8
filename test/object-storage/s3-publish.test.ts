/**
 * Publishing a completed run directory to a real S3 server (SeaweedFS on loopback, behind the
 * fault proxy): nested folders (the sharded layout's shards/…), multipart for large files,
 * manifest.json last with STAC `file:checksum`, resume after an interruption, refusal when a STAC
 * document's checksum disagrees with its file.
 *
 * Oracles: every object read back from the server equals the local file byte for byte, and the
 * manifest's checksums equal sha256 multihashes computed here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { GeoDinoError } from '@geo-dino/core';
import { publishDirectory, readManifest } from '@geo-dino/storage';
import { BUCKETS, startS3TestBed, type S3TestBed, type S3TestServer } from '../support/seaweedfs.js';
import type { S3FaultProxy } from '../support/s3-fault-proxy.js';

let bed: S3TestBed;
let server: S3TestServer;
let proxy: S3FaultProxy;
let dir: string;
const MiB = 1024 * 1024;

function multihash(bytes: Buffer): string {
  return '1220' + createHash('sha256').update(bytes).digest('hex');
}

/** A run-like directory: top-level files, an item.json with file:checksum, nested shards, one 13 MiB file. */
function makeRun(root: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const put = (path: string, bytes: Buffer): void => {
    mkdirSync(join(root, ...path.split('/').slice(0, -1)), { recursive: true });
    writeFileSync(join(root, path), bytes);
    files.set(path, bytes);
  };
  put('chm.tif', randomBytes(300_000));
  put('run.json', Buffer.from(JSON.stringify({ status: 'complete' })));
  put('shards/32637/0_0/chm.tif', randomBytes(13 * MiB + 12345));
  put('shards/32637/0_1/chm.tif', randomBytes(70_000));
  put('shards/32637/0_1/item.json', Buffer.from(JSON.stringify({ type: 'Feature', assets: { chm: { href: './chm.tif', 'file:checksum': multihash(files.get('shards/32637/0_1/chm.tif')!) } } })));
  put('item.json', Buffer.from(JSON.stringify({ type: 'Feature', assets: { chm: { href: './chm.tif', 'file:checksum': multihash(files.get('chm.tif')!) } } })));
  return files;
}

async function getObject(bucket: string, key: string): Promise<Buffer> {
  const r = await server.admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

async function keys(bucket: string, prefix: string): Promise<string[]> {
  const r = await server.admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (r.Contents ?? []).map((c) => c.Key!).sort();
}

const OPTS = { multipartThresholdBytes: 5 * MiB, partBytes: 5 * MiB, retry: { backoffMs: 5 } };

beforeAll(async () => {
  bed = await startS3TestBed();
  ({ server, proxy } = bed);
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-publish-'));
}, 120_000);

afterAll(async () => {
  await bed?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('publishDirectory', () => {
  it('uploads a nested run (multipart for large files), verifies it, and writes the manifest last', async () => {
    const local = join(dir, 'run-a');
    const files = makeRun(local);
    proxy.clearFaults();
    // A throttled part and a throttled small PUT are retried.
    proxy.slowDown(`/${BUCKETS.private}/runs/a/shards/32637/0_0/chm.tif`, 2);
    proxy.slowDown(`/${BUCKETS.private}/runs/a/run.json`, 1);
    const res = await publishDirectory(local, `s3://${BUCKETS.private}/runs/a`, OPTS);
    expect(res.files.map((f) => f.path)).toEqual([...files.keys()].sort());
    expect(res.files.find((f) => f.path === 'shards/32637/0_0/chm.tif')!.multipart).toBe(true);
    expect(proxy.log.filter((l) => l.fault === 'slowdown')).toHaveLength(3);
    // Multipart: several UploadPart requests (partNumber in the query) for the large file.
    expect(proxy.log.filter((l) => l.method === 'PUT' && l.path === `/${BUCKETS.private}/runs/a/shards/32637/0_0/chm.tif` && l.status === 200).length).toBeGreaterThanOrEqual(3);
    // The manifest was the last object written.
    const puts = proxy.log.filter((l) => l.method === 'PUT' || l.method === 'POST');
    expect(puts[puts.length - 1]!.path).toBe(`/${BUCKETS.private}/runs/a/manifest.json`);

    expect(await keys(BUCKETS.private, 'runs/a/')).toEqual([...[...files.keys()].map((k) => `runs/a/${k}`), 'runs/a/manifest.json'].sort());
    for (const [path, bytes] of files) {
      expect((await getObject(BUCKETS.private, `runs/a/${path}`)).equals(bytes), path).toBe(true);
    }
    const manifest = await readManifest(`s3://${BUCKETS.private}/runs/a/`);
    expect(manifest).not.toBeNull();
    for (const f of manifest!.files) {
      expect(f['file:checksum']).toBe(multihash(files.get(f.path)!));
      expect(f['file:size']).toBe(files.get(f.path)!.length);
    }
    const head = await server.admin.send(new HeadObjectCommand({ Bucket: BUCKETS.private, Key: 'runs/a/chm.tif' }));
    expect(head.Metadata?.['geo-dino-sha256']).toBe(multihash(files.get('chm.tif')!).slice(4));

    // Publishing again sends nothing but the manifest.
    const again = await publishDirectory(local, `s3://${BUCKETS.private}/runs/a`, OPTS);
    expect(again.files.every((f) => !f.uploaded)).toBe(true);
    expect(again.uploadedBytes).toBe(0);
  });

  it('sources: a file equal to an object already in the store is copied on the server; one that differs is uploaded', async () => {
    const local = join(dir, 'run-src');
    const files = makeRun(local);
    const chm = files.get('chm.tif')!;
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    await server.admin.send(new PutObjectCommand({ Bucket: BUCKETS.private, Key: 'elsewhere/chm.tif', Body: chm }));
    await server.admin.send(new PutObjectCommand({ Bucket: BUCKETS.private, Key: 'elsewhere/run.json', Body: 'other bytes' }));
    proxy.clearFaults();
    const sources = new Map([
      ['chm.tif', { url: `s3://${BUCKETS.private}/elsewhere/chm.tif`, sha256: sha(chm), bytes: chm.length }],
      // Recorded with another checksum than the local file: not copied.
      ['run.json', { url: `s3://${BUCKETS.private}/elsewhere/run.json`, sha256: sha(Buffer.from('other bytes')), bytes: 11 }],
    ]);
    const res = await publishDirectory(local, `s3://${BUCKETS.private}/runs/src`, { ...OPTS, sources });
    expect(res.files.filter((f) => f.copied).map((f) => f.path)).toEqual(['chm.tif']);
    const put = (key: string) => proxy.log.filter((l) => l.method === 'PUT' && l.path === `/${BUCKETS.private}/runs/src/${key}` && l.status === 200);
    expect(put('chm.tif').map((l) => l.copySource?.replace(/^\//, ''))).toEqual([`${BUCKETS.private}/elsewhere/chm.tif`]);
    expect(put('run.json').map((l) => l.copySource)).toEqual([null]);
    for (const [path, bytes] of files) expect((await getObject(BUCKETS.private, `runs/src/${path}`)).equals(bytes), path).toBe(true);
    const head = await server.admin.send(new HeadObjectCommand({ Bucket: BUCKETS.private, Key: 'runs/src/chm.tif' }));
    expect(head.Metadata?.['geo-dino-sha256']).toBe(sha(chm));
    expect(head.ContentType).toBe('image/tiff; application=geotiff');
  });

  it('an interrupted publish leaves no manifest; the next one aborts leftover uploads and completes', async () => {
    const local = join(dir, 'run-b');
    const files = makeRun(local);
    const controller = new AbortController();
    proxy.clearFaults();
    // Abort as soon as the first part of the large file has gone up.
    const timer = setInterval(() => {
      if (proxy.log.some((l) => l.method === 'PUT' && l.path.endsWith('0_0/chm.tif') && l.status === 200)) controller.abort();
    }, 1);
    const err = await publishDirectory(local, `s3://${BUCKETS.private}/runs/b`, { ...OPTS, signal: controller.signal }).catch((e: unknown) => e);
    clearInterval(timer);
    expect(err).toBeInstanceOf(GeoDinoError);
    expect((err as GeoDinoError).code).toBe('E_CANCELLED');
    expect(await readManifest(`s3://${BUCKETS.private}/runs/b`)).toBeNull();
    expect(await keys(BUCKETS.private, 'runs/b/')).not.toContain('runs/b/manifest.json');
    // The large file is not visible: its multipart upload was never completed.
    expect(await keys(BUCKETS.private, 'runs/b/')).not.toContain('runs/b/shards/32637/0_0/chm.tif');

    await publishDirectory(local, `s3://${BUCKETS.private}/runs/b`, OPTS);
    const uploads = await server.admin.send(new ListMultipartUploadsCommand({ Bucket: BUCKETS.private, Prefix: 'runs/b/' }));
    expect(uploads.Uploads ?? []).toHaveLength(0);
    for (const [path, bytes] of files) expect((await getObject(BUCKETS.private, `runs/b/${path}`)).equals(bytes), path).toBe(true);
    expect(await readManifest(`s3://${BUCKETS.private}/runs/b`)).not.toBeNull();
  });

  it('an ETag that is not an MD5 (SSE-KMS) is verified by reading the object back; a corrupt read-back fails the publish', async () => {
    const local = join(dir, 'run-e');
    makeRun(local);
    proxy.clearFaults();
    proxy.foreignEtag(`/${BUCKETS.private}/runs/e/chm.tif`, 100);
    const res = await publishDirectory(local, `s3://${BUCKETS.private}/runs/e`, OPTS);
    expect(res.files.find((f) => f.path === 'chm.tif')!.uploaded).toBe(true);
    expect(proxy.log.some((l) => l.fault === 'etag')).toBe(true);
    expect(proxy.log.some((l) => l.method === 'GET' && l.path === `/${BUCKETS.private}/runs/e/chm.tif`)).toBe(true);
    expect(await readManifest(`s3://${BUCKETS.private}/runs/e`)).not.toBeNull();

    const other = join(dir, 'run-f');
    makeRun(other);
    proxy.clearFaults();
    proxy.foreignEtag(`/${BUCKETS.private}/runs/f/chm.tif`, 100);
    proxy.corruptBody(`/${BUCKETS.private}/runs/f/chm.tif`, 100);
    const err = await publishDirectory(other, `s3://${BUCKETS.private}/runs/f`, OPTS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GeoDinoError);
    expect((err as GeoDinoError).code).toBe('E_WRITE');
    expect((err as GeoDinoError).message).toMatch(new RegExp(`^s3://${BUCKETS.private}/runs/f/chm\\.tif: verification after upload failed: read back sha256 [0-9a-f]{64}, expected [0-9a-f]{64}$`));
    expect(await readManifest(`s3://${BUCKETS.private}/runs/f`)).toBeNull();
  });

  it('requester pays: every publish request says who pays', async () => {
    const local = join(dir, 'run-g');
    makeRun(local);
    proxy.clearFaults();
    bed.use(bed.admin(), { requesterPays: true });
    try {
      await publishDirectory(local, `s3://${BUCKETS.requesterPays}/runs/g`, OPTS);
    } finally {
      bed.use(bed.admin());
    }
    const reqs = proxy.log.filter((l) => l.path.startsWith(`/${BUCKETS.requesterPays}/`));
    expect(reqs.length).toBeGreaterThan(10);
    expect(reqs.every((l) => l.requestPayer && l.fault === null)).toBe(true);
    expect(await keys(BUCKETS.requesterPays, 'runs/g/')).toContain('runs/g/manifest.json');
  });

  it('a run whose item.json checksum disagrees with its file is not published', async () => {
    const local = join(dir, 'run-c');
    makeRun(local);
    writeFileSync(join(local, 'shards', '32637', '0_1', 'chm.tif'), randomBytes(70_000));
    proxy.clearFaults();
    const err = await publishDirectory(local, `s3://${BUCKETS.private}/runs/c`, OPTS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GeoDinoError);
    expect((err as GeoDinoError).message).toContain(`${join(local, 'shards/32637/0_1/item.json')}: assets.chm: file:checksum`);
    expect(await keys(BUCKETS.private, 'runs/c/')).toEqual([]);
  });

  it('a missing bucket fails with one clear error before anything is uploaded', async () => {
    const local = join(dir, 'run-d');
    makeRun(local);
    const err = await publishDirectory(local, 's3://gd-no-such-bucket/runs/d', OPTS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GeoDinoError);
    expect((err as GeoDinoError).message).toMatch(/^s3:\/\/gd-no-such-bucket\/runs\/d\/manifest\.json: bucket "gd-no-such-bucket" does not exist/);
    expect((err as GeoDinoError).message).not.toContain(server.secretAccessKey);
    expect(readFileSync(join(local, 'run.json'), 'utf8')).toContain('complete');
  });
});
