/**
 * Seamless across source scenes (issue 20): seamlines between overlapping scenes along
 * least-cost paths, and predictions feathered across them.
 *
 * Without this, the mosaic takes per pixel the first valid scene in priority order, so a
 * scene's footprint edge is a hard radiometric edge inside the tiles that cross it, and the
 * model's heights step there.
 *
 * **Seamlines (plan time, `planSeams`).** For every pair of scenes whose extents overlap (neither
 * containing the other; one inside another: below), the overlap is read from both scenes on a
 * coarse grid (cells of `step` pixels, at most ~1024 cells along the seam) and a seam is found by
 * dynamic programming (a
 * least-cost 8-connected path from one end of the overlap to the other, one cell across per cell
 * along at most) over the cost
 *
 *     0.02 + (|∇L_a| + |∇L_b|) / 1020 + (ExG_a + ExG_b) / 510 + |L_a − L_b − m| / 255
 *
 * (L luminance, ∇ central differences, ExG = max(0, 2G − R − B) a canopy proxy, m the mean
 * luminance offset of the overlap): the seam prefers low-contrast, low-canopy ground where the
 * two acquisitions agree. Cells where either scene has no data cost 1000. The seam keeps half
 * the transition zone away from the overlap's sides, so the whole zone has both scenes. Scene
 * `a` (higher priority) keeps the side towards the rest of its footprint, `b` the other: the
 * priority order still decides which scene wins each side. Seams are stored in the plan.
 *
 * **A scene inside another (footprint seams).** When scene `a`'s extent lies inside a
 * lower-priority scene `b`'s there are no two sides to cut between: the seam is a closed
 * transition zone along a's valid-footprint edge, inside a (`footprint: true`, `overlap` = a's
 * extent, no seamline samples, no radiometry fit). At predict time a is also rendered over the
 * tile and F + 1 px around it (`footprintHalo`), and e, the exact Euclidean distance inward from
 * its footprint edge (`footprintEdgeDistance`: distance to the nearest no-data pixel centre − ½),
 * stands in for the signed distance: d = e − F/2, so a's weight is sin²(π/2 · e/F) for e < F and
 * 1 beyond — the seamlines' profile, ~0 at the edge where b continues; the pixel is a's where
 * e ≥ F/2. Only an edge that b shows through is a seam: pixels where b has no data either count
 * as a's for the distance, so an edge the two footprints share (nothing beyond it) keeps a's
 * pixels and costs no extra inference. When the inner scene has the lower priority (a contains
 * b), b is hidden by a, as in the plain mosaic: no seam.
 *
 * **Mosaic and weights (predict time, `composeTile`).** A pixel where several scenes are valid
 * starts from the first in priority order; for each later valid scene with a seam to the current
 * winner, the pixel goes to the side's scene. Its signed distance d to the seam (towards `a`)
 * gives `a` the weight sin²(π/2 · (d + F/2) / F) inside the zone |d| < F/2 (1 beyond on a's side,
 * 0 on b's) and `b` the rest: a partition of unity, as between tiles. Where more than two scenes
 * overlap, a pixel blends the pair of the last seam that decided it.
 *
 * **Feathered tiles.** A tile with a valid pixel strictly inside a zone is predicted once per
 * scene that has weight in it (that scene's pixels alone, no data elsewhere); the predictions
 * are stored as variants of the tile with their weight planes, and the window layers blend them
 * as a mixture with the tile's window (heights and uncertainty exactly as between tiles). Tiles
 * meeting an overlap but no zone are predicted once, on the seamline mosaic; other tiles are
 * untouched. The extra model inputs are counted (`sceneTiles` in run.json).
 */
import { GeoDinoError, throwIfAborted, type Logger } from '@geo-dino/core';
import { NO_SOURCE, prepareTileSources, renderTile, TileLayout, type Grid, type Tile, type TileSpec } from '@geo-dino/tiling';
import type { SourceOpener } from './sources.js';
import type { PlannedSource, RunPlan, SceneRadiometry, SceneSeam } from './types.js';

/** Default width of the transition zone across a scene seamline (metres): 40 pixels at 0.6 m. */
export const DEFAULT_SCENE_FEATHER_M = 24;

/** Longest seam, in coarse cells, before the cells grow (bounds the plan's reading and memory). */
const MAX_SEAM_CELLS = 1024;

/**
 * The transition zone's width in grid pixels. An explicit width must be ≥ 0 and at most one tile
 * stride (tile size − overlap): a wider zone would only make whole tiles in its middle predicted
 * once per scene for no gain, as the model sees one tile at a time. The default is capped there.
 */
export function resolveSceneFeather(metres: number | undefined, tileSize: number, overlap: number, pixelMetres: number): { metres: number; px: number } {
  const stride = tileSize - overlap;
  const maxM = stride * pixelMetres;
  if (metres === undefined) {
    const px = Math.min(stride, Math.round(DEFAULT_SCENE_FEATHER_M / pixelMetres));
    return { metres: px * pixelMetres, px };
  }
  if (!Number.isFinite(metres) || metres < 0) {
    throw new GeoDinoError('E_ARGUMENT', `--scene-feather: must be a width in metres ≥ 0 (0 turns feathering off) (got ${metres})`, { details: { field: '--scene-feather' } });
  }
  const px = Math.round(metres / pixelMetres);
  if (px > stride) {
    throw new GeoDinoError(
      'E_ARGUMENT',
      `--scene-feather: ${metres} m is wider than the tile stride allows (tile size ${tileSize} − overlap ${overlap} = ${stride} px = ${Number(maxM.toFixed(3))} m at ${pixelMetres} m); use at most ${Number(maxM.toFixed(3))}`,
      { details: { field: '--scene-feather', max: maxM } },
    );
  }
  return { metres, px };
}

/** Weight of scene `a` at signed distance `d` (pixels, positive on a's side) from a seam with a zone of `F` pixels. */
export function seamWeight(d: number, F: number): number {
  if (F <= 0) return d >= 0 ? 1 : 0;
  if (d >= F / 2) return 1;
  if (d <= -F / 2) return 0;
  const s = Math.sin((Math.PI / 2) * ((d + F / 2) / F));
  return s * s;
}

/** Position across the seam (grid px) at `along` (grid px, pixel centre). */
export function seamPosition(seam: SceneSeam, along: number): number {
  const n = seam.positions.length;
  const t = Math.min(n - 1, Math.max(0, (along - seam.start) / seam.step - 0.5));
  const k = Math.floor(t);
  const f = t - k;
  return k + 1 < n ? seam.positions[k]! * (1 - f) + seam.positions[k + 1]! * f : seam.positions[k]!;
}

/** Signed distance (px) of the pixel centre (x, y) from the seam, positive on scene a's side. */
export function seamDistance(seam: SceneSeam, x: number, y: number): number {
  const [along, across] = seam.axis === 'x' ? [y, x] : [x, y];
  return (across - seamPosition(seam, along)) * seam.aSide;
}

function meets(b: readonly number[], x0: number, y0: number, x1: number, y1: number): boolean {
  return b[0]! < x1 && b[2]! > x0 && b[1]! < y1 && b[3]! > y0;
}

/** The seams whose overlap meets a pixel window. */
export function seamsMeeting(plan: RunPlan, t: Pick<TileSpec, 'x' | 'y' | 'width' | 'height'>): SceneSeam[] {
  const f = plan.sceneFeather;
  if (!f || f.px <= 0) return [];
  return f.seams.filter((s) => meets(s.overlap, t.x, t.y, t.x + t.width, t.y + t.height));
}

/** The bbox of a seam's transition zone inside its overlap (a footprint seam's: the inner scene's extent). */
export function zoneBox(seam: SceneSeam): [number, number, number, number] {
  if (seam.footprint) return [...seam.overlap];
  const h = seam.featherPx / 2;
  const lo = Math.min(...seam.positions) - h;
  const hi = Math.max(...seam.positions) + h;
  const o = seam.overlap;
  return seam.axis === 'x' ? [Math.max(o[0], Math.floor(lo)), o[1], Math.min(o[2], Math.ceil(hi)), o[3]] : [o[0], Math.max(o[1], Math.floor(lo)), o[2], Math.min(o[3], Math.ceil(hi))];
}

// ---------------------------------------------------------------------------------------------
// Plan time: seamlines.

/** Luminance, excess green (canopy proxy), the 8-bit bands and validity of one scene on a coarse grid. */
interface CoarseScene {
  lum: Float32Array;
  exg: Float32Array;
  rgb: Uint8Array;
  valid: Uint8Array;
}

async function readCoarse(source: PlannedSource, grid: Grid, opener: SourceOpener, log: Logger, signal: AbortSignal | undefined): Promise<CoarseScene> {
  const { width: W, height: H } = grid;
  const layout = new TileLayout(grid, Math.max(W, H), 0, [[[[0, 0], [W, 0], [W, H], [0, H], [0, 0]]]]);
  const raster = await opener.open({ ...source });
  try {
    const prepared = await prepareTileSources(layout, [{ id: source.id, raster, ...(source.bands ? { bands: source.bands } : {}) }], { log, ...(signal ? { signal } : {}) });
    const spec: TileSpec = { index: 0, row: 0, col: 0, x: 0, y: 0, width: W, height: H, touchesAoi: true };
    const tile = await renderTile(layout, prepared, spec, { resampling: 'bilinear', ...(signal ? { signal } : {}) });
    const n = W * H;
    const lum = new Float32Array(n);
    const exg = new Float32Array(n);
    const valid = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const r = tile.rgb[i]!;
      const g = tile.rgb[n + i]!;
      const b = tile.rgb[2 * n + i]!;
      lum[i] = (r + g + b) / 3;
      exg[i] = Math.max(0, 2 * g - r - b);
      valid[i] = tile.source[i] !== NO_SOURCE ? 1 : 0;
    }
    return { lum, exg, rgb: tile.rgb, valid };
  } finally {
    await raster.close();
  }
}

/** Sum of absolute central differences of `a` at (x, y) on a W × H grid. */
function gradient(a: Float32Array, W: number, H: number, x: number, y: number): number {
  const gx = a[y * W + Math.min(W - 1, x + 1)]! - a[y * W + Math.max(0, x - 1)]!;
  const gy = a[Math.min(H - 1, y + 1) * W + x]! - a[Math.max(0, y - 1) * W + x]!;
  return Math.abs(gx) + Math.abs(gy);
}

/**
 * Least-cost seam through a cost map of `rows` (along the seam) × `cols` (across), moving at most
 * one column per row, restricted to columns [lo, hi]. Returns the column of each row.
 */
export function leastCostSeam(cost: Float32Array, rows: number, cols: number, lo: number, hi: number): Int32Array {
  const acc = new Float64Array(rows * cols).fill(Infinity);
  for (let c = lo; c <= hi; c++) acc[c] = cost[c]!;
  for (let r = 1; r < rows; r++) {
    for (let c = lo; c <= hi; c++) {
      const p = (r - 1) * cols;
      let m = acc[p + c]!;
      if (c > lo && acc[p + c - 1]! < m) m = acc[p + c - 1]!;
      if (c < hi && acc[p + c + 1]! < m) m = acc[p + c + 1]!;
      acc[r * cols + c] = m + cost[r * cols + c]!;
    }
  }
  const path = new Int32Array(rows);
  let best = lo;
  for (let c = lo; c <= hi; c++) if (acc[(rows - 1) * cols + c]! < acc[(rows - 1) * cols + best]!) best = c;
  path[rows - 1] = best;
  for (let r = rows - 2; r >= 0; r--) {
    const c0 = path[r + 1]!;
    let b = c0;
    for (const c of [c0 - 1, c0 + 1]) if (c >= lo && c <= hi && acc[r * cols + c]! < acc[r * cols + b]!) b = c;
    path[r] = b;
  }
  return path;
}

/**
 * The seam of one pair of scenes (null when they do not overlap, or when the higher-priority
 * scene `a` contains `b`: b is hidden there, as in the plain mosaic). When b contains a, a
 * footprint seam along a's footprint edge (no seamline to find, no radiometry fitted).
 */
async function seamOf(plan: { grid: Grid }, a: number, b: number, A: PlannedSource, B: PlannedSource, featherPx: number, opener: SourceOpener, log: Logger, signal: AbortSignal | undefined): Promise<{ seam: SceneSeam; radiometry: SceneRadiometry | null } | null> {
  const ba = A.gridBbox;
  const bb = B.gridBbox;
  if (!ba || !bb) return null;
  const grid = plan.grid;
  const o: [number, number, number, number] = [Math.max(ba[0], bb[0], 0), Math.max(ba[1], bb[1], 0), Math.min(ba[2], bb[2], grid.width), Math.min(ba[3], bb[3], grid.height)];
  if (o[2] - o[0] < 2 || o[3] - o[1] < 2) return null;
  const contains = (p: readonly number[], q: readonly number[]): boolean => p[0]! <= q[0]! && p[1]! <= q[1]! && p[2]! >= q[2]! && p[3]! >= q[3]!;
  if (contains(ba, bb)) return null;
  if (contains(bb, ba)) {
    log.debug({ a: A.id, b: B.id, featherPx }, 'scene footprint transition planned (scene inside another)');
    return { seam: { a, b, axis: 'x', aSide: 1, overlap: o, start: o[1], step: 1, positions: [], featherPx, footprint: true }, radiometry: null };
  }
  const dx = (bb[0] + bb[2] - ba[0] - ba[2]) / 2;
  const dy = (bb[1] + bb[3] - ba[1] - ba[3]) / 2;
  const axis: 'x' | 'y' = Math.abs(dx) >= Math.abs(dy) ? 'x' : 'y';
  const aSide: -1 | 1 = (axis === 'x' ? dx : dy) > 0 ? -1 : 1;
  const [acrossLo, acrossHi, alongLo, alongHi] = axis === 'x' ? [o[0], o[2], o[1], o[3]] : [o[1], o[3], o[0], o[2]];
  const step = Math.max(2, Math.ceil(Math.max(acrossHi - acrossLo, alongHi - alongLo) / MAX_SEAM_CELLS));
  const cols = Math.max(1, Math.floor((acrossHi - acrossLo) / step));
  const rows = Math.max(1, Math.ceil((alongHi - alongLo) / step));
  // The coarse grid over the overlap (x, y as in the zone grid; `step` grid pixels per cell).
  const [W, H] = axis === 'x' ? [cols, rows] : [rows, cols];
  const t = grid.transform;
  const coarse: Grid = { crs: grid.crs, transform: [t[0] + o[0] * grid.gsd, grid.gsd * step, 0, t[3] - o[1] * grid.gsd, 0, -grid.gsd * step], width: W, height: H, gsd: grid.gsd * step };
  throwIfAborted(signal);
  const sa = await readCoarse(A, coarse, opener, log, signal);
  const sb = await readCoarse(B, coarse, opener, log, signal);
  let offset = 0;
  let both = 0;
  for (let i = 0; i < W * H; i++) {
    if (sa.valid[i] && sb.valid[i]) {
      offset += sa.lum[i]! - sb.lum[i]!;
      both++;
    }
  }
  if (both === 0) return null;
  offset /= both;
  // Cost in (row along, column across) order.
  const cost = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const [x, y] = axis === 'x' ? [c, r] : [r, c];
      const i = y * W + x;
      cost[r * cols + c] =
        sa.valid[i] && sb.valid[i]
          ? 0.02 + (gradient(sa.lum, W, H, x, y) + gradient(sb.lum, W, H, x, y)) / 1020 + (sa.exg[i]! + sb.exg[i]!) / 510 + Math.abs(sa.lum[i]! - sb.lum[i]! - offset) / 255
          : 1000;
    }
  }
  // Keep half the zone inside the overlap on both sides (narrower overlaps get a narrower zone).
  let margin = Math.ceil(featherPx / 2 / step);
  let F = featherPx;
  if (2 * margin >= cols) {
    margin = Math.max(0, Math.floor((cols - 1) / 2));
    F = Math.min(featherPx, 2 * margin * step);
  }
  const path = leastCostSeam(cost, rows, cols, margin, cols - 1 - margin);
  const positions = Array.from(path, (c) => acrossLo + (c + 0.5) * step);
  log.debug({ a: A.id, b: B.id, axis, cells: `${cols}×${rows}`, step, featherPx: F }, 'scene seamline planned');
  return { seam: { a, b, axis, aSide, overlap: o, start: alongLo, step, positions, featherPx: F }, radiometry: momentMatch(sa, sb, a, W * H) };
}

/** Per-band moment matching of scene b to scene a on the cells where both are valid (b' = gain · b + offset). */
function momentMatch(sa: CoarseScene, sb: CoarseScene, reference: number, n: number): SceneRadiometry {
  const gain: [number, number, number] = [1, 1, 1];
  const offset: [number, number, number] = [0, 0, 0];
  let cells = 0;
  for (let c = 0; c < 3; c++) {
    let m = 0;
    let ma = 0;
    let mb = 0;
    let va = 0;
    let vb = 0;
    for (let i = 0; i < n; i++) {
      if (!sa.valid[i] || !sb.valid[i]) continue;
      const x = sa.rgb[c * n + i]!;
      const y = sb.rgb[c * n + i]!;
      m++;
      ma += x;
      mb += y;
      va += x * x;
      vb += y * y;
    }
    cells = m;
    if (m < 2) continue;
    ma /= m;
    mb /= m;
    const sda = Math.sqrt(Math.max(0, va / m - ma * ma));
    const sdb = Math.sqrt(Math.max(0, vb / m - mb * mb));
    const g = sdb > 1e-6 ? sda / sdb : 1;
    gain[c] = g;
    offset[c] = ma - g * mb;
  }
  const r = (v: number): number => Math.round(v * 1e6) / 1e6;
  return { reference, gain: gain.map(r) as [number, number, number], offset: offset.map(r) as [number, number, number], cells };
}

/** Apply the scenes' harmonisation to a rendered tile in place (`planIndex[k]`: plan index of render source k). */
export function harmoniseTile(tile: Tile, planIndex: readonly number[], radiometry: readonly (SceneRadiometry | null)[] | undefined): void {
  if (!radiometry?.some((r) => r)) return;
  const n = tile.source.length;
  for (let i = 0; i < n; i++) {
    const k = tile.source[i]!;
    if (k === NO_SOURCE) continue;
    const r = radiometry[planIndex[k]!];
    if (!r) continue;
    for (let c = 0; c < 3; c++) {
      const v = r.gain[c]! * tile.rgb[c * n + i]! + r.offset[c]!;
      tile.rgb[c * n + i] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
    }
  }
}

/**
 * Seamlines between every pair of overlapping scenes of a zone (see the module comment); with
 * `harmonise`, also each lower-priority scene's moment matching to the first (highest-priority)
 * scene it has a seamline with, fitted on their overlap (indexed by plan source; null: unchanged).
 */
export async function planSeams(
  plan: { grid: Grid; sources: readonly PlannedSource[] },
  featherPx: number,
  opener: SourceOpener,
  options: { log: Logger; signal?: AbortSignal | undefined; harmonise?: boolean },
): Promise<{ seams: SceneSeam[]; radiometry: (SceneRadiometry | null)[] | null }> {
  const seams: SceneSeam[] = [];
  const S = plan.sources;
  const radiometry: (SceneRadiometry | null)[] = S.map(() => null);
  if (featherPx <= 0) return { seams, radiometry: null };
  for (let a = 0; a < S.length; a++) {
    for (let b = a + 1; b < S.length; b++) {
      const s = await seamOf(plan, a, b, S[a]!, S[b]!, featherPx, opener, options.log, options.signal);
      if (!s) continue;
      seams.push(s.seam);
      if (options.harmonise && !radiometry[b] && s.radiometry && s.radiometry.cells > 0) {
        radiometry[b] = s.radiometry;
        options.log.info({ scene: S[b]!.id, to: S[a]!.id, gain: s.radiometry.gain, offset: s.radiometry.offset }, 'scene radiometry matched to its neighbour on their overlap');
      }
    }
  }
  return { seams, radiometry: options.harmonise ? radiometry : null };
}

// ---------------------------------------------------------------------------------------------
// Tile records of feathered tiles: one set of head planes per scene (variant), each with its weights.

/** Tile-store plane holding a variant's per-pixel share (float32, the shares of a pixel sum to 1). */
export const SCENE_WEIGHT_PLANE = 'scene_weight';
/** Tile-store plane: the plan seam index of pixels strictly inside a transition zone, else NO_SOURCE (provenance). */
export const SCENE_ZONE_PLANE = 'scene_zone';

/** Plane-name suffix of variant `v` (variant 0 keeps the plain names). */
export function variantSuffix(v: number): string {
  return v === 0 ? '' : `@${v}`;
}

/**
 * The predictions a stored tile holds: one (suffix '', no weight) for an ordinary tile, one per
 * scene for a feathered tile (each with its weight plane). Every window layer of a head adds
 * each of them, so the scenes mix exactly as overlapping tiles do.
 */
export function tileVariants(rec: { planes: Record<string, unknown> }): { suffix: string; weight?: Float32Array }[] {
  if (!(rec.planes[SCENE_WEIGHT_PLANE] instanceof Float32Array)) return [{ suffix: '' }];
  const out: { suffix: string; weight: Float32Array }[] = [];
  for (let v = 0; ; v++) {
    const w = rec.planes[`${SCENE_WEIGHT_PLANE}${variantSuffix(v)}`];
    if (!(w instanceof Float32Array)) return out;
    out.push({ suffix: variantSuffix(v), weight: w });
  }
}

// ---------------------------------------------------------------------------------------------
// Predict time: the distance inward from an inner scene's footprint edge (footprint seams).

/** The window (grid px, clipped to the grid) a footprint seam's inner scene is rendered over for a tile: the tile and F + 1 px around it. */
export function footprintHalo(spec: TileSpec, featherPx: number, grid: { width: number; height: number }): TileSpec {
  const h = Math.ceil(featherPx) + 1;
  const x0 = Math.max(0, spec.x - h);
  const y0 = Math.max(0, spec.y - h);
  const x1 = Math.min(grid.width, spec.x + spec.width + h);
  const y1 = Math.min(grid.height, spec.y + spec.height + h);
  return { ...spec, x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0) };
}

/** Squared 1-D distance transform of `f` (Felzenszwalb & Huttenlocher), `n` samples at `stride` from `o`, in place. */
function edt1d(a: Float64Array, o: number, stride: number, n: number, f: Float64Array, v: Int32Array, z: Float64Array): void {
  for (let q = 0; q < n; q++) f[q] = a[o + q * stride]!;
  let k = 0;
  v[0] = 0;
  z[0] = -Infinity;
  z[1] = Infinity;
  for (let q = 1; q < n; q++) {
    if (f[q] === Infinity) continue;
    if (f[v[k]!] === Infinity) {
      v[k] = q;
      continue;
    }
    let sx = (f[q]! + q * q - (f[v[k]!]! + v[k]! * v[k]!)) / (2 * q - 2 * v[k]!);
    while (sx <= z[k]!) {
      k--;
      sx = (f[q]! + q * q - (f[v[k]!]! + v[k]! * v[k]!)) / (2 * q - 2 * v[k]!);
    }
    k++;
    v[k] = q;
    z[k] = sx;
    z[k + 1] = Infinity;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1]! < q) k++;
    const d = q - v[k]!;
    a[o + q * stride] = f[v[k]!] === Infinity ? Infinity : d * d + f[v[k]!]!;
  }
}

/**
 * Per pixel of a tile: the distance (px) from its centre inward to the footprint edge of a scene,
 * i.e. (exact Euclidean distance to the nearest pixel centre where the scene has no data) − ½,
 * found on the scene's validity over `halo` (footprintHalo); Infinity where no such pixel lies in
 * the halo or the pixel is outside it, 0 where the scene has no data. Pixels beyond the grid
 * (outside the halo) count as data: the grid's edge is not a footprint edge.
 */
export function footprintEdgeDistance(spec: Pick<TileSpec, 'x' | 'y' | 'width' | 'height'>, halo: Pick<TileSpec, 'x' | 'y' | 'width' | 'height'>, haloValid: ArrayLike<number>): Float32Array {
  const { width: hw, height: hh } = halo;
  const d2 = new Float64Array(hw * hh);
  for (let i = 0; i < d2.length; i++) d2[i] = haloValid[i] ? Infinity : 0;
  const m = Math.max(hw, hh);
  const f = new Float64Array(m);
  const v = new Int32Array(m);
  const z = new Float64Array(m + 1);
  for (let x = 0; x < hw; x++) edt1d(d2, x, hw, hh, f, v, z);
  for (let y = 0; y < hh; y++) edt1d(d2, y * hw, 1, hw, f, v, z);
  const out = new Float32Array(spec.width * spec.height).fill(Infinity);
  for (let y = 0; y < spec.height; y++) {
    const gy = spec.y + y - halo.y;
    if (gy < 0 || gy >= hh) continue;
    for (let x = 0; x < spec.width; x++) {
      const gx = spec.x + x - halo.x;
      if (gx < 0 || gx >= hw) continue;
      const q = d2[gy * hw + gx]!;
      out[y * spec.width + x] = q === 0 ? 0 : Math.sqrt(q) - 0.5;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Predict time: the seamline mosaic of a tile and the scenes' weights.

export interface ComposedTile {
  /** The seamline mosaic (source: index into the renders' sources, as the tiler's). */
  tile: Tile;
  /** Per scene (the renders' source index) with weight anywhere in the tile: its weight plane. */
  weights: Map<number, Float32Array>;
  /** Per pixel the plan seam index where the pixel lies strictly inside a transition zone, else NO_SOURCE. */
  zone: Uint16Array;
  /** Valid pixels strictly inside a transition zone. */
  zonePixels: number;
}

/**
 * Compose a tile from single-scene renders (priority order, each a `renderTile` of one source)
 * under the seams: the seamline mosaic and the scenes' feathering weights.
 * `planIndex[k]` is the plan source index of render source k. `edge`: per footprint seam among
 * `seams`, the distance inward from its inner scene's footprint edge per tile pixel
 * (footprintEdgeDistance); a footprint seam without one leaves the inner scene whole (no zone).
 */
export function composeTile(
  spec: TileSpec,
  renders: readonly Tile[],
  renderSource: readonly number[],
  planIndex: readonly number[],
  seams: readonly SceneSeam[],
  allSeams: readonly SceneSeam[],
  edge: ReadonlyMap<SceneSeam, Float32Array> = new Map(),
): ComposedTile {
  const n = spec.width * spec.height;
  const rgb = new Uint8Array(3 * n);
  const source = new Uint16Array(n).fill(NO_SOURCE);
  const valid = new Uint8Array(n);
  const zone = new Uint16Array(n).fill(NO_SOURCE);
  const weights = new Map<number, Float32Array>();
  const weightOf = (k: number): Float32Array => {
    let w = weights.get(k);
    if (!w) weights.set(k, (w = new Float32Array(n)));
    return w;
  };
  const seamIndex = new Map<SceneSeam, number>(seams.map((s) => [s, allSeams.indexOf(s)]));
  const byPair = new Map<string, SceneSeam>(seams.map((s) => [`${s.a}/${s.b}`, s]));
  const used = new Set<number>();
  let validCount = 0;
  let zonePixels = 0;
  const cand: number[] = [];
  for (let y = 0; y < spec.height; y++) {
    for (let x = 0; x < spec.width; x++) {
      const i = y * spec.width + x;
      cand.length = 0;
      for (let r = 0; r < renders.length; r++) if (renders[r]!.source[i] !== NO_SOURCE) cand.push(r);
      if (!cand.length) continue;
      let win = cand[0]!;
      let blend: { seam: SceneSeam; r: number; wa: number; other: number } | null = null;
      for (let c = 1; c < cand.length; c++) {
        const r = cand[c]!;
        const pa = planIndex[renderSource[win]!]!;
        const pb = planIndex[renderSource[r]!]!;
        const seam = byPair.get(`${Math.min(pa, pb)}/${Math.max(pa, pb)}`);
        if (!seam || !meets(seam.overlap, spec.x + x, spec.y + y, spec.x + x + 1, spec.y + y + 1)) continue;
        // A footprint seam: the inner scene a's weight rises over F px inward from its edge.
        const d = seam.footprint ? (edge.get(seam)?.[i] ?? Infinity) - seam.featherPx / 2 : seamDistance(seam, spec.x + x + 0.5, spec.y + y + 0.5);
        const wa = seamWeight(d, seam.featherPx);
        const [ra, rb] = seam.a === pa ? [win, r] : [r, win];
        const next = d >= 0 ? ra : rb;
        blend = wa > 0 && wa < 1 ? { seam, r: ra, wa, other: rb } : null;
        win = next;
      }
      const tw = renders[win]!;
      for (let c = 0; c < 3; c++) rgb[c * n + i] = tw.rgb[c * n + i]!;
      source[i] = tw.source[i]!;
      const v = renders.some((t) => t.valid[i]) ? 1 : 0;
      valid[i] = v;
      if (!v) continue;
      validCount++;
      used.add(tw.source[i]!);
      if (blend) {
        zonePixels++;
        zone[i] = seamIndex.get(blend.seam)!;
        weightOf(renderSource[blend.r]!)[i] = blend.wa;
        weightOf(renderSource[blend.other]!)[i] = 1 - blend.wa;
      } else weightOf(tw.source[i]!)[i] = 1;
    }
  }
  const tile: Tile = { spec, rgb, valid, source, validCount, sourcesUsed: [...used].sort((a, b) => a - b) };
  return { tile, weights, zone, zonePixels };
}
