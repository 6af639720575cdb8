import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import {
  ERROR_CODES,
  EXIT,
  GeoDinoError,
  cliValues,
  createLogger,
  createProgress,
  flagName,
  formatHumanLine,
  geoDinoHome,
  parseWith,
  progressModeFor,
  toGeoDinoError,
  z,
} from '../src/index.js';

function collect(stream: PassThrough): () => string {
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return () => text;
}

describe('errors', () => {
  it('maps categories to exit codes: input 2, environment/internal 1, cancelled 130', () => {
    expect(new GeoDinoError('E_BAD_AOI', 'x').exitCode).toBe(2);
    expect(new GeoDinoError('E_ARGUMENT', 'x').exitCode).toBe(2);
    expect(new GeoDinoError('E_NETWORK', 'x').exitCode).toBe(1);
    expect(new GeoDinoError('E_INTERNAL', 'x').exitCode).toBe(1);
    expect(new GeoDinoError('E_CANCELLED', 'x').exitCode).toBe(130);
    for (const code of Object.keys(ERROR_CODES)) expect(code).toMatch(/^E_[A-Z_]+$/);
    expect(EXIT.input).toBe(2);
  });

  it('wraps foreign errors as internal and abort errors as cancelled', () => {
    expect(toGeoDinoError(new Error('boom')).code).toBe('E_INTERNAL');
    const abort = new Error('aborted');
    abort.name = 'AbortError';
    expect(toGeoDinoError(abort).code).toBe('E_CANCELLED');
  });
});

describe('parseWith', () => {
  const schema = z.object({
    tileSize: cliValues.positiveInt.refine((v) => v % 32 === 0, 'must be a multiple of 32'),
    collections: cliValues.list.optional(),
  });

  it('gives one line naming the flag and the value', () => {
    try {
      parseWith(schema, { tileSize: '500' }, { fieldName: flagName });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(GeoDinoError);
      expect((err as GeoDinoError).code).toBe('E_ARGUMENT');
      expect((err as GeoDinoError).message).toBe('--tile-size: must be a multiple of 32 (got "500")');
    }
  });

  it('coerces and splits lists', () => {
    expect(parseWith(schema, { tileSize: '512', collections: ['a,b', 'c'] })).toEqual({ tileSize: 512, collections: ['a', 'b', 'c'] });
  });
});

describe('logging', () => {
  it('JSON mode writes one JSON object per line with level names', () => {
    const out = new PassThrough();
    const text = collect(out);
    const log = createLogger({ json: true, stream: out });
    log.info({ tiles: 3 }, 'hello');
    const rec = JSON.parse(text().trim()) as Record<string, unknown>;
    expect(rec).toMatchObject({ level: 'info', msg: 'hello', tiles: 3 });
  });

  it('human mode writes readable lines, quiet drops info', () => {
    const out = new PassThrough();
    const text = collect(out);
    createLogger({ stream: out, color: false }).warn({ file: 'a b.tif' }, 'careful');
    createLogger({ stream: out, quiet: true, color: false }).info('hidden');
    expect(text()).toBe('warn: careful  file="a b.tif"\n');
    expect(formatHumanLine('{"level":30,"msg":"x","n":1}', false)).toBe('x  n=1');
  });
});

describe('progress', () => {
  it('JSON events carry done/total/rate/eta and a final finished event', () => {
    const out = new PassThrough();
    const text = collect(out);
    let t = 0;
    const p = createProgress({ mode: 'json', stream: out, intervalMs: 1000, now: () => t });
    const task = p.start('tiles', { total: 10, unit: 'tiles' });
    t = 2000;
    task.tick(4);
    t = 2500;
    task.tick(1); // throttled
    task.finish();
    const events = text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ type: 'progress', task: 'tiles', done: 4, total: 10, rate: 2, eta_s: 3, finished: false });
    expect(events[1]).toMatchObject({ done: 5, finished: true });
  });

  it('silent mode writes nothing; mode follows --quiet, --json and TTY', () => {
    const out = new PassThrough();
    const text = collect(out);
    createProgress({ mode: 'silent', stream: out }).start('x', { total: 1 }).finish();
    expect(text()).toBe('');
    expect(progressModeFor({ quiet: true, json: true })).toBe('silent');
    expect(progressModeFor({ json: true })).toBe('json');
    expect(progressModeFor({ stream: out })).toBe('silent');
    const tty = Object.assign(new PassThrough(), { isTTY: true });
    expect(progressModeFor({ stream: tty })).toBe('tty');
  });

  it('TTY mode draws a bar with ETA', () => {
    const out = new PassThrough();
    const text = collect(out);
    let t = 0;
    const task = createProgress({ mode: 'tty', stream: out, intervalMs: 0, now: () => t }).start('tiles', { total: 4, unit: 'tiles' });
    t = 1000;
    task.tick(2);
    expect(text()).toContain('tiles [############------------] 2/4 tiles 2.00 tiles/s ETA 1s');
  });
});

describe('home', () => {
  it('honours GEO_DINO_HOME', () => {
    expect(geoDinoHome({ GEO_DINO_HOME: '/data/gd' })).toBe('/data/gd');
    expect(geoDinoHome({})).toMatch(/\.geo-dino$/);
  });
});
