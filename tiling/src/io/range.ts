/** The byte-source contract and its bounds check. */
import { badRaster } from '../errors.js';

export interface ByteRange {
  offset: number;
  length: number;
}

export interface ByteSource {
  /** The path, or the URL with secrets redacted; used in every error message. */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Read `length` bytes at `offset`. `what` says what is being read (for errors such as
   * "tile 3 of level 0 at bytes 1000-2000 lies past the end of the file (1500 bytes)").
   */
  read(offset: number, length: number, what: string, signal?: AbortSignal): Promise<Uint8Array>;
  /** Read several ranges; remote sources coalesce neighbouring ranges into one request. */
  readMany(ranges: readonly ByteRange[], what: string, signal?: AbortSignal): Promise<Uint8Array[]>;
  close(): Promise<void>;
}

export function checkRange(name: string, size: number, offset: number, length: number, what: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw badRaster(name, `${what}: invalid byte range (offset ${offset}, length ${length})`, { offset, length });
  }
  if (offset + length > size) {
    throw badRaster(
      name,
      `${what}: bytes ${offset}-${offset + length - 1} lie past the end of the file (${size} bytes); the file is truncated or corrupt`,
      { offset, length, size },
    );
  }
}

