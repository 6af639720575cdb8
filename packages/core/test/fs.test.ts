import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, chmod, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeoDinoError, openAtomic, writeFileAtomic, readJsonFile, assertWritableDir, isTemporaryName, processAlive } from '../src/index.js';

const made: string[] = [];
async function tmp(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gd-core-'));
  made.push(dir);
  return dir;
}
afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

describe('atomic files', () => {
  it('nothing appears under the final name until commit', async () => {
    const dir = await tmp();
    const f = await openAtomic(join(dir, 'out.bin'));
    await f.write(new Uint8Array([1, 2, 3]));
    await f.writeAt(new Uint8Array([9]), 0);
    expect(await readdir(dir)).toEqual([f.tmpPath.split('/').pop()]);
    expect(isTemporaryName(f.tmpPath.split('/').pop()!)).toBe(true);
    await f.commit();
    expect(await readdir(dir)).toEqual(['out.bin']);
    expect(Array.from(await readFile(join(dir, 'out.bin')))).toEqual([9, 2, 3]);
  });

  it('abort leaves nothing and keeps an older file intact', async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'keep.txt'), 'old');
    const f = await openAtomic(join(dir, 'keep.txt'));
    await f.write('new, half written');
    await f.abort();
    expect(await readdir(dir)).toEqual(['keep.txt']);
    expect(await readFile(join(dir, 'keep.txt'), 'utf8')).toBe('old');
  });

  it('writeFileAtomic replaces content whole', async () => {
    const dir = await tmp();
    await writeFileAtomic(join(dir, 'a.json'), '{"v":1}');
    await writeFileAtomic(join(dir, 'a.json'), '{"v":2}');
    expect(await readJsonFile(join(dir, 'a.json'))).toEqual({ v: 2 });
  });

  it('unwritable directory gives E_WRITE naming the path', async () => {
    if (process.getuid?.() === 0) {
      // root ignores permissions: use a path under a regular file instead.
      const dir = await tmp();
      await writeFile(join(dir, 'file'), '');
      const err = (await writeFileAtomic(join(dir, 'file', 'x.txt'), 'x').catch((e: unknown) => e)) as GeoDinoError;
      expect(err.code).toBe('E_WRITE');
      expect(err.message).toContain(join(dir, 'file', 'x.txt'));
      return;
    }
    const dir = await tmp();
    await chmod(dir, 0o500);
    const err = (await writeFileAtomic(join(dir, 'x.txt'), 'x').catch((e: unknown) => e)) as GeoDinoError;
    expect(err.code).toBe('E_WRITE');
    expect(err.message).toMatch(/permission denied/);
  });

  it('assertWritableDir refuses a path below a file', async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'f'), '');
    await expect(assertWritableDir(join(dir, 'f', 'sub'))).rejects.toMatchObject({ code: 'E_WRITE' });
  });

  it('readJsonFile names the file for missing and invalid JSON', async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'bad.json'), '{');
    await expect(readJsonFile(join(dir, 'bad.json'))).rejects.toMatchObject({ code: 'E_BAD_JSON', message: expect.stringContaining('bad.json: invalid JSON') });
    await expect(readJsonFile(join(dir, 'none.json'))).rejects.toMatchObject({ code: 'E_FILE_NOT_FOUND', message: expect.stringContaining('none.json: no such file') });
  });
});

describe('processAlive', () => {
  it('is true for this process and false for one that has exited', async () => {
    const { spawnSync } = await import('node:child_process');
    expect(processAlive(process.pid)).toBe(true);
    const exited = spawnSync(process.execPath, ['-e', '0']).pid;
    expect(processAlive(exited)).toBe(false);
  });
});
