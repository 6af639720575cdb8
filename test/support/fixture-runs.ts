/**
 * A served directory with two runs of one area (2024 and 2025, the second 1.5 m taller), each a
 * GDAL-made run directory with its PMTiles layers written by @geo-dino/pmtiles — what
 * `geo-dino serve` sees after two `geo-dino chm` runs. Used by the server and viewer tests.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeRunTiles } from '@geo-dino/pmtiles';
import { makeFixtureRun, type FixtureRun } from './fixture-run.js';

export interface FixtureRoot {
  root: string;
  runs: { id: string; fixture: FixtureRun }[];
}

export async function makeFixtureRoot(root: string): Promise<FixtureRoot> {
  mkdirSync(root, { recursive: true });
  const runs: FixtureRoot['runs'] = [];
  for (const [id, offset, date, tag] of [
    ['forest/2024-05-01', 0, '2024-05-01T02:30:00Z', 'a'],
    ['forest/2025-06-11', 1.5, '2025-06-11T02:40:00Z', 'b'],
  ] as const) {
    const dir = join(root, ...id.split('/'));
    const fixture = makeFixtureRun(dir, { offset, date, tag });
    await writeRunTiles(dir, {
      imagery: join(dir, 'imagery.tif'),
      landcoverClasses: [
        { value: 1, name: 'bare', color: '#d7c8a0' },
        { value: 2, name: 'low vegetation', color: '#bee678' },
        { value: 3, name: 'shrub', color: '#6eb446' },
        { value: 4, name: 'forest', color: '#146428' },
      ],
    });
    runs.push({ id, fixture });
  }
  return { root, runs };
}
