/**
 * Random access to the bytes of a file, local or remote, with bounds checks: a read past the end
 * of the file is an error naming the file and what was being read, never silent zeros.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { fsError, isHttpUrl, throwIfAborted, type Logger } from '@geo-dino/core';
import { badRaster } from '../errors.js';
import { isS3Url } from '@geo-dino/storage';
import { HttpByteSource, S3ByteSource, type HttpSourceOptions } from './http-source.js';
import { checkRange, type ByteRange, type ByteSource } from './range.js';

export type { ByteRange, ByteSource } from './range.js';
export { checkRange } from './range.js';

export class LocalByteSource implements ByteSource {
  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<LocalByteSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      throw fsError(err, path, 'open');
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw badRaster(path, 'not a regular file');
      return new LocalByteSource(path, st.size, handle);
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  async read(offset: number, length: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    checkRange(this.name, this.size, offset, length, what);
    const buf = new Uint8Array(length);
    let done = 0;
    try {
      while (done < length) {
        const { bytesRead } = await this.handle.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } catch (err) {
      throw fsError(err, this.name, 'read');
    }
    if (done !== length) {
      throw badRaster(this.name, `${what}: file shrank while reading (got ${done} of ${length} bytes at offset ${offset})`);
    }
    return buf;
  }

  async readMany(ranges: readonly ByteRange[], what: string, signal?: AbortSignal): Promise<Uint8Array[]> {
    return Promise.all(ranges.map((r) => this.read(r.offset, r.length, what, signal)));
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

/** A whole file already in memory (tests, small remote files from servers without Range support). */
export class MemoryByteSource implements ByteSource {
  readonly size: number;
  constructor(
    readonly name: string,
    private readonly bytes: Uint8Array,
  ) {
    this.size = bytes.length;
  }
  async read(offset: number, length: number, what: string, signal?: AbortSignal): Promise<Uint8Array> {
    throwIfAborted(signal);
    checkRange(this.name, this.size, offset, length, what);
    return this.bytes.slice(offset, offset + length);
  }
  async readMany(ranges: readonly ByteRange[], what: string, signal?: AbortSignal): Promise<Uint8Array[]> {
    return Promise.all(ranges.map((r) => this.read(r.offset, r.length, what, signal)));
  }
  async close(): Promise<void> {}
}

export interface OpenByteSourceOptions extends HttpSourceOptions {
  log?: Logger;
  signal?: AbortSignal;
}

/** Open a local path, an http(s) URL or an s3://bucket/key URL. */
export async function openByteSource(pathOrUrl: string, options: OpenByteSourceOptions = {}): Promise<ByteSource> {
  if (isHttpUrl(pathOrUrl)) return HttpByteSource.open(pathOrUrl, options);
  if (isS3Url(pathOrUrl)) return S3ByteSource.open(pathOrUrl, options);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(pathOrUrl) && !/^file:\/\//i.test(pathOrUrl)) {
    throw badRaster(pathOrUrl, 'unsupported URL scheme (use a local path, an http(s) URL or an s3:// URL)');
  }
  const path = /^file:\/\//i.test(pathOrUrl) ? new URL(pathOrUrl).pathname : pathOrUrl;
  return LocalByteSource.open(path);
}
