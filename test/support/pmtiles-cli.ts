/**
 * The reference PMTiles CLI (protomaps/go-pmtiles), used as an oracle by the PMTiles tests.
 * Pinned and installed by `npm test` / `npm run test:tools` (test/tools/tools.mjs) into
 * `$GEO_DINO_TOOLS/go-pmtiles@<version>/bin`; `GEO_DINO_PMTILES_CLI` names another binary.
 * A missing binary fails the test with the reason.
 */
import { spawnSync } from 'node:child_process';
import { pmtilesCli, requireTool } from './tools.js';

/** The path of a working go-pmtiles binary; throws with install instructions otherwise. */
export function requirePmtilesCli(): string {
  const bin = pmtilesCli();
  requireTool(bin, ['version']);
  return bin;
}

/** Run the CLI; returns stdout and stderr together and the exit status (never throws on a non-zero exit). */
export function runPmtilesCli(args: readonly string[]): { code: number; output: string } {
  const bin = requirePmtilesCli();
  const r = spawnSync(bin, [...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? 1, output: `${r.stdout}${r.stderr}` };
}
