/**
 * Where monitoring keeps its state, inside the geo-dino home directory (`$GEO_DINO_HOME`, default
 * `~/.geo-dino`):
 *
 * ```
 * $GEO_DINO_HOME/
 *   geo-dino.sqlite                      the store (regions, runs, tiles, statistics, changes, alerts)
 *   regions/<name>/
 *     aoi.geojson                        the region's AOI, copied at `monitor add`
 *     collection.json                    STAC Collection of the region's runs (the viewer's dates)
 *     runs/<run-id>/                     one run directory per run (the `geo-dino chm` contract,
 *                                        plus stats.json, change.geojson and loss.tif)
 *     work/<run-id>/                     a run's working state (plan, tile store); removed when the run succeeds
 * ```
 *
 * In distributed mode, `regions/` must be on storage every worker sees at the same path (NFS, a
 * shared volume): workers read the plan and write tiles under `work/<run-id>/`.
 */
import { join, resolve } from 'node:path';
import { GeoDinoError, geoDinoHome, homePaths } from '@geo-dino/core';

/** Region names: used in paths, URLs and BullMQ job ids (which may not contain `:`). */
export const REGION_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function assertRegionName(name: string, field = 'region name'): void {
  if (!REGION_NAME.test(name)) {
    throw new GeoDinoError(
      'E_BAD_SCHEDULE',
      `${field} ${JSON.stringify(name)} is not valid: use 1-64 letters, digits, '-' or '_', starting with a letter or digit`,
      { details: { name } },
    );
  }
}

export interface MonitorPaths {
  home: string;
  store: string;
  regions: string;
  region(name: string): string;
  aoi(name: string): string;
  collection(name: string): string;
  runs(name: string): string;
  run(name: string, runId: string): string;
  work(name: string, runId: string): string;
}

export function monitorPaths(home: string = geoDinoHome()): MonitorPaths {
  const h = homePaths(resolve(home));
  const regions = join(h.home, 'regions');
  const region = (name: string): string => {
    assertRegionName(name);
    return join(regions, name);
  };
  return {
    home: h.home,
    store: h.store,
    regions,
    region,
    aoi: (name) => join(region(name), 'aoi.geojson'),
    collection: (name) => join(region(name), 'collection.json'),
    runs: (name) => join(region(name), 'runs'),
    run: (name, runId) => join(region(name), 'runs', runId),
    work: (name, runId) => join(region(name), 'work', runId),
  };
}
