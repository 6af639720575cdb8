/**
 * The server's JSON API (same origin only).
 */
import type { ConfigResponse, PointResponse, RunsResponse, StatsResponse } from '@geo-dino/server/api-types';

async function json<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => null)) as unknown;
  if (!res.ok) {
    const msg = body && typeof body === 'object' && 'error' in body ? String((body as { error: unknown }).error) : res.statusText;
    throw new Error(msg || `HTTP ${res.status}`);
  }
  return body as T;
}

export async function getConfig(): Promise<ConfigResponse> {
  return json<ConfigResponse>(await fetch('/api/config'));
}

export async function getRuns(): Promise<RunsResponse> {
  return json<RunsResponse>(await fetch('/api/runs'));
}

export async function getPoint(run: string, lon: number, lat: number, signal?: AbortSignal): Promise<PointResponse> {
  const q = new URLSearchParams({ run, lon: String(lon), lat: String(lat) });
  return json<PointResponse>(await fetch(`/api/point?${q}`, signal ? { signal } : {}));
}

export async function postStats(run: string, geojson: unknown): Promise<StatsResponse> {
  const res = await fetch(`/api/stats?${new URLSearchParams({ run })}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/geo+json' },
    body: JSON.stringify(geojson),
  });
  return json<StatsResponse>(res);
}
