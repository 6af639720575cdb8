/**
 * The embedded monitoring store: one SQLite file (`$GEO_DINO_HOME/geo-dino.sqlite`) holding
 * regions, runs, per-tile state, statistics (canopy and land cover), changes and alerts.
 *
 * - Schema migrations: `schema_migrations` records every applied version; each migration runs in
 *   its own transaction, so a failing one leaves the store at the previous version. A store
 *   written by a newer geo-dino (a version this one does not know) is refused, not guessed at.
 * - WAL journal with `synchronous = FULL`: a commit is on disk when it returns, which is what the
 *   alert idempotency keys and schedule slots rely on (a fired slot or a delivered alert is never
 *   forgotten by a crash).
 * - Several processes may open the store (the daemon, `monitor run`, `monitor history`); writes
 *   wait up to `busy_timeout` for each other.
 */
import Database from 'better-sqlite3';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, statSync, type Dirent } from 'node:fs';
import { GeoDinoError, fsError } from '@geo-dino/core';
import type { MonitorPaths } from './paths.js';

export type Db = Database.Database;

export interface Migration {
  version: number;
  name: string;
  up(db: Db): void;
}

/** The schema, one migration per change. Never edit an applied migration: add a new one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'regions, runs, per-tile state',
    up(db) {
      db.exec(`
        CREATE TABLE regions (
          name              TEXT PRIMARY KEY,
          aoi_path          TEXT NOT NULL,
          aoi_area_m2       REAL NOT NULL,
          aoi_bbox          TEXT NOT NULL,
          schedule          TEXT NOT NULL,
          timezone          TEXT NOT NULL DEFAULT 'UTC',
          imagery           TEXT NOT NULL,
          model             TEXT,
          landcover         TEXT,
          collections       TEXT,
          max_cloud         REAL,
          loss_threshold_m  REAL NOT NULL,
          min_area_m2       REAL NOT NULL,
          webhook_url       TEXT,
          webhook_secret    TEXT,
          enabled           INTEGER NOT NULL DEFAULT 1,
          created_at        TEXT NOT NULL,
          updated_at        TEXT NOT NULL,
          last_slot         TEXT
        );
        CREATE TABLE runs (
          seq               INTEGER PRIMARY KEY AUTOINCREMENT,
          region            TEXT NOT NULL REFERENCES regions(name) ON DELETE CASCADE,
          id                TEXT NOT NULL,
          trigger           TEXT NOT NULL CHECK (trigger IN ('manual', 'schedule', 'catch-up')),
          slot              TEXT,
          missed_slots      INTEGER NOT NULL DEFAULT 0,
          status            TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'skipped', 'failed')),
          phase             TEXT,
          created_at        TEXT NOT NULL,
          started_at        TEXT,
          finished_at       TEXT,
          owner             TEXT,
          heartbeat_at      TEXT,
          executions        INTEGER NOT NULL DEFAULT 0,
          error_code        TEXT,
          error_message     TEXT,
          newer_than        TEXT,
          acquired_start    TEXT,
          acquired_end      TEXT,
          scene_count       INTEGER,
          previous_run      TEXT,
          queue             TEXT,
          tiles_total       INTEGER,
          tiles_done        INTEGER,
          dir               TEXT NOT NULL,
          UNIQUE (region, id)
        );
        CREATE INDEX runs_by_region_status ON runs(region, status);
        CREATE TABLE run_tiles (
          run_seq           INTEGER NOT NULL REFERENCES runs(seq) ON DELETE CASCADE,
          tile_id           TEXT NOT NULL,
          state             TEXT NOT NULL CHECK (state IN ('pending', 'done')),
          batch             INTEGER,
          updated_at        TEXT NOT NULL,
          PRIMARY KEY (run_seq, tile_id)
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 2,
    name: 'statistics, changes, alerts',
    up(db) {
      db.exec(`
        CREATE TABLE run_stats (
          run_seq           INTEGER PRIMARY KEY REFERENCES runs(seq) ON DELETE CASCADE,
          aoi_area_m2       REAL NOT NULL,
          pixel_area_m2     REAL NOT NULL,
          pixels_inside     INTEGER NOT NULL,
          pixels_valid      INTEGER NOT NULL,
          valid_area_m2     REAL NOT NULL,
          valid_percent     REAL NOT NULL,
          mean_height_m     REAL,
          max_height_m      REAL,
          cover_2m_percent  REAL,
          cover_5m_percent  REAL,
          canopy_2m_area_m2 REAL NOT NULL,
          canopy_5m_area_m2 REAL NOT NULL
        );
        CREATE TABLE changes (
          run_seq           INTEGER NOT NULL REFERENCES runs(seq) ON DELETE CASCADE,
          change_id         TEXT NOT NULL,
          area_m2           REAL NOT NULL,
          mean_loss_m       REAL NOT NULL,
          max_loss_m        REAL NOT NULL,
          pixels            INTEGER NOT NULL,
          centroid_lon      REAL NOT NULL,
          centroid_lat      REAL NOT NULL,
          bbox              TEXT NOT NULL,
          PRIMARY KEY (run_seq, change_id)
        );
        CREATE TABLE alerts (
          key               TEXT PRIMARY KEY,
          run_seq           INTEGER NOT NULL REFERENCES runs(seq) ON DELETE CASCADE,
          region            TEXT NOT NULL,
          kind              TEXT NOT NULL,
          payload           TEXT NOT NULL,
          webhook_url       TEXT,
          status            TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'logged')),
          attempts          INTEGER NOT NULL DEFAULT 0,
          last_error        TEXT,
          next_attempt_at   TEXT,
          created_at        TEXT NOT NULL,
          delivered_at      TEXT
        );
        CREATE INDEX alerts_pending ON alerts(status, next_attempt_at);
        CREATE TABLE daemon (
          id                INTEGER PRIMARY KEY CHECK (id = 1),
          owner             TEXT NOT NULL,
          started_at        TEXT NOT NULL,
          heartbeat_at      TEXT NOT NULL
        );
      `);
    },
  },
  {
    version: 3,
    name: 'land-cover statistics',
    up(db) {
      db.exec(`
        CREATE TABLE run_landcover (
          run_seq             INTEGER PRIMARY KEY REFERENCES runs(seq) ON DELETE CASCADE,
          head                TEXT NOT NULL,
          head_sha256         TEXT NOT NULL,
          nodata              INTEGER NOT NULL,
          pixels_classified   INTEGER NOT NULL,
          classified_area_m2  REAL NOT NULL
        );
        CREATE TABLE run_landcover_classes (
          run_seq           INTEGER NOT NULL REFERENCES run_landcover(run_seq) ON DELETE CASCADE,
          position          INTEGER NOT NULL,
          value             INTEGER NOT NULL,
          name              TEXT NOT NULL,
          title             TEXT,
          color             TEXT NOT NULL,
          pixels            INTEGER NOT NULL,
          area_m2           REAL NOT NULL,
          percent           REAL NOT NULL,
          PRIMARY KEY (run_seq, position)
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 4,
    name: 'webhooks to private addresses only when allowed',
    up(db) {
      db.exec(`ALTER TABLE regions ADD COLUMN webhook_allow_private INTEGER NOT NULL DEFAULT 0`);
    },
  },
  {
    version: 5,
    name: 'regions on the shard grid: shard size, per-shard history',
    up(db) {
      db.exec(`
        ALTER TABLE regions ADD COLUMN shard_size INTEGER;
        CREATE TABLE shard_results (
          region            TEXT NOT NULL REFERENCES regions(name) ON DELETE CASCADE,
          shard_id          TEXT NOT NULL,
          run_seq           INTEGER NOT NULL REFERENCES runs(seq) ON DELETE CASCADE,
          zone              TEXT NOT NULL,
          path              TEXT NOT NULL,
          sha256            TEXT NOT NULL,
          crs               TEXT NOT NULL,
          bounds            TEXT NOT NULL,
          gsd               REAL NOT NULL,
          valid_pixels      INTEGER NOT NULL,
          status            TEXT NOT NULL,
          previous_run_seq  INTEGER,
          changes           INTEGER,
          loss_area_m2      REAL,
          changed_area_m2   REAL,
          meta              TEXT NOT NULL,
          created_at        TEXT NOT NULL,
          PRIMARY KEY (region, shard_id, run_seq)
        );
        CREATE INDEX shard_results_latest ON shard_results (region, shard_id, run_seq DESC);
      `);
    },
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The schema version a store is at (0 for an empty file). */
export function schemaVersion(db: Db): number {
  const has = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).get();
  if (!has) return 0;
  const row = db.prepare(`SELECT MAX(version) AS v FROM schema_migrations`).get() as { v: number | null };
  return row.v ?? 0;
}

/**
 * Bring `db` up to the last of `migrations`, one transaction per migration. Returns the versions
 * applied. Refuses a store whose version is above the last known one.
 */
export function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS, source = 'store'): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const current = schemaVersion(db);
  const latest = migrations.length ? migrations[migrations.length - 1]!.version : 0;
  if (current > latest) {
    throw new GeoDinoError(
      'E_BAD_JSON',
      `${source}: schema version ${current} was written by a newer geo-dino (this one knows up to ${latest}); upgrade geo-dino to use it`,
      { details: { source, version: current, known: latest } },
    );
  }
  const applied: number[] = [];
  for (const m of migrations) {
    if (m.version <= current) continue;
    const step = db.transaction(() => {
      m.up(db);
      db.prepare(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`).run(m.version, m.name, new Date().toISOString());
    });
    try {
      // IMMEDIATE: two processes opening an old store at once do not both migrate it.
      step.immediate();
    } catch (err) {
      if (schemaVersion(db) >= m.version) continue; // another process applied it meanwhile
      throw new GeoDinoError('E_INTERNAL', `${source}: migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, { cause: err });
    }
    applied.push(m.version);
  }
  return applied;
}

// ------------------------------------------------------------------------------------------------
// Records

export interface RegionInput {
  name: string;
  aoiPath: string;
  aoiAreaM2: number;
  aoiBbox: [number, number, number, number];
  schedule: string;
  timezone: string;
  imagery: string;
  model: string | null;
  landcover: string | null;
  collections: string[] | null;
  maxCloud: number | null;
  lossThresholdM: number;
  minAreaM2: number;
  webhookUrl: string | null;
  webhookSecret: string | null;
  /** The webhook may be a private, loopback or link-local address (`--allow-private-webhook`). */
  webhookAllowPrivate?: boolean;
  /**
   * Shard edge in pixels (`--shard-size`, migration 5): the region is monitored shard by shard on
   * the global shard grid. Null: the default size; the region is sharded when its plan has more
   * than one shard.
   */
  shardSize?: number | null;
}

export interface Region extends RegionInput {
  webhookAllowPrivate: boolean;
  shardSize: number | null;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
  /** The latest schedule slot that fired; null before the first. */
  lastSlot: string | null;
}

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'skipped' | 'failed';
export type RunTrigger = 'manual' | 'schedule' | 'catch-up';

export interface RunRecord {
  seq: number;
  region: string;
  id: string;
  trigger: RunTrigger;
  slot: string | null;
  missedSlots: number;
  status: RunStatus;
  phase: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  owner: string | null;
  heartbeatAt: string | null;
  executions: number;
  errorCode: string | null;
  errorMessage: string | null;
  newerThan: string | null;
  acquiredStart: string | null;
  acquiredEnd: string | null;
  sceneCount: number | null;
  previousRun: string | null;
  queue: string | null;
  tilesTotal: number | null;
  tilesDone: number | null;
  dir: string;
}

export interface RunStats {
  aoiAreaM2: number;
  pixelAreaM2: number;
  pixelsInside: number;
  pixelsValid: number;
  validAreaM2: number;
  validPercent: number;
  meanHeightM: number | null;
  maxHeightM: number | null;
  cover2mPercent: number | null;
  cover5mPercent: number | null;
  canopy2mAreaM2: number;
  canopy5mAreaM2: number;
}

/** Land cover of a run inside its region's AOI (pixel centres inside the AOI, classified pixels only). */
export interface LandcoverStats {
  /** The head directory the run used, and its graph's sha256. */
  head: string;
  headSha256: string;
  /** landcover.tif's nodata value. */
  nodata: number;
  pixelsClassified: number;
  classifiedAreaM2: number;
  /** In the head's class-table order; `percent` is the share of the classified area. */
  classes: LandcoverClassStats[];
}

export interface LandcoverClassStats {
  value: number;
  name: string;
  title: string | null;
  color: string;
  pixels: number;
  areaM2: number;
  percent: number;
}

export interface ChangeRecord {
  changeId: string;
  areaM2: number;
  meanLossM: number;
  maxLossM: number;
  pixels: number;
  centroid: [number, number];
  bbox: [number, number, number, number];
}

/** One shard's result in one run of a sharded region (migration 5). */
export interface ShardResult {
  region: string;
  shardId: string;
  runSeq: number;
  /** The run's id (from the runs table). */
  run: string;
  zone: string;
  /** The shard's chm.tif, relative to the region directory (`runs/<run>/shards/<id>/chm.tif`). */
  path: string;
  sha256: string;
  /** The shard's CRS (`EPSG:32636` or a definition) and its bounds there [minX, minY, maxX, maxY]. */
  crs: string;
  bounds: [number, number, number, number];
  gsd: number;
  validPixels: number;
  /** `computed` (the run predicted it). */
  status: string;
  /** The run whose result for this shard the change was computed against (null: the shard's baseline). */
  previousRunSeq: number | null;
  changes: number | null;
  lossAreaM2: number | null;
  changedAreaM2: number | null;
  /** The shard's lon/lat outline (tile index), its band names, its zonal statistics (and land cover) inside the AOI. */
  meta: { footprint: [number, number][]; bands: string[]; window: { width: number; height: number }; stats: RunStats | null; landcover?: LandcoverStats | null };
  createdAt: string;
}

export type AlertStatus = 'pending' | 'delivered' | 'failed' | 'logged';

export interface AlertRecord {
  key: string;
  runSeq: number;
  region: string;
  kind: string;
  payload: string;
  webhookUrl: string | null;
  status: AlertStatus;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

type Row = Record<string, unknown>;

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function regionFromRow(r: Row): Region {
  return {
    name: String(r['name']),
    aoiPath: String(r['aoi_path']),
    aoiAreaM2: Number(r['aoi_area_m2']),
    aoiBbox: JSON.parse(String(r['aoi_bbox'])) as [number, number, number, number],
    schedule: String(r['schedule']),
    timezone: String(r['timezone']),
    imagery: String(r['imagery']),
    model: str(r['model']),
    landcover: str(r['landcover']),
    collections: r['collections'] === null ? null : (JSON.parse(String(r['collections'])) as string[]),
    maxCloud: num(r['max_cloud']),
    lossThresholdM: Number(r['loss_threshold_m']),
    minAreaM2: Number(r['min_area_m2']),
    webhookUrl: str(r['webhook_url']),
    webhookSecret: str(r['webhook_secret']),
    webhookAllowPrivate: Number(r['webhook_allow_private'] ?? 0) === 1,
    shardSize: num(r['shard_size']),
    enabled: Number(r['enabled']) === 1,
    createdAt: String(r['created_at']),
    updatedAt: String(r['updated_at']),
    lastSlot: str(r['last_slot']),
  };
}

function runFromRow(r: Row): RunRecord {
  return {
    seq: Number(r['seq']),
    region: String(r['region']),
    id: String(r['id']),
    trigger: String(r['trigger']) as RunTrigger,
    slot: str(r['slot']),
    missedSlots: Number(r['missed_slots']),
    status: String(r['status']) as RunStatus,
    phase: str(r['phase']),
    createdAt: String(r['created_at']),
    startedAt: str(r['started_at']),
    finishedAt: str(r['finished_at']),
    owner: str(r['owner']),
    heartbeatAt: str(r['heartbeat_at']),
    executions: Number(r['executions']),
    errorCode: str(r['error_code']),
    errorMessage: str(r['error_message']),
    newerThan: str(r['newer_than']),
    acquiredStart: str(r['acquired_start']),
    acquiredEnd: str(r['acquired_end']),
    sceneCount: num(r['scene_count']),
    previousRun: str(r['previous_run']),
    queue: str(r['queue']),
    tilesTotal: num(r['tiles_total']),
    tilesDone: num(r['tiles_done']),
    dir: String(r['dir']),
  };
}

function shardFromRow(r: Row): ShardResult {
  return {
    region: String(r['region']),
    shardId: String(r['shard_id']),
    runSeq: Number(r['run_seq']),
    run: String(r['run_id']),
    zone: String(r['zone']),
    path: String(r['path']),
    sha256: String(r['sha256']),
    crs: String(r['crs']),
    bounds: JSON.parse(String(r['bounds'])) as [number, number, number, number],
    gsd: Number(r['gsd']),
    validPixels: Number(r['valid_pixels']),
    status: String(r['status']),
    previousRunSeq: num(r['previous_run_seq']),
    changes: num(r['changes']),
    lossAreaM2: num(r['loss_area_m2']),
    changedAreaM2: num(r['changed_area_m2']),
    meta: JSON.parse(String(r['meta'])) as ShardResult['meta'],
    createdAt: String(r['created_at']),
  };
}

function alertFromRow(r: Row): AlertRecord {
  return {
    key: String(r['key']),
    runSeq: Number(r['run_seq']),
    region: String(r['region']),
    kind: String(r['kind']),
    payload: String(r['payload']),
    webhookUrl: str(r['webhook_url']),
    status: String(r['status']) as AlertStatus,
    attempts: Number(r['attempts']),
    lastError: str(r['last_error']),
    nextAttemptAt: str(r['next_attempt_at']),
    createdAt: String(r['created_at']),
    deliveredAt: str(r['delivered_at']),
  };
}

/** `host:pid`, how runs and the daemon name the process that owns them. */
export function processOwner(pid = process.pid): string {
  return `${hostname()}:${pid}`;
}

/** Fields of a run that executors update as they go. */
export type RunUpdate = Partial<
  Pick<
    RunRecord,
    | 'status'
    | 'phase'
    | 'startedAt'
    | 'finishedAt'
    | 'owner'
    | 'heartbeatAt'
    | 'errorCode'
    | 'errorMessage'
    | 'newerThan'
    | 'acquiredStart'
    | 'acquiredEnd'
    | 'sceneCount'
    | 'previousRun'
    | 'queue'
    | 'tilesTotal'
    | 'tilesDone'
  >
>;

const RUN_COLUMNS: Record<keyof RunUpdate, string> = {
  status: 'status',
  phase: 'phase',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  owner: 'owner',
  heartbeatAt: 'heartbeat_at',
  errorCode: 'error_code',
  errorMessage: 'error_message',
  newerThan: 'newer_than',
  acquiredStart: 'acquired_start',
  acquiredEnd: 'acquired_end',
  sceneCount: 'scene_count',
  previousRun: 'previous_run',
  queue: 'queue',
  tilesTotal: 'tiles_total',
  tilesDone: 'tiles_done',
};

export interface OpenStoreOptions {
  /** Open read-only (no migrations; refuses a store older than this version). */
  readonly?: boolean;
}

export class MonitorStore {
  readonly db: Db;

  private constructor(
    readonly path: string,
    db: Db,
  ) {
    this.db = db;
  }

  /** Open (creating and migrating as needed) the store at `path`. */
  static open(path: string, options: OpenStoreOptions = {}): MonitorStore {
    if (path !== ':memory:' && !options.readonly) {
      try {
        mkdirSync(dirname(path), { recursive: true });
      } catch (err) {
        throw fsError(err, dirname(path), 'create');
      }
    }
    if (path !== ':memory:' && !options.readonly) {
      // The store holds webhook secrets: readable by its owner only (SQLite gives its -wal and
      // -shm files the same permissions).
      try {
        const st = statSync(path, { throwIfNoEntry: false });
        if (!st) closeSync(openSync(path, 'wx', 0o600));
        else if (st.mode & 0o077) chmodSync(path, st.mode & 0o700);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(err, path, 'create');
      }
    }
    let db: Db;
    try {
      db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false, timeout: 10_000 });
    } catch (err) {
      throw fsError(err, path, options.readonly ? 'read' : 'write');
    }
    try {
      if (!options.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
      }
      db.pragma('foreign_keys = ON');
      // A file that is not SQLite fails here, with SQLITE_NOTADB.
      if (options.readonly) {
        const v = schemaVersion(db);
        if (v !== SCHEMA_VERSION) {
          throw new GeoDinoError('E_BAD_JSON', `${path}: store schema version ${v}, this geo-dino needs ${SCHEMA_VERSION}; open it once read-write to migrate`, {
            details: { path, version: v },
          });
        }
      } else {
        migrate(db, MIGRATIONS, path);
      }
    } catch (err) {
      db.close();
      if (err instanceof GeoDinoError) throw err;
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
        throw new GeoDinoError('E_BAD_JSON', `${path}: not a geo-dino store (not an SQLite database, or damaged)`, { cause: err, details: { path } });
      }
      throw new GeoDinoError('E_WRITE', `${path}: cannot open the store: ${(err as Error).message}`, { cause: err, details: { path } });
    }
    return new MonitorStore(path, db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  // --- regions ---------------------------------------------------------------------------------

  addRegion(input: RegionInput, now: Date): Region {
    const iso = now.toISOString();
    try {
      this.db
        .prepare(
          `INSERT INTO regions (name, aoi_path, aoi_area_m2, aoi_bbox, schedule, timezone, imagery, model, landcover, collections, max_cloud,
             loss_threshold_m, min_area_m2, webhook_url, webhook_secret, webhook_allow_private, shard_size, enabled, created_at, updated_at, last_slot)
           VALUES (@name, @aoiPath, @aoiAreaM2, @aoiBbox, @schedule, @timezone, @imagery, @model, @landcover, @collections, @maxCloud,
             @lossThresholdM, @minAreaM2, @webhookUrl, @webhookSecret, @webhookAllowPrivate, @shardSize, 1, @now, @now, NULL)`,
        )
        .run({
          ...input,
          aoiBbox: JSON.stringify(input.aoiBbox),
          collections: input.collections ? JSON.stringify(input.collections) : null,
          webhookAllowPrivate: input.webhookAllowPrivate ? 1 : 0,
          shardSize: input.shardSize ?? null,
          now: iso,
        });
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new GeoDinoError('E_ARGUMENT', `region ${JSON.stringify(input.name)} already exists (see \`geo-dino monitor list\`; remove it first to redefine it)`, {
          details: { region: input.name },
        });
      }
      throw err;
    }
    return this.region(input.name);
  }

  findRegion(name: string): Region | null {
    const r = this.db.prepare(`SELECT * FROM regions WHERE name = ?`).get(name) as Row | undefined;
    return r ? regionFromRow(r) : null;
  }

  /** The region, or E_NOT_FOUND naming it and the known ones. */
  region(name: string): Region {
    const r = this.findRegion(name);
    if (r) return r;
    const known = this.regions().map((x) => x.name);
    throw new GeoDinoError('E_NOT_FOUND', `unknown region ${JSON.stringify(name)}${known.length ? ` (known: ${known.join(', ')})` : ' (no regions yet: add one with `geo-dino monitor add`)'}`, {
      details: { region: name, known },
    });
  }

  regions(): Region[] {
    return (this.db.prepare(`SELECT * FROM regions ORDER BY name`).all() as Row[]).map(regionFromRow);
  }

  removeRegion(name: string): void {
    this.region(name);
    this.db.prepare(`DELETE FROM regions WHERE name = ?`).run(name);
  }

  setRegionEnabled(name: string, enabled: boolean, now: Date): void {
    this.region(name);
    this.db.prepare(`UPDATE regions SET enabled = ?, updated_at = ? WHERE name = ?`).run(enabled ? 1 : 0, now.toISOString(), name);
  }

  // --- runs ------------------------------------------------------------------------------------

  /** The run a region is executing (queued or running), if any. */
  activeRun(region: string): RunRecord | null {
    const r = this.db.prepare(`SELECT * FROM runs WHERE region = ? AND status IN ('queued', 'running') ORDER BY seq DESC LIMIT 1`).get(region) as Row | undefined;
    return r ? runFromRow(r) : null;
  }

  /**
   * Create a queued run. `slot`, when given, is the schedule slot being fired: it is recorded on
   * the region in the same transaction, only if the region's last slot is still `expectSlot`
   * (so a slot fires once even with two schedulers). Returns null when that check fails or the
   * region already has an active run.
   */
  createRun(
    input: {
      region: string;
      trigger: RunTrigger;
      slot: string | null;
      missedSlots?: number;
      dir: (id: string) => string;
      expectSlot?: string | null;
      /** The process that will execute it: the run is created `running` under it (else `queued`). */
      owner?: string;
    },
    now: Date,
  ): RunRecord | null {
    return this.transaction(() => {
      const region = this.region(input.region);
      if (input.slot !== null && (input.expectSlot === undefined ? false : region.lastSlot !== input.expectSlot)) return null;
      if (this.activeRun(input.region)) return null;
      const base = runIdFor(now);
      let id = base;
      for (let n = 2; this.db.prepare(`SELECT 1 FROM runs WHERE region = ? AND id = ?`).get(input.region, id); n++) id = `${base}-${n}`;
      const info = this.db
        .prepare(
          `INSERT INTO runs (region, id, trigger, slot, missed_slots, status, owner, heartbeat_at, created_at, dir)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          input.region,
          id,
          input.trigger,
          input.slot,
          input.missedSlots ?? 0,
          input.owner ? 'running' : 'queued',
          input.owner ?? null,
          input.owner ? now.toISOString() : null,
          now.toISOString(),
          input.dir(id),
        );
      if (input.slot !== null) {
        this.db.prepare(`UPDATE regions SET last_slot = ? WHERE name = ?`).run(input.slot, input.region);
      }
      return this.runBySeq(Number(info.lastInsertRowid));
    });
  }

  runBySeq(seq: number): RunRecord {
    const r = this.db.prepare(`SELECT * FROM runs WHERE seq = ?`).get(seq) as Row | undefined;
    if (!r) throw new GeoDinoError('E_NOT_FOUND', `no run #${seq}`);
    return runFromRow(r);
  }

  run(region: string, id: string): RunRecord {
    const r = this.db.prepare(`SELECT * FROM runs WHERE region = ? AND id = ?`).get(region, id) as Row | undefined;
    if (!r) throw new GeoDinoError('E_NOT_FOUND', `region ${JSON.stringify(region)} has no run ${JSON.stringify(id)}`, { details: { region, run: id } });
    return runFromRow(r);
  }

  /** Runs of a region, newest first. */
  runs(region: string, options: { limit?: number; status?: readonly RunStatus[] } = {}): RunRecord[] {
    const where = options.status?.length ? ` AND status IN (${options.status.map(() => '?').join(', ')})` : '';
    const rows = this.db
      .prepare(`SELECT * FROM runs WHERE region = ?${where} ORDER BY seq DESC LIMIT ?`)
      .all(region, ...(options.status ?? []), options.limit ?? -1) as Row[];
    return rows.map(runFromRow);
  }

  /** Runs not finished (queued or running), all regions, oldest first. */
  unfinishedRuns(): RunRecord[] {
    return (this.db.prepare(`SELECT * FROM runs WHERE status IN ('queued', 'running') ORDER BY seq`).all() as Row[]).map(runFromRow);
  }

  /** The latest succeeded run before `beforeSeq` (the one a new run is compared against). */
  previousSucceeded(region: string, beforeSeq: number): RunRecord | null {
    const r = this.db
      .prepare(`SELECT * FROM runs WHERE region = ? AND status = 'succeeded' AND seq < ? ORDER BY seq DESC LIMIT 1`)
      .get(region, beforeSeq) as Row | undefined;
    return r ? runFromRow(r) : null;
  }

  updateRun(seq: number, update: RunUpdate): RunRecord {
    const keys = Object.keys(update) as (keyof RunUpdate)[];
    if (keys.length) {
      const sets = keys.map((k) => `${RUN_COLUMNS[k]} = @${k}`).join(', ');
      this.db.prepare(`UPDATE runs SET ${sets} WHERE seq = @seq`).run({ ...update, seq });
    }
    return this.runBySeq(seq);
  }

  /**
   * Take ownership of a run to execute it: when it is queued, created for `owner`, or running
   * under an owner the caller has established is gone (`staleOwner`). Returns the run, or null
   * when someone else has it.
   */
  claimRun(seq: number, owner: string, now: Date, staleOwner?: string | null): RunRecord | null {
    return this.transaction(() => {
      const run = this.runBySeq(seq);
      const claimable =
        run.status === 'queued' || (run.status === 'running' && (run.owner === owner || (staleOwner !== undefined && run.owner === staleOwner)));
      if (!claimable) return null;
      this.db
        .prepare(
          `UPDATE runs SET status = 'running', owner = ?, heartbeat_at = ?, started_at = COALESCE(started_at, ?), executions = executions + 1,
             error_code = NULL, error_message = NULL WHERE seq = ?`,
        )
        .run(owner, now.toISOString(), now.toISOString(), seq);
      return this.runBySeq(seq);
    });
  }

  heartbeat(seq: number, owner: string, now: Date): void {
    this.db.prepare(`UPDATE runs SET heartbeat_at = ? WHERE seq = ? AND owner = ?`).run(now.toISOString(), seq, owner);
  }

  // --- per-tile state --------------------------------------------------------------------------

  /** Record the tiles of a run (pending), keeping the state of tiles already known. */
  setTiles(seq: number, tiles: Iterable<{ id: string; batch: number }>, now: Date): void {
    const ins = this.db.prepare(`INSERT OR IGNORE INTO run_tiles (run_seq, tile_id, state, batch, updated_at) VALUES (?, ?, 'pending', ?, ?)`);
    this.transaction(() => {
      for (const t of tiles) ins.run(seq, t.id, t.batch, now.toISOString());
      this.db.prepare(`UPDATE runs SET tiles_total = (SELECT COUNT(*) FROM run_tiles WHERE run_seq = ?) WHERE seq = ?`).run(seq, seq);
    });
  }

  markTilesDone(seq: number, tileIds: readonly string[], now: Date): void {
    const up = this.db.prepare(`UPDATE run_tiles SET state = 'done', updated_at = ? WHERE run_seq = ? AND tile_id = ? AND state <> 'done'`);
    this.transaction(() => {
      for (const id of tileIds) up.run(now.toISOString(), seq, id);
      this.db.prepare(`UPDATE runs SET tiles_done = (SELECT COUNT(*) FROM run_tiles WHERE run_seq = ? AND state = 'done') WHERE seq = ?`).run(seq, seq);
    });
  }

  tiles(seq: number): { id: string; state: 'pending' | 'done'; batch: number | null }[] {
    return (this.db.prepare(`SELECT tile_id, state, batch FROM run_tiles WHERE run_seq = ? ORDER BY batch, tile_id`).all(seq) as Row[]).map((r) => ({
      id: String(r['tile_id']),
      state: String(r['state']) as 'pending' | 'done',
      batch: num(r['batch']),
    }));
  }

  // --- statistics and changes ------------------------------------------------------------------

  setStats(seq: number, s: RunStats): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO run_stats (run_seq, aoi_area_m2, pixel_area_m2, pixels_inside, pixels_valid, valid_area_m2, valid_percent, mean_height_m, max_height_m,
           cover_2m_percent, cover_5m_percent, canopy_2m_area_m2, canopy_5m_area_m2)
         VALUES (@seq, @aoiAreaM2, @pixelAreaM2, @pixelsInside, @pixelsValid, @validAreaM2, @validPercent, @meanHeightM, @maxHeightM,
           @cover2mPercent, @cover5mPercent, @canopy2mAreaM2, @canopy5mAreaM2)`,
      )
      .run({ ...s, seq });
  }

  stats(seq: number): RunStats | null {
    const r = this.db.prepare(`SELECT * FROM run_stats WHERE run_seq = ?`).get(seq) as Row | undefined;
    if (!r) return null;
    return {
      aoiAreaM2: Number(r['aoi_area_m2']),
      pixelAreaM2: Number(r['pixel_area_m2']),
      pixelsInside: Number(r['pixels_inside']),
      pixelsValid: Number(r['pixels_valid']),
      validAreaM2: Number(r['valid_area_m2']),
      validPercent: Number(r['valid_percent']),
      meanHeightM: num(r['mean_height_m']),
      maxHeightM: num(r['max_height_m']),
      cover2mPercent: num(r['cover_2m_percent']),
      cover5mPercent: num(r['cover_5m_percent']),
      canopy2mAreaM2: Number(r['canopy_2m_area_m2']),
      canopy5mAreaM2: Number(r['canopy_5m_area_m2']),
    };
  }

  /** Record (replace) a run's land-cover statistics; null removes them. */
  setLandcoverStats(seq: number, s: LandcoverStats | null): void {
    const ins = this.db.prepare(
      `INSERT INTO run_landcover_classes (run_seq, position, value, name, title, color, pixels, area_m2, percent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.transaction(() => {
      this.db.prepare(`DELETE FROM run_landcover WHERE run_seq = ?`).run(seq);
      if (!s) return;
      this.db
        .prepare(`INSERT INTO run_landcover (run_seq, head, head_sha256, nodata, pixels_classified, classified_area_m2) VALUES (?, ?, ?, ?, ?, ?)`)
        .run(seq, s.head, s.headSha256, s.nodata, s.pixelsClassified, s.classifiedAreaM2);
      s.classes.forEach((c, k) => ins.run(seq, k, c.value, c.name, c.title, c.color, c.pixels, c.areaM2, c.percent));
    });
  }

  landcoverStats(seq: number): LandcoverStats | null {
    const r = this.db.prepare(`SELECT * FROM run_landcover WHERE run_seq = ?`).get(seq) as Row | undefined;
    if (!r) return null;
    const classes = (this.db.prepare(`SELECT * FROM run_landcover_classes WHERE run_seq = ? ORDER BY position`).all(seq) as Row[]).map((c) => ({
      value: Number(c['value']),
      name: String(c['name']),
      title: str(c['title']),
      color: String(c['color']),
      pixels: Number(c['pixels']),
      areaM2: Number(c['area_m2']),
      percent: Number(c['percent']),
    }));
    return {
      head: String(r['head']),
      headSha256: String(r['head_sha256']),
      nodata: Number(r['nodata']),
      pixelsClassified: Number(r['pixels_classified']),
      classifiedAreaM2: Number(r['classified_area_m2']),
      classes,
    };
  }

  /** Replace a run's changes (a resumed run recomputes the same ones). */
  setChanges(seq: number, changes: readonly ChangeRecord[]): void {
    const ins = this.db.prepare(
      `INSERT INTO changes (run_seq, change_id, area_m2, mean_loss_m, max_loss_m, pixels, centroid_lon, centroid_lat, bbox) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.transaction(() => {
      this.db.prepare(`DELETE FROM changes WHERE run_seq = ?`).run(seq);
      for (const c of changes) ins.run(seq, c.changeId, c.areaM2, c.meanLossM, c.maxLossM, c.pixels, c.centroid[0], c.centroid[1], JSON.stringify(c.bbox));
    });
  }

  changes(seq: number): ChangeRecord[] {
    return (this.db.prepare(`SELECT * FROM changes WHERE run_seq = ? ORDER BY area_m2 DESC, change_id`).all(seq) as Row[]).map((r) => ({
      changeId: String(r['change_id']),
      areaM2: Number(r['area_m2']),
      meanLossM: Number(r['mean_loss_m']),
      maxLossM: Number(r['max_loss_m']),
      pixels: Number(r['pixels']),
      centroid: [Number(r['centroid_lon']), Number(r['centroid_lat'])],
      bbox: JSON.parse(String(r['bbox'])) as [number, number, number, number],
    }));
  }

  // --- per-shard history (sharded regions) -----------------------------------------------------

  /** Record a run's shard results (replacing the run's earlier ones: a resumed run records them again). */
  setShardResults(seq: number, results: readonly Omit<ShardResult, 'runSeq' | 'run'>[]): void {
    const ins = this.db.prepare(
      `INSERT INTO shard_results (region, shard_id, run_seq, zone, path, sha256, crs, bounds, gsd, valid_pixels, status, previous_run_seq, changes, loss_area_m2, changed_area_m2, meta, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.transaction(() => {
      this.db.prepare(`DELETE FROM shard_results WHERE run_seq = ?`).run(seq);
      for (const r of results) {
        ins.run(r.region, r.shardId, seq, r.zone, r.path, r.sha256, r.crs, JSON.stringify(r.bounds), r.gsd, r.validPixels, r.status, r.previousRunSeq, r.changes, r.lossAreaM2, r.changedAreaM2, JSON.stringify(r.meta), r.createdAt);
      }
    });
  }

  /** The shard results of one run, by shard id. */
  shardResults(seq: number): ShardResult[] {
    return (this.db.prepare(`SELECT s.*, r.id AS run_id FROM shard_results s JOIN runs r ON r.seq = s.run_seq WHERE s.run_seq = ? ORDER BY s.shard_id`).all(seq) as Row[]).map(shardFromRow);
  }

  /** A shard's results in every run of its region, newest first. */
  shardHistory(region: string, shardId: string): ShardResult[] {
    return (
      this.db.prepare(`SELECT s.*, r.id AS run_id FROM shard_results s JOIN runs r ON r.seq = s.run_seq WHERE s.region = ? AND s.shard_id = ? ORDER BY s.run_seq DESC`).all(region, shardId) as Row[]
    ).map(shardFromRow);
  }

  /**
   * The latest result of every shard of a region from succeeded runs before `beforeSeq` (default:
   * all): the region's current map, and what a run compares each shard against. Ordered by shard id.
   */
  latestShardResults(region: string, beforeSeq: number = Number.MAX_SAFE_INTEGER): ShardResult[] {
    return (
      this.db
        .prepare(
          `SELECT s.*, r.id AS run_id FROM shard_results s JOIN runs r ON r.seq = s.run_seq
           WHERE s.region = ? AND r.status = 'succeeded' AND s.run_seq < ?
             AND s.run_seq = (SELECT MAX(t.run_seq) FROM shard_results t JOIN runs u ON u.seq = t.run_seq
                              WHERE t.region = s.region AND t.shard_id = s.shard_id AND u.status = 'succeeded' AND t.run_seq < ?)
           ORDER BY s.shard_id`,
        )
        .all(region, beforeSeq, beforeSeq) as Row[]
    ).map(shardFromRow);
  }

  // --- the daemon lock ---------------------------------------------------------------------------

  /**
   * Become the daemon: succeeds when no daemon is recorded, or the recorded one is not alive
   * (`isAlive` decides from its owner and heartbeat). Returns the owner holding it otherwise.
   */
  acquireDaemon(owner: string, now: Date, isAlive: (owner: string, heartbeatAt: string) => boolean): { ok: true } | { ok: false; owner: string; heartbeatAt: string } {
    return this.transaction(() => {
      const r = this.db.prepare(`SELECT owner, heartbeat_at FROM daemon WHERE id = 1`).get() as { owner: string; heartbeat_at: string } | undefined;
      if (r && r.owner !== owner && isAlive(r.owner, r.heartbeat_at)) return { ok: false as const, owner: r.owner, heartbeatAt: r.heartbeat_at };
      this.db.prepare(`INSERT OR REPLACE INTO daemon (id, owner, started_at, heartbeat_at) VALUES (1, ?, ?, ?)`).run(owner, now.toISOString(), now.toISOString());
      return { ok: true as const };
    });
  }

  daemonHeartbeat(owner: string, now: Date): void {
    this.db.prepare(`UPDATE daemon SET heartbeat_at = ? WHERE id = 1 AND owner = ?`).run(now.toISOString(), owner);
  }

  releaseDaemon(owner: string): void {
    this.db.prepare(`DELETE FROM daemon WHERE id = 1 AND owner = ?`).run(owner);
  }

  daemon(): { owner: string; startedAt: string; heartbeatAt: string } | null {
    const r = this.db.prepare(`SELECT owner, started_at, heartbeat_at FROM daemon WHERE id = 1`).get() as { owner: string; started_at: string; heartbeat_at: string } | undefined;
    return r ? { owner: r.owner, startedAt: r.started_at, heartbeatAt: r.heartbeat_at } : null;
  }

  // --- alerts ----------------------------------------------------------------------------------

  /**
   * Record an alert under its idempotency key. Returns false when the key exists already: the
   * alert was raised before (by this run, resumed, or anything else) and must not be raised again.
   */
  insertAlert(a: Omit<AlertRecord, 'attempts' | 'lastError' | 'deliveredAt'>): boolean {
    const info = this.db
      .prepare(
        `INSERT OR IGNORE INTO alerts (key, run_seq, region, kind, payload, webhook_url, status, attempts, next_attempt_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
      )
      .run(a.key, a.runSeq, a.region, a.kind, a.payload, a.webhookUrl, a.status, a.nextAttemptAt, a.createdAt);
    return info.changes === 1;
  }

  alert(key: string): AlertRecord | null {
    const r = this.db.prepare(`SELECT * FROM alerts WHERE key = ?`).get(key) as Row | undefined;
    return r ? alertFromRow(r) : null;
  }

  alerts(filter: { region?: string; runSeq?: number; status?: AlertStatus } = {}): AlertRecord[] {
    const clauses: string[] = [];
    const args: unknown[] = [];
    if (filter.region !== undefined) (clauses.push('region = ?'), args.push(filter.region));
    if (filter.runSeq !== undefined) (clauses.push('run_seq = ?'), args.push(filter.runSeq));
    if (filter.status !== undefined) (clauses.push('status = ?'), args.push(filter.status));
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    return (this.db.prepare(`SELECT * FROM alerts ${where} ORDER BY created_at, key`).all(...args) as Row[]).map(alertFromRow);
  }

  /** Pending alerts whose next attempt is due. */
  dueAlerts(now: Date): AlertRecord[] {
    return (
      this.db.prepare(`SELECT * FROM alerts WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY created_at, key`).all(now.toISOString()) as Row[]
    ).map(alertFromRow);
  }

  /** The earliest time a pending alert wants another attempt. */
  nextAlertAttempt(): string | null {
    const r = this.db.prepare(`SELECT MIN(next_attempt_at) AS t FROM alerts WHERE status = 'pending'`).get() as { t: string | null };
    return r.t;
  }

  /**
   * Take a pending, due alert for one delivery round: pushes its next attempt to `leaseUntil`, so
   * another process looking at the same moment does not deliver it too. False when not claimable.
   */
  claimAlert(key: string, now: Date, leaseUntil: Date): boolean {
    const info = this.db
      .prepare(`UPDATE alerts SET next_attempt_at = ? WHERE key = ? AND status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)`)
      .run(leaseUntil.toISOString(), key, now.toISOString());
    return info.changes === 1;
  }

  recordAlertAttempt(key: string, outcome: { delivered: boolean; attempts: number; error: string | null; nextAttemptAt: string | null; failed: boolean }, now: Date): void {
    const status: AlertStatus = outcome.delivered ? 'delivered' : outcome.failed ? 'failed' : 'pending';
    this.db
      .prepare(
        `UPDATE alerts SET status = ?, attempts = attempts + ?, last_error = ?, next_attempt_at = ?, delivered_at = ? WHERE key = ? AND status = 'pending'`,
      )
      .run(status, outcome.attempts, outcome.error, outcome.nextAttemptAt, outcome.delivered ? now.toISOString() : null, key);
  }
}

/** `2025-06-11T02:40:00.123Z` → `20250611T024000Z`: sortable, path- and job-id-safe. */
export function runIdFor(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
}

/** Region directories under `regions/` that hold a region's files (its AOI copy or runs). */
export function regionDirectoriesOnDisk(paths: Pick<MonitorPaths, 'regions'>): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(paths.regions, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isDirectory() && ['aoi.geojson', 'runs', 'collection.json'].some((f) => existsSync(join(paths.regions, e.name, f))))
    .map((e) => e.name)
    .sort();
}

/**
 * Open the monitoring store of `paths`, refusing to start a new one over a lost store: when the
 * database file is missing or empty (truncated to 0 bytes) while `regions/` holds regions' files,
 * E_STORE_LOST names them instead of silently beginning again with no regions.
 */
export function openMonitorStore(paths: Pick<MonitorPaths, 'store' | 'regions'>, options: OpenStoreOptions = {}): MonitorStore {
  const st = statSync(paths.store, { throwIfNoEntry: false });
  if (!st || st.size === 0) {
    const regions = regionDirectoriesOnDisk(paths);
    if (regions.length) {
      const shown = regions.slice(0, 5).join(', ') + (regions.length > 5 ? ', …' : '');
      throw new GeoDinoError(
        'E_STORE_LOST',
        `${paths.store}: the store is ${st ? 'empty (0 bytes)' : 'missing'} but ${paths.regions} holds ${regions.length} region${regions.length > 1 ? 's' : ''} (${shown}): it was lost or truncated. Restore it from a backup, or move ${paths.regions} aside to start a new store`,
        { details: { path: paths.store, regions } },
      );
    }
  }
  return MonitorStore.open(paths.store, options);
}
