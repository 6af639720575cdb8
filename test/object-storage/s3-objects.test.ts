/**
 * Single-object operations of @geo-dino/storage against a real S3 server (SeaweedFS on loopback,
 * behind the fault proxy): what distributed runs keep their state with.
 *
 * Oracles: objects read back with the admin's SDK client and hashed here; ETags against md5s
 * computed here; the proxy's log for the requests made.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { GeoDinoError } from '@geo-dino/core';
import { copyObject, deleteObject, deletePrefix, downloadFile, putObject, uploadFile } from '@geo-dino/storage';
import { BUCKETS, startS3TestBed, type S3TestBed } from '../support/seaweedfs.js';

let bed: S3TestBed;
let dir: string;
const B = BUCKETS.private;
const url = (key: string): string => `s3://${B}/${key}`;
const RETRY = { retry: { backoffMs: 5 } };

async function getObject(key: string): Promise<Buffer> {
  const r = await bed.server.admin.send(new GetObjectCommand({ Bucket: B, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-s3-objects-'));
  bed = await startS3TestBed();
}, 120_000);

afterAll(async () => {
  await bed?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('object operations', () => {
  it('uploadFile: the bytes, an md5 ETag and the sha256 in the metadata', async () => {
    const bytes = randomBytes(200_000);
    const path = join(dir, 'a.tif');
    writeFileSync(path, bytes);
    const r = await uploadFile(path, url('objects/a.tif'), RETRY);
    expect(r.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect((await getObject('objects/a.tif')).equals(bytes)).toBe(true);
    const head = await bed.server.admin.send(new HeadObjectCommand({ Bucket: B, Key: 'objects/a.tif' }));
    expect(head.ETag?.replace(/"/g, '')).toBe(createHash('md5').update(bytes).digest('hex'));
    expect(head.Metadata?.['geo-dino-sha256']).toBe(r.sha256);
    const put = bed.proxy.log.find((l) => l.method === 'PUT' && l.path === `/${B}/objects/a.tif`);
    expect(put?.status).toBe(200);
  });

  it('putObject ifAbsent: the first write creates the object, a second one (other content) is refused and changes nothing', async () => {
    const first = Buffer.from('{"worker":"one"}\n');
    expect(await putObject(url('objects/ledger.json'), first, { ...RETRY, ifAbsent: true })).toBe(true);
    expect(await putObject(url('objects/ledger.json'), Buffer.from('{"worker":"two"}\n'), { ...RETRY, ifAbsent: true })).toBe(false);
    expect((await getObject('objects/ledger.json')).equals(first)).toBe(true);
    const answers = bed.proxy.log.filter((l) => l.method === 'PUT' && l.path === `/${B}/objects/ledger.json`).map((l) => l.status);
    expect(answers).toEqual([200, 412]);
    // Without ifAbsent a PUT replaces (S3's ordinary semantics).
    expect(await putObject(url('objects/ledger.json'), Buffer.from('x'), RETRY)).toBe(true);
    expect((await getObject('objects/ledger.json')).toString()).toBe('x');
  });

  it('downloadFile: written atomically, sha256 checked; a mismatch is an error naming the URL and leaves no file', async () => {
    const bytes = randomBytes(100_000);
    await bed.server.admin.send(new PutObjectCommand({ Bucket: B, Key: 'objects/d.bin', Body: bytes }));
    const sha = createHash('sha256').update(bytes).digest('hex');
    const out = join(dir, 'dl', 'd.bin');
    expect(await downloadFile(url('objects/d.bin'), out, { ...RETRY, sha256: sha })).toEqual({ bytes: bytes.length, sha256: sha });
    expect(readFileSync(out).equals(bytes)).toBe(true);
    const wrong = join(dir, 'dl', 'wrong.bin');
    const err = await downloadFile(url('objects/d.bin'), wrong, { ...RETRY, sha256: '0'.repeat(64) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GeoDinoError);
    expect((err as GeoDinoError).message).toBe(`${url('objects/d.bin')}: sha256 ${sha}, expected ${'0'.repeat(64)}: the object changed after it was recorded`);
    expect(existsSync(wrong)).toBe(false);
    expect(readdirSync(join(dir, 'dl'))).toEqual(['d.bin']);
    // A connection cut mid-body is retried.
    bed.proxy.cutMidBody(`/${B}/objects/d.bin`, 1);
    const again = join(dir, 'dl', 'again.bin');
    await downloadFile(url('objects/d.bin'), again, { ...RETRY, sha256: sha });
    expect(readFileSync(again).equals(bytes)).toBe(true);
    bed.proxy.clearFaults();
  });

  it('copyObject: copied on the server with the sha256; skipped when the destination holds the bytes; a source unlike its record is refused', async () => {
    const bytes = randomBytes(50_000);
    const sha = createHash('sha256').update(bytes).digest('hex');
    await bed.server.admin.send(new PutObjectCommand({ Bucket: B, Key: 'copy/src.tif', Body: bytes, Metadata: { 'geo-dino-sha256': sha } }));
    bed.proxy.clearFaults();
    expect(await copyObject(url('copy/src.tif'), url('copy/dest.tif'), { ...RETRY, sha256: sha, bytes: bytes.length })).toBe(true);
    expect((await getObject('copy/dest.tif')).equals(bytes)).toBe(true);
    const head = await bed.server.admin.send(new HeadObjectCommand({ Bucket: B, Key: 'copy/dest.tif' }));
    expect(head.Metadata?.['geo-dino-sha256']).toBe(sha);
    expect(head.ContentType).toBe('image/tiff; application=geotiff');
    expect(bed.proxy.log.filter((l) => l.method === 'PUT').map((l) => [l.path, l.copySource?.replace(/^\//, '')])).toEqual([[`/${B}/copy/dest.tif`, `${B}/copy/src.tif`]]);
    // Again: the destination already holds the bytes, nothing is written.
    expect(await copyObject(url('copy/src.tif'), url('copy/dest.tif'), { ...RETRY, sha256: sha, bytes: bytes.length })).toBe(false);
    expect(bed.proxy.log.filter((l) => l.method === 'PUT')).toHaveLength(1);
    const err = await copyObject(url('copy/src.tif'), url('copy/other.tif'), { ...RETRY, sha256: '1'.repeat(64), bytes: bytes.length }).catch((e: unknown) => e);
    expect((err as GeoDinoError).message).toBe(
      `${url('copy/src.tif')}: holds other bytes than recorded (${bytes.length} bytes, sha256 ${sha}; recorded ${bytes.length}, ${'1'.repeat(64)}); not copying it to ${url('copy/other.tif')}`,
    );
    await deleteObject(url('copy/dest.tif'), RETRY);
    await deleteObject(url('copy/never-there.tif'), RETRY);
    const left = await bed.server.admin.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'copy/' }));
    expect((left.Contents ?? []).map((c) => c.Key)).toEqual(['copy/src.tif']);
  });

  it('deletePrefix: every object under the prefix, nothing beside it (a sibling starting with the same name stays)', async () => {
    for (let i = 0; i < 25; i++) await bed.server.admin.send(new PutObjectCommand({ Bucket: B, Key: `del/state/${i}/x.json`, Body: '{}' }));
    await bed.server.admin.send(new PutObjectCommand({ Bucket: B, Key: 'del/statement.json', Body: '{}' }));
    expect(await deletePrefix(url('del/state'), RETRY)).toBe(25);
    const left = await bed.server.admin.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'del/' }));
    expect((left.Contents ?? []).map((c) => c.Key)).toEqual(['del/statement.json']);
    await expect(deletePrefix(`s3://${B}/`, RETRY)).rejects.toThrow(/refusing to delete a whole bucket/);
  });
});
