/**
 * Where geo-dino keeps state: one home directory, `$GEO_DINO_HOME` (default `~/.geo-dino`).
 * It holds the monitoring store, configuration, downloaded models and default outputs.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function geoDinoHome(env: NodeJS.ProcessEnv = process.env): string {
  const v = env['GEO_DINO_HOME'];
  return v && v.trim() ? resolve(v) : join(homedir(), '.geo-dino');
}

/** Standard places inside the home directory. */
export function homePaths(home = geoDinoHome()): { home: string; models: string; runs: string; store: string; config: string } {
  return {
    home,
    models: join(home, 'models'),
    runs: join(home, 'runs'),
    store: join(home, 'geo-dino.sqlite'),
    config: join(home, 'config.json'),
  };
}
