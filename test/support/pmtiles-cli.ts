/**
 * The reference PMTiles CLI (protomaps/go-pmtiles), used as an oracle by the PMTiles tests.
 * `.ci/run` installs it with `go install github.com/protomaps/go-pmtiles@v1.31.2`, which names the
 * binary `go-pmtiles` in `$(go env GOPATH)/bin`. A missing binary fails the test with the reason.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const GO_PMTILES_VERSION = 'v1.31.2';

function candidates(): string[] {
  const out: string[] = [];
  const env = process.env['GEO_DINO_PMTILES_CLI'];
  if (env) out.push(env);
  try {
    const gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8', timeout: 30_000 }).trim();
    if (gopath) out.push(join(gopath, 'bin', 'go-pmtiles'));
  } catch {
    // no Go toolchain: try the usual places
  }
  out.push(join(homedir(), 'go', 'bin', 'go-pmtiles'), 'pmtiles', 'go-pmtiles');
  return out;
}

/** The path of a working go-pmtiles binary; throws with install instructions otherwise. */
export function requirePmtilesCli(): string {
  const tried: string[] = [];
  for (const c of candidates()) {
    if (c.includes('/') && !existsSync(c)) {
      tried.push(`${c} (missing)`);
      continue;
    }
    try {
      execFileSync(c, ['version'], { stdio: 'ignore', timeout: 30_000 });
      return c;
    } catch (err) {
      tried.push(`${c} (${(err as Error).message.split('\n')[0]})`);
    }
  }
  throw new Error(
    `required tool not available: go-pmtiles (tried ${tried.join('; ')}); ` +
      `install it with \`go install github.com/protomaps/go-pmtiles@${GO_PMTILES_VERSION}\` as .ci/run does, or set GEO_DINO_PMTILES_CLI`,
  );
}

/** Run the CLI; returns stdout and stderr together and the exit status (never throws on a non-zero exit). */
export function runPmtilesCli(args: readonly string[]): { code: number; output: string } {
  const bin = requirePmtilesCli();
  const r = spawnSync(bin, [...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? 1, output: `${r.stdout}${r.stderr}` };
}
