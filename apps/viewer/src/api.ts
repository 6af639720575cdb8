/**
 * Where values come from. `/site.json` says the mode: `geo-dino serve` answers `server` (the JSON
 * API on the same origin); a site written by `geo-dino publish` holds `static` and its runs index,
 * and values and statistics are computed in the browser from the COGs (static.ts). The same build
 * serves both.
 */
import type { ConfigResponse, PointResponse, RunsResponse, SiteConfig, StatsResponse } from '@geo-dino/server/api-types';
import type { StatsResolution } from './static-protocol.js';

export type ViewerStats = StatsResponse & { resolution?: StatsResolution };

export interface Backend {
  mode: 'server' | 'static';
  config: ConfigResponse;
  runs(): Promise<RunsResponse>;
  point(run: string, lon: number, lat: number, signal?: AbortSignal): Promise<PointResponse>;
  stats(run: string, geojson: unknown): Promise<ViewerStats>;
  /** Static mode: check the files the map needs before showing a run (a message naming a missing file, or a server without Range). */
  check?(run: string): Promise<void>;
}

async function json<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => null)) as unknown;
  if (!res.ok) {
    const msg = body && typeof body === 'object' && 'error' in body ? String((body as { error: unknown }).error) : res.statusText;
    throw new Error(msg || `HTTP ${res.status}`);
  }
  return body as T;
}

/** The server's JSON API (same origin only). */
export function serverBackend(config: ConfigResponse): Backend {
  return {
    mode: 'server',
    config,
    runs: async () => json<RunsResponse>(await fetch('/api/runs')),
    point: async (run, lon, lat, signal) => {
      const q = new URLSearchParams({ run, lon: String(lon), lat: String(lat) });
      return json<PointResponse>(await fetch(`/api/point?${q}`, signal ? { signal } : {}));
    },
    stats: async (run, geojson) => {
      const res = await fetch(`/api/stats?${new URLSearchParams({ run })}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/geo+json' },
        body: JSON.stringify(geojson),
      });
      return json<StatsResponse>(res);
    },
  };
}

/** The backend this page runs against (site.json next to the page). */
export async function openBackend(): Promise<Backend> {
  const res = await fetch(new URL('site.json', document.baseURI).href, { cache: 'no-store' });
  if (res.status === 404) throw new Error('site.json is missing: this is neither `geo-dino serve` nor a site written by `geo-dino publish`');
  const site = await json<SiteConfig>(res);
  if (site.mode === 'static') {
    const { staticBackend } = await import('./static.js');
    return staticBackend(site);
  }
  return serverBackend({ version: site.version, basemap: site.basemap });
}
