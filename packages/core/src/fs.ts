/**
 * Nothing half-written: every output is written under a temporary name in the same directory
 * and renamed into place only when complete. A crash leaves either the old file or no file,
 * never a truncated one that a later `--resume` or a reader could mistake for finished work.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, mkdir, writeFile, stat, readFile, type FileHandle } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { GeoDinoError, fsError } from './errors.js';

/** The temporary sibling name used while `finalPath` is being written. */
export function temporaryPathFor(finalPath: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** True for names made by {@link temporaryPathFor} (so cleaners can find leftovers). */
export function isTemporaryName(name: string): boolean {
  return /^\..+\.\d+\.[0-9a-f]{8}\.tmp$/.test(name);
}

/** Create a directory (and parents), mapping failures to a clear E_WRITE error. */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw fsError(err, dir, 'create');
  }
}

/** Write a whole file atomically: temporary name, fsync, rename. */
export async function writeFileAtomic(finalPath: string, data: string | Uint8Array): Promise<void> {
  const file = await openAtomic(finalPath);
  try {
    await file.write(data);
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}

export async function writeJsonAtomic(finalPath: string, value: unknown): Promise<void> {
  await writeFileAtomic(finalPath, JSON.stringify(value, null, 2) + '\n');
}

/**
 * A file being written under a temporary name. `write` appends, `writeAt` writes at an offset
 * (for formats whose header is patched at the end). `commit` fsyncs and renames; `abort` removes.
 */
export interface AtomicFile {
  readonly finalPath: string;
  readonly tmpPath: string;
  readonly handle: FileHandle;
  /** Bytes appended so far (the append position). */
  readonly position: number;
  write(data: string | Uint8Array): Promise<void>;
  writeAt(data: Uint8Array, offset: number): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export async function openAtomic(finalPath: string): Promise<AtomicFile> {
  const tmpPath = temporaryPathFor(finalPath);
  let handle: FileHandle;
  try {
    handle = await open(tmpPath, 'w');
  } catch (err) {
    throw fsError(err, finalPath, 'write');
  }
  let position = 0;
  let closed = false;
  const fail = (err: unknown): GeoDinoError => fsError(err, finalPath, 'write');
  return {
    finalPath,
    tmpPath,
    handle,
    get position() {
      return position;
    },
    async write(data) {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      try {
        let off = 0;
        while (off < bytes.length) {
          const { bytesWritten } = await handle.write(bytes, off, bytes.length - off, position);
          off += bytesWritten;
          position += bytesWritten;
        }
      } catch (err) {
        throw fail(err);
      }
    },
    async writeAt(data, offset) {
      try {
        let off = 0;
        while (off < data.length) {
          const { bytesWritten } = await handle.write(data, off, data.length - off, offset + off);
          off += bytesWritten;
        }
      } catch (err) {
        throw fail(err);
      }
    },
    async commit() {
      if (closed) throw new GeoDinoError('E_INTERNAL', `${finalPath}: committed twice`);
      closed = true;
      try {
        await handle.sync();
        await handle.close();
        await rename(tmpPath, finalPath);
      } catch (err) {
        await rm(tmpPath, { force: true }).catch(() => undefined);
        throw fail(err);
      }
    },
    async abort() {
      if (!closed) {
        closed = true;
        await handle.close().catch(() => undefined);
      }
      await rm(tmpPath, { force: true }).catch(() => undefined);
    },
  };
}

export async function fileExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Read and parse a JSON file, with errors that name the file. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw fsError(err, path, 'read');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new GeoDinoError('E_BAD_JSON', `${path}: invalid JSON: ${(err as Error).message}`, {
      cause: err,
      details: { path },
    });
  }
}

/** Check that a directory can be written to, by creating and removing a probe file. */
export async function assertWritableDir(dir: string): Promise<void> {
  await ensureDir(dir);
  const probe = temporaryPathFor(join(dir, 'write-probe'));
  try {
    await writeFile(probe, '');
  } catch (err) {
    throw fsError(err, dir, 'write');
  } finally {
    await rm(probe, { force: true }).catch(() => undefined);
  }
}

/** Whether a process of this machine with that pid exists (EPERM: it does, owned by another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}
