/**
 * Single objects: what distributed runs need to keep their shared state in object storage
 * (`geo-dino chm --queue … --out s3://…`, packages/chm `remote-shards.ts`).
 *
 * - `uploadFile`: one PUT of a local file with Content-MD5 (the server refuses a corrupted body)
 *   and its sha256 in the object's metadata (`geo-dino-sha256`, as `publishDirectory` writes).
 * - `putObject`: bytes, optionally only when the key does not exist (`If-None-Match: *`, S3's
 *   conditional write): the answer says whether this call created the object.
 * - `downloadFile`: an object into a local file (atomically), its sha256 checked against the
 *   expected one.
 * - `copyObject`: an object to another key on the server (CopyObject), unless the destination
 *   already holds the same bytes (sha256 metadata and size).
 * - `deleteObject`, `deletePrefix`: one object; every object under a prefix (state left behind
 *   once a run is published).
 *
 * Every request runs inside core's `retrying` with the SDK's retries off (s3.ts).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { dirname } from 'node:path';
import { CopyObjectCommand, DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { GeoDinoError, ensureDir, openAtomic, retrying, silentLogger, throwIfAborted, type Logger, type RetryOptions } from '@geo-dino/core';
import { contentType, hashFile, SHA256_METADATA } from './publish.js';
import { parseS3Url, requesterPaysParam, s3Client, s3Failure, s3Head, s3List, s3RetryPolicy, s3Send, s3Url, type S3Handle, type S3Settings } from './s3.js';

export interface ObjectOptions {
  s3?: S3Settings;
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  signal?: AbortSignal;
  retry?: Omit<RetryOptions, 'signal' | 'onRetry'>;
}

async function send<T>(h: S3Handle, url: string, o: ObjectOptions, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  return s3Send(h, url, s3RetryPolicy(o), fn);
}

const rp = requesterPaysParam;

export interface UploadedObject {
  url: string;
  bytes: number;
  sha256: string;
}

/** PUT a local file (see the module comment). Files up to 5 GiB (S3's single-PUT limit). */
export async function uploadFile(path: string, url: string, o: ObjectOptions = {}): Promise<UploadedObject> {
  const { bucket, key } = parseS3Url(url);
  const h = await s3Client(o.s3, o.log ?? silentLogger(), o.env);
  const f = await hashFile(path, o.signal);
  if (f.size > 5 * 1024 ** 3) throw new GeoDinoError('E_LIMIT', `${path}: ${f.size} bytes is over S3's 5 GiB limit of one PUT`, { details: { path, url } });
  await send(h, url, o, (s) =>
    h.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: createReadStream(path),
        ContentLength: f.size,
        ContentMD5: f.md5.toString('base64'),
        ContentType: contentType(path),
        Metadata: { [SHA256_METADATA]: f.sha256 },
        ...rp(h),
      }),
      { abortSignal: s },
    ),
  );
  return { url, bytes: f.size, sha256: f.sha256 };
}

/**
 * PUT bytes. With `ifAbsent`, only when no object has the key (`If-None-Match: *`): returns false
 * when one exists (HTTP 412), true when this call created it. A 409 (a conditional write racing
 * another, as AWS answers it) is an error: the caller's job is retried.
 */
export async function putObject(url: string, body: Uint8Array, o: ObjectOptions & { ifAbsent?: boolean; contentType?: string } = {}): Promise<boolean> {
  const { bucket, key } = parseS3Url(url);
  const h = await s3Client(o.s3, o.log ?? silentLogger(), o.env);
  const md5 = createHash('md5').update(body).digest('base64');
  const sha = createHash('sha256').update(body).digest('hex');
  try {
    await send(h, url, o, (s) =>
      h.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentLength: body.length,
          ContentMD5: md5,
          ContentType: o.contentType ?? contentType(key),
          Metadata: { [SHA256_METADATA]: sha },
          ...(o.ifAbsent ? { IfNoneMatch: '*' } : {}),
          ...rp(h),
        }),
        { abortSignal: s },
      ),
    );
    return true;
  } catch (err) {
    const status = err instanceof GeoDinoError ? err.details['status'] : undefined;
    if (o.ifAbsent && status === 412) return false;
    throw err;
  }
}

/** GET an object into `path` (written atomically); its sha256 must be `sha256` when given. */
export async function downloadFile(url: string, path: string, o: ObjectOptions & { sha256?: string } = {}): Promise<{ bytes: number; sha256: string }> {
  const { bucket, key } = parseS3Url(url);
  const h = await s3Client(o.s3, o.log ?? silentLogger(), o.env);
  await ensureDir(dirname(path));
  const got = await retrying(url, s3RetryPolicy(o), async (s) => {
    const file = await openAtomic(path);
    try {
      let res;
      try {
        res = await h.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...rp(h) }), { abortSignal: s });
      } catch (err) {
        throw s3Failure(err, url, h);
      }
      const sha = createHash('sha256');
      let bytes = 0;
      for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
        sha.update(chunk);
        bytes += chunk.length;
        await file.write(chunk);
      }
      if (res.ContentLength !== undefined && bytes !== res.ContentLength) throw new Error(`body cut at ${bytes} of ${res.ContentLength} bytes`);
      const hex = sha.digest('hex');
      if (o.sha256 && hex !== o.sha256) {
        throw new GeoDinoError('E_WRITE', `${url}: sha256 ${hex}, expected ${o.sha256}: the object changed after it was recorded`, { details: { url, path } });
      }
      await file.commit();
      return { bytes, sha256: hex };
    } catch (err) {
      await file.abort();
      throw err;
    }
  });
  return got;
}

/** Delete every object under `s3://bucket/prefix/` (1000 keys a request); returns how many. */
export async function deletePrefix(prefixUrl: string, o: ObjectOptions = {}): Promise<number> {
  const { bucket, key } = parseS3Url(prefixUrl);
  const prefix = key.endsWith('/') ? key : key + '/';
  if (prefix === '/') throw new GeoDinoError('E_ARGUMENT', `${prefixUrl}: refusing to delete a whole bucket`, { details: { url: prefixUrl } });
  const h = await s3Client(o.s3, o.log ?? silentLogger(), o.env);
  const listed = await s3List(s3Url(bucket, prefix), { ...s3RetryPolicy(o), ...(o.s3 ? { s3: o.s3 } : {}), ...(o.env ? { env: o.env } : {}), ...(o.log ? { log: o.log } : {}) });
  let n = 0;
  for (let i = 0; i < listed.length; i += 1000) {
    throwIfAborted(o.signal);
    const batch = listed.slice(i, i + 1000);
    const res = await send(h, s3Url(bucket, prefix), o, (s) =>
      h.client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((e) => ({ Key: e.key })), Quiet: true }, ...rp(h) }), { abortSignal: s }),
    );
    if (res.Errors?.length) {
      const e = res.Errors[0]!;
      throw new GeoDinoError('E_WRITE', `${s3Url(bucket, e.Key ?? prefix)}: cannot delete: ${e.Code ?? ''} ${e.Message ?? ''}`.trim(), { details: { url: prefixUrl } });
    }
    n += batch.length;
  }
  return n;
}

/**
 * Copy `src` to `dest` on the server (same endpoint; objects up to 5 GiB), with `sha256` in the
 * destination's metadata; nothing is written when `dest` already has that sha256 and size.
 * Returns whether a copy was made.
 */
export async function copyObject(src: string, dest: string, o: ObjectOptions & { sha256: string; bytes: number }): Promise<boolean> {
  const s = parseS3Url(src);
  const d = parseS3Url(dest);
  const h = await s3Client(o.s3, o.log ?? silentLogger(), o.env);
  const read = { ...s3RetryPolicy(o), ...(o.s3 ? { s3: o.s3 } : {}), ...(o.env ? { env: o.env } : {}), ...(o.log ? { log: o.log } : {}) };
  const there = await s3Head(dest, read);
  if (there && there.size === o.bytes && there.metadata[SHA256_METADATA] === o.sha256) return false;
  const source = await s3Head(src, read);
  if (!source || source.size !== o.bytes || source.metadata[SHA256_METADATA] !== o.sha256) {
    throw new GeoDinoError('E_WRITE', `${src}: ${source ? `holds other bytes than recorded (${source.size} bytes, sha256 ${source.metadata[SHA256_METADATA] ?? 'unknown'}; recorded ${o.bytes}, ${o.sha256})` : 'missing'}; not copying it to ${dest}`, { details: { url: src } });
  }
  await send(h, dest, o, (signal) =>
    h.client.send(
      new CopyObjectCommand({
        Bucket: d.bucket,
        Key: d.key,
        CopySource: `${s.bucket}/${s.key.split('/').map(encodeURIComponent).join('/')}`,
        MetadataDirective: 'REPLACE',
        ContentType: contentType(d.key),
        Metadata: { [SHA256_METADATA]: o.sha256 },
        ...rp(h),
      }),
      { abortSignal: signal },
    ),
  );
  const copied = await s3Head(dest, read);
  const md5 = (etag: string | null): string | null => (etag && /^"?[0-9a-f]{32}"?$/.test(etag) ? etag.replace(/"/g, '') : null);
  const bad = !copied ? 'missing' : copied.size !== o.bytes ? `${copied.size} bytes, expected ${o.bytes}` : md5(copied.etag) && md5(source.etag) && md5(copied.etag) !== md5(source.etag) ? `ETag ${copied.etag}, the source's ${source.etag}` : null;
  if (bad) throw new GeoDinoError('E_WRITE', `${dest}: copy of ${src}: ${bad}`, { details: { url: dest } });
  return true;
}

/** Delete one object (no error when it does not exist). */
export async function deleteObject(url: string, o: ObjectOptions = {}): Promise<void> {
  const { bucket, key } = parseS3Url(url);
  const h = await s3Client(o.s3, o.log ?? silentLogger(), o.env);
  await send(h, url, o, (s) => h.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, ...rp(h) }), { abortSignal: s }));
}
