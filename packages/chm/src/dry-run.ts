/**
 * `geo-dino chm --dry-run`: the plan of a run and what it will cost, without predicting a tile.
 *
 * Sizes come from the plan (shards clipped to the zone grids, planned tiles); the time from a
 * tiles/s rate, given (`--rate`) or measured in a short probe of the model on this machine
 * (`probeTilesPerSecond`: the model opened as a run opens it, one warm-up tile, then timed tiles).
 */
import { silentLogger, type Logger } from '@geo-dino/core';
import type { ModelDir } from '@geo-dino/model';
import type { Device } from '@geo-dino/runtime';
import { crsLabel } from '@geo-dino/tiling';
import { batchFor, executionFor } from './execution.js';
import { openPlanModel } from './extra-heads.js';
import { layoutOf, planShards, shardGridOf } from './plan.js';
import type { ChmPlan } from './types.js';
import { MAX_SHARDS_WITHOUT_FORCE } from './plan.js';

export interface PlanSummary {
  aoi: { source: string; areaKm2: number };
  layout: ChmPlan['layout'];
  shardSize: number;
  zones: { zone: string; crs: string; width: number; height: number; gsd: number; shards: number; tiles: number; aoiKm2: number; scenes: number }[];
  shards: number;
  tiles: number;
  /** Pixels of the shards' windows (what the COGs hold) and their ground area. */
  outputPixels: number;
  outputKm2: number;
  /** chm.tif bytes before compression (float32 × bands), and a typical DEFLATE size (~45 %). */
  outputBytes: { uncompressed: number; estimate: number };
  rate: { tilesPerSecond: number; source: 'given' | 'probe' } | null;
  estimatedSeconds: number | null;
  /** More shards than a run accepts without --force. */
  needsForce: boolean;
}

/** Sizes of a plan (no model, no I/O). */
export function summarizePlan(plan: ChmPlan, rate: PlanSummary['rate'] = null): PlanSummary {
  let outputPixels = 0;
  let outputKm2 = 0;
  const zones: PlanSummary['zones'] = [];
  let bands = 2;
  for (const z of plan.zones) {
    bands = z.heads[0]!.planes.filter((p) => p === 'height' || p === 'uncertainty').length;
    const sg = shardGridOf(z);
    let px = 0;
    for (const s of planShards(z, layoutOf(z))) {
      const c = sg.clip(s);
      px += c.width * c.height;
    }
    outputPixels += px;
    const m = z.grid.gsd * z.grid.crs.metresPerUnit;
    outputKm2 += (px * m * m) / 1e6;
    zones.push({
      zone: z.shards.zone,
      crs: crsLabel(z.grid.crs),
      width: z.grid.width,
      height: z.grid.height,
      gsd: z.grid.gsd,
      shards: z.shards.count,
      tiles: z.tiling.tiles,
      aoiKm2: Number((z.aoi.areaM2 / 1e6).toFixed(3)),
      scenes: z.sources.filter((s) => s.gridBbox).length,
    });
  }
  const uncompressed = outputPixels * 4 * bands;
  return {
    aoi: { source: plan.aoi.source, areaKm2: Number((plan.aoi.areaM2 / 1e6).toFixed(3)) },
    layout: plan.layout,
    shardSize: plan.shardSize,
    zones,
    shards: plan.shards,
    tiles: plan.tiles,
    outputPixels,
    outputKm2: Number(outputKm2.toFixed(3)),
    outputBytes: { uncompressed, estimate: Math.round(uncompressed * 0.45) },
    rate,
    estimatedSeconds: rate && rate.tilesPerSecond > 0 ? Math.round(plan.tiles / rate.tilesPerSecond) : null,
    needsForce: plan.shards > MAX_SHARDS_WITHOUT_FORCE,
  };
}

/** Tiles per second of the plan's model on this machine: a warm-up tile, then `tiles` timed ones. */
export async function probeTilesPerSecond(md: ModelDir, plan: ChmPlan, options: { device?: Device; threads?: number; tiles?: number; log?: Logger } = {}): Promise<number> {
  const log = options.log ?? silentLogger();
  const zone = plan.zones[0]!;
  const exec = executionFor(options.device ?? 'auto', { ...(options.threads !== undefined ? { threads: options.threads } : {}) });
  const runner = await openPlanModel(md.dir, zone, { device: exec.device, threads: exec.threads, workers: exec.workers, log });
  try {
    const B = batchFor(runner.provider, undefined);
    const T = zone.tiling.tileSize;
    const px = new Float32Array(B * 3 * T * T);
    for (let i = 0; i < px.length; i++) px[i] = Math.sin(i * 0.37) * 0.5;
    await runner.runChm(px, B, T, T);
    const n = Math.max(1, options.tiles ?? 2);
    const t0 = performance.now();
    for (let k = 0; k < n; k++) await runner.runChm(px, B, T, T);
    return (n * B) / ((performance.now() - t0) / 1000);
  } finally {
    await runner.close();
  }
}
