/**
 * Static mode (a site written by `geo-dino publish`): the runs come from runs.json; point values
 * and AOI statistics are computed in a Web Worker (static-worker.ts) from the published COGs.
 * Before a run is shown its files are probed with a one-byte Range request, so a missing file or
 * a server without Range support gives a message naming it instead of a blank or hanging map.
 */
import type { PointResponse, RunInfo, RunsResponse, SiteConfig } from '@geo-dino/server/api-types';
import type { Backend, ViewerStats } from './api.js';
import { probeRange } from './cog.js';
import type { WorkerReply, WorkerRequest } from './static-protocol.js';

/** Default pixel cap for full-resolution statistics (`?fullResPixels=` overrides it). */
export const FULL_RES_PIXELS = 4_000_000;

export class StaticSiteError extends Error {}

export async function staticBackend(site: SiteConfig): Promise<Backend> {
  const base = document.baseURI;
  const index = site.runs ?? 'runs.json';
  const res = await fetch(new URL(index, base).href, { cache: 'no-store' });
  if (res.status === 404) throw new StaticSiteError(`${index} is missing from the published site`);
  if (!res.ok) throw new StaticSiteError(`${index}: HTTP ${res.status}`);
  const runs = ((await res.json()) as RunsResponse).runs;
  const lonLat = site.lonLat ?? '+proj=longlat +datum=WGS84 +no_defs';
  const q = new URLSearchParams(location.search);
  const cap = Number(q.get('fullResPixels'));
  const fullResPixels = Number.isFinite(cap) && cap > 0 ? Math.floor(cap) : FULL_RES_PIXELS;

  const worker = new Worker(new URL('./static-worker.ts', import.meta.url), { type: 'module' });
  let next = 1;
  const pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  worker.onmessage = (e: MessageEvent<WorkerReply>): void => {
    const p = pending.get(e.data.id);
    if (!p) return;
    pending.delete(e.data.id);
    if (e.data.type === 'error') p.reject(new StaticSiteError(e.data.error.message));
    else p.resolve(e.data);
  };
  worker.onerror = (e): void => {
    for (const p of pending.values()) p.reject(new StaticSiteError(`the value reader stopped: ${e.message}`));
    pending.clear();
  };
  type Req = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id' | 'base' | 'lonLat'> : never) : never;
  const ask = (req: Req, signal?: AbortSignal): Promise<WorkerReply> =>
    new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      signal?.addEventListener('abort', () => {
        if (pending.delete(id)) reject(new DOMException('aborted', 'AbortError'));
      });
      worker.postMessage({ ...req, id, base, lonLat } as WorkerRequest);
    });
  const find = (id: string): RunInfo => {
    const r = runs.find((x) => x.id === id);
    if (!r) throw new StaticSiteError(`unknown run ${id}`);
    if (!r.static) throw new StaticSiteError(`${index}: run ${id} has no static files listed (publish it again)`);
    return r;
  };
  const checked = new Map<string, Promise<void>>();

  return {
    mode: 'static',
    config: { version: site.version, basemap: site.basemap },
    runs: async () => ({ runs }),
    async check(id) {
      let c = checked.get(id);
      if (!c) {
        const r = find(id);
        const files = [...r.layers.map((l) => l.url), ...r.static!.heights.flatMap((h) => h.parts.slice(0, 1).map((p) => p.href))];
        c = Promise.all(files.map((f) => probeRange(new URL(f, base).href, f))).then(() => undefined);
        c.catch(() => checked.delete(id));
        checked.set(id, c);
      }
      return c;
    },
    async point(id, lon, lat, signal) {
      const r = find(id);
      const classes = (r.layers.find((l) => l.layer === 'landcover')?.geoDino?.classes ?? []).map((c) => ({ value: c.value, name: c.name }));
      const reply = await ask({ type: 'point', run: r.static!, lon, lat, classes }, signal);
      if (reply.type !== 'point') throw new StaticSiteError('unexpected answer');
      return { run: id, lon, lat, ...reply.result } satisfies PointResponse;
    },
    async stats(id, geojson) {
      const r = find(id);
      const reply = await ask({ type: 'stats', run: r.static!, geojson, fullResPixels });
      if (reply.type !== 'stats') throw new StaticSiteError('unexpected answer');
      return { run: id, polygon: reply.result.polygon, ...reply.result.stats, resolution: reply.result.resolution } satisfies ViewerStats;
    },
  };
}
