/**
 * The SQLite store: migrations (fresh store, upgrade from an older schema keeping data, a failing
 * migration rolled back, a newer schema refused), files that are not stores, and the records.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, MonitorStore, SCHEMA_VERSION, migrate, runIdFor, schemaVersion, type Migration } from '../src/store.js';
import { assertRegionName, monitorPaths } from '../src/paths.js';
import { regionInput } from './support/helpers.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'geo-dino-store-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const tables = (db: Database.Database): string[] =>
  (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);

describe('migrations', () => {
  it('a new store gets every migration, recorded; reopening applies nothing', () => {
    const path = join(dir, 's.sqlite');
    const s = MonitorStore.open(path);
    expect(schemaVersion(s.db)).toBe(SCHEMA_VERSION);
    expect(tables(s.db)).toEqual(['alerts', 'changes', 'daemon', 'regions', 'run_landcover', 'run_landcover_classes', 'run_stats', 'run_tiles', 'runs', 'schema_migrations', 'shard_results']);
    expect((s.db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as { version: number }[]).map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    s.close();
    const db = new Database(path);
    expect(migrate(db)).toEqual([]);
    db.close();
  });

  it('an older store is upgraded in place, keeping its data', () => {
    const path = join(dir, 'old.sqlite');
    const db = new Database(path);
    migrate(db, MIGRATIONS.slice(0, 1));
    db.prepare(
      `INSERT INTO regions (name, aoi_path, aoi_area_m2, aoi_bbox, schedule, imagery, loss_threshold_m, min_area_m2, created_at, updated_at) VALUES ('forest', '/a.geojson', 5, '[0,0,1,1]', '@daily', 'x', 5, 500, '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z')`,
    ).run();
    expect(schemaVersion(db)).toBe(1);
    expect(tables(db)).not.toContain('alerts');
    db.close();
    const s = MonitorStore.open(path);
    expect(schemaVersion(s.db)).toBe(SCHEMA_VERSION);
    expect(s.region('forest')).toMatchObject({ name: 'forest', schedule: '@daily', timezone: 'UTC', enabled: true, lastSlot: null });
    expect(tables(s.db)).toContain('alerts');
    s.close();
  });

  it('a failing migration is rolled back and reported; the store stays at the previous version', () => {
    const db = new Database(join(dir, 'f.sqlite'));
    const bad: Migration[] = [
      ...MIGRATIONS,
      {
        version: 99,
        name: 'broken',
        up(d) {
          d.exec('CREATE TABLE half_done (x INTEGER)');
          d.exec('THIS IS NOT SQL');
        },
      },
    ];
    expect(() => migrate(db, bad, 'f.sqlite')).toThrow(/f\.sqlite: migration 99 \(broken\) failed/);
    expect(schemaVersion(db)).toBe(SCHEMA_VERSION);
    expect(tables(db)).not.toContain('half_done');
    db.close();
  });

  it('a store from a newer geo-dino is refused, naming the versions', () => {
    const path = join(dir, 'new.sqlite');
    const db = new Database(path);
    migrate(db, [...MIGRATIONS, { version: 42, name: 'future', up: () => undefined }]);
    db.close();
    expect(() => MonitorStore.open(path)).toThrow(new RegExp(`schema version 42 was written by a newer geo-dino \\(this one knows up to ${SCHEMA_VERSION}\\)`));
  });

  it('a file that is not a store is refused with its path', () => {
    const path = join(dir, 'junk.sqlite');
    writeFileSync(path, 'this is not a database, just some text that is long enough '.repeat(40));
    expect(() => MonitorStore.open(path)).toThrow(expect.objectContaining({ code: 'E_BAD_JSON', message: expect.stringContaining(path) }));
  });
});

describe('records', () => {
  it('regions: duplicates refused, unknown names E_NOT_FOUND listing the known ones', () => {
    const s = MonitorStore.open(join(dir, 's.sqlite'));
    const input = regionInput('forest', '@daily', { aoiPath: '/a.geojson', aoiAreaM2: 5, aoiBbox: [0, 0, 1, 1], imagery: 'x', collections: ['naip'], maxCloud: 10 });
    const now = new Date('2025-01-01T00:00:00Z');
    expect(s.addRegion(input, now)).toMatchObject({ name: 'forest', collections: ['naip'], maxCloud: 10, createdAt: now.toISOString() });
    expect(() => s.addRegion(input, now)).toThrow(/already exists/);
    expect(() => s.region('savanna')).toThrow(expect.objectContaining({ code: 'E_NOT_FOUND', message: expect.stringContaining('known: forest') }));
    // Run ids: sortable timestamps, unique per region.
    const a = s.createRun({ region: 'forest', trigger: 'manual', slot: null, dir: (id) => `/r/${id}` }, now)!;
    s.updateRun(a.seq, { status: 'failed' });
    const b = s.createRun({ region: 'forest', trigger: 'manual', slot: null, dir: (id) => `/r/${id}` }, now)!;
    expect([a.id, b.id]).toEqual(['20250101T000000Z', '20250101T000000Z-2']);
    expect(b.dir).toBe('/r/20250101T000000Z-2');
    // Only one active run per region.
    expect(s.createRun({ region: 'forest', trigger: 'manual', slot: null, dir: (id) => id }, now)).toBeNull();
    // Tiles: pending → done, counted on the run.
    s.setTiles(b.seq, [{ id: '1', batch: 0 }, { id: '2', batch: 0 }, { id: '5', batch: 1 }], now);
    s.markTilesDone(b.seq, ['2', '5', '5'], now);
    expect(s.runBySeq(b.seq)).toMatchObject({ tilesTotal: 3, tilesDone: 2 });
    s.removeRegion('forest');
    expect(s.runs('forest')).toEqual([]);
    s.close();
  });

  it('land-cover statistics: stored in class order, replaced, removed, gone with the region (a v2 store upgraded)', () => {
    const path = join(dir, 'v2.sqlite');
    const db = new Database(path);
    migrate(db, MIGRATIONS.filter((m) => m.version <= 2));
    db.close();
    const s = MonitorStore.open(path);
    expect(schemaVersion(s.db)).toBe(SCHEMA_VERSION);
    const now = new Date('2025-01-01T00:00:00Z');
    s.addRegion(
      { name: 'forest', aoiPath: '/a.geojson', aoiAreaM2: 5, aoiBbox: [0, 0, 1, 1], schedule: '@daily', timezone: 'UTC', imagery: 'x', model: '/m', landcover: '/h', collections: null, maxCloud: null, lossThresholdM: 5, minAreaM2: 500, webhookUrl: null, webhookSecret: null },
      now,
    );
    expect(s.region('forest').landcover).toBe('/h');
    const run = s.createRun({ region: 'forest', trigger: 'manual', slot: null, dir: (id) => `/r/${id}` }, now)!;
    expect(s.landcoverStats(run.seq)).toBeNull();
    const lc = {
      head: '/h',
      headSha256: 'a'.repeat(64),
      nodata: 0,
      pixelsClassified: 30,
      classifiedAreaM2: 10.8,
      // Not in value order: the class table's order is kept.
      classes: [
        { value: 60, name: 'bare', title: null, color: '#b4b4b4', pixels: 10, areaM2: 3.6, percent: 100 / 3 },
        { value: 10, name: 'forest', title: 'Tree cover', color: '#006400', pixels: 20, areaM2: 7.2, percent: 200 / 3 },
      ],
    };
    s.setLandcoverStats(run.seq, lc);
    expect(s.landcoverStats(run.seq)).toEqual(lc);
    const fewer = { ...lc, classes: lc.classes.slice(1) };
    s.setLandcoverStats(run.seq, fewer);
    expect(s.landcoverStats(run.seq)).toEqual(fewer);
    s.setLandcoverStats(run.seq, null);
    expect(s.landcoverStats(run.seq)).toBeNull();
    expect((s.db.prepare('SELECT COUNT(*) AS n FROM run_landcover_classes').get() as { n: number }).n).toBe(0);
    s.setLandcoverStats(run.seq, lc);
    s.removeRegion('forest');
    expect((s.db.prepare('SELECT COUNT(*) AS n FROM run_landcover_classes').get() as { n: number }).n).toBe(0);
    s.close();
  });

  it('per-shard history (a v4 store upgraded): the latest succeeded result of each shard, replaced on resume, gone with the region', () => {
    const path = join(dir, 'v4.sqlite');
    const db = new Database(path);
    migrate(db, MIGRATIONS.filter((m) => m.version <= 4));
    db.close();
    const s = MonitorStore.open(path);
    expect(schemaVersion(s.db)).toBe(SCHEMA_VERSION);
    const now = new Date('2025-01-01T00:00:00Z');
    s.addRegion(regionInput('wide', '@daily', { shardSize: 1024 }), now);
    s.addRegion(regionInput('old', '@daily'), now);
    expect(s.region('wide').shardSize).toBe(1024);
    expect(s.region('old').shardSize).toBeNull();
    const meta = { footprint: [[0, 0], [1, 0], [1, 1], [0, 0]] as [number, number][], bands: ['height', 'uncertainty'], window: { width: 1024, height: 1024 }, stats: null };
    const row = (shardId: string, runId: string, previousRunSeq: number | null = null) => ({
      region: 'wide', shardId, zone: '36N', path: `runs/${runId}/shards/${shardId}/chm.tif`, sha256: shardId + runId, crs: 'EPSG:32636', bounds: [0, 0, 614.4, 614.4] as [number, number, number, number],
      gsd: 0.6, validPixels: 10, status: 'computed', previousRunSeq, changes: null, lossAreaM2: null, changedAreaM2: null, meta, createdAt: now.toISOString(),
    });
    const run = (status: 'succeeded' | 'failed') => {
      const r = s.createRun({ region: 'wide', trigger: 'manual', slot: null, dir: (id) => `/r/${id}` }, now)!;
      s.updateRun(r.seq, { status });
      return r;
    };
    const a = run('succeeded');
    s.setShardResults(a.seq, [row('A', a.id), row('B', a.id)]);
    const b = run('succeeded');
    s.setShardResults(b.seq, [row('B', 'wrong')]);
    s.setShardResults(b.seq, [row('B', b.id, a.seq)]); // a resumed run records its shards again
    const c = run('failed');
    s.setShardResults(c.seq, [row('A', c.id, a.seq)]);
    expect(s.shardResults(b.seq).map((r) => r.path)).toEqual([`runs/${b.id}/shards/B/chm.tif`]);
    // A failed run's results are not current; the latest succeeded one per shard is.
    expect(s.latestShardResults('wide').map((r) => [r.shardId, r.run])).toEqual([['A', a.id], ['B', b.id]]);
    expect(s.latestShardResults('wide', b.seq).map((r) => [r.shardId, r.run])).toEqual([['A', a.id], ['B', a.id]]);
    expect(s.shardHistory('wide', 'A').map((r) => r.run)).toEqual([c.id, a.id]);
    expect(s.shardResults(b.seq)[0]).toMatchObject({ previousRunSeq: a.seq, meta, bounds: [0, 0, 614.4, 614.4] });
    s.removeRegion('wide');
    expect((s.db.prepare('SELECT COUNT(*) AS n FROM shard_results').get() as { n: number }).n).toBe(0);
    s.close();
  });

  it('region names are checked (paths and job ids)', () => {
    for (const bad of ['', 'a/b', '../x', 'a:b', 'has space', '-lead', 'x'.repeat(65)]) expect(() => assertRegionName(bad)).toThrow(/is not valid/);
    for (const ok of ['forest', 'Kakamega_2025', 'a-b', '9']) expect(() => assertRegionName(ok)).not.toThrow();
    expect(() => monitorPaths(dir).run('../../etc', 'x')).toThrow(/is not valid/);
    expect(runIdFor(new Date('2025-06-11T02:40:00.123Z'))).toBe('20250611T024000Z');
  });
});
