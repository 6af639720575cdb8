import { describe, expect, it } from 'vitest';
import { Stitcher, axisWeights, type OutputBlock, type TilePrediction } from '../src/index.js';

/** Tile origins covering [0, size) with the given tile size and overlap (last tile flush with the edge). */
function origins(size: number, tile: number, overlap: number): number[] {
  const stride = tile - overlap;
  const out: number[] = [];
  for (let o = 0; ; o += stride) {
    if (o + tile >= size) {
      out.push(Math.max(0, size - tile));
      break;
    }
    out.push(o);
  }
  return [...new Set(out)];
}

/** Run a stitcher over a W×H raster where tile (x,y) predicts `f(gx, gy, tileIndex)`. */
function stitch(
  W: number,
  H: number,
  opts: { tile: number; overlap: number; block: number; window?: 'raised-cosine' | 'uniform'; stride?: number },
  f: (gx: number, gy: number, t: number) => number,
  valid?: (gx: number, gy: number) => boolean,
): { image: Float32Array; blocks: OutputBlock[]; stitcher: Stitcher } {
  const s = new Stitcher({ width: W, height: H, bands: 1, blockSize: opts.block, tileSize: opts.tile, overlap: opts.overlap, ...(opts.window ? { window: opts.window } : {}) });
  const blocks: OutputBlock[] = [];
  let t = 0;
  for (const y of origins(H, opts.tile, opts.overlap)) {
    for (const x of origins(W, opts.tile, opts.overlap)) {
      const band = new Float32Array(opts.tile * opts.tile);
      const mask = new Uint8Array(opts.tile * opts.tile);
      for (let j = 0; j < opts.tile; j++)
        for (let i = 0; i < opts.tile; i++) {
          band[j * opts.tile + i] = f(x + i, y + j, t);
          mask[j * opts.tile + i] = valid ? Number(valid(x + i, y + j)) : 1;
        }
      const tile: TilePrediction = { x, y, width: opts.tile, height: opts.tile, bands: [band], valid: mask };
      blocks.push(...s.add(tile));
      t++;
    }
  }
  blocks.push(...s.finish());
  const image = new Float32Array(W * H).fill(Number.NaN);
  for (const b of blocks) {
    for (let r = 0; r < b.height; r++)
      for (let c = 0; c < b.width; c++) image[(b.y + r) * W + b.x + c] = b.bands[0]![r * opts.block + c]!;
  }
  return { image, blocks, stitcher: s };
}

describe('weights', () => {
  it('neighbouring ramps form a partition of unity over the overlap', () => {
    const tile = 64;
    const overlap = 16;
    const w = axisWeights(tile, overlap);
    for (let i = 0; i < overlap; i++) {
      // pixel i of the right tile coincides with pixel tile - overlap + i of the left tile
      expect(w[i]! + w[tile - overlap + i]!).toBeCloseTo(1, 6);
    }
    expect(Math.min(...w)).toBeGreaterThan(0);
    expect(w[tile / 2]).toBe(1);
  });
});

describe('Stitcher', () => {
  const W = 300;
  const H = 270;
  const opts = { tile: 64, overlap: 16, block: 32 };

  it('reproduces a field every tile predicts exactly (any smooth function)', () => {
    const f = (x: number, y: number): number => Math.sin(x / 17) * 10 + y * 0.25;
    const { image } = stitch(W, H, opts, f);
    let maxErr = 0;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) maxErr = Math.max(maxErr, Math.abs(image[y * W + x]! - f(x, y)));
    expect(maxErr).toBeLessThan(1e-4);
  });

  it('emits every block exactly once, in row-major order, covering the raster', () => {
    const { blocks, stitcher } = stitch(W, H, opts, () => 1);
    expect(blocks.map((b) => [b.row, b.col])).toEqual(
      Array.from({ length: stitcher.blockRows * stitcher.blockCols }, (_, i) => [Math.floor(i / stitcher.blockCols), i % stitcher.blockCols]),
    );
    expect(blocks.reduce((s, b) => s + b.validPixels, 0)).toBe(W * H);
    expect(stitcher.done).toBe(true);
  });

  it('emits blocks as soon as they are final, not only at the end', () => {
    const s = new Stitcher({ width: 200, height: 400, bands: 1, blockSize: 32, tileSize: 64, overlap: 16 });
    let early = 0;
    for (const y of origins(400, 64, 16)) {
      for (const x of origins(200, 64, 16)) {
        early += s.add({ x, y, width: 64, height: 64, bands: [new Float32Array(64 * 64)] }).length;
      }
    }
    const late = s.finish().length;
    expect(early).toBeGreaterThan(late);
  });

  it('smooths disagreements between tiles: the seam step is far smaller than with hard averaging', () => {
    // Each tile is off by its own constant, as a model's edge effects would be.
    const offset = (t: number): number => ((t * 7919) % 13) - 6;
    const f = (_x: number, _y: number, t: number): number => offset(t);
    const maxStep = (img: Float32Array): number => {
      let m = 0;
      for (let y = 0; y < H; y++)
        for (let x = 1; x < W; x++) m = Math.max(m, Math.abs(img[y * W + x]! - img[y * W + x - 1]!));
      return m;
    };
    const blended = maxStep(stitch(W, H, opts, f).image);
    const hard = maxStep(stitch(W, H, { ...opts, window: 'uniform' }, f).image);
    // Raised-cosine ramps spread a jump of up to 12 over 16 px: steps stay near 12·π/(2·16) ≈ 1.2.
    expect(blended).toBeLessThan(2);
    expect(hard).toBeGreaterThan(5);
  });

  it('gives nodata where no tile had a valid pixel, and ignores invalid pixels', () => {
    const valid = (x: number): boolean => x < 150;
    const { image } = stitch(W, H, opts, (x) => (x < 150 ? 5 : 1000), (x) => valid(x));
    expect(image[10 * W + 149]).toBeCloseTo(5, 5);
    expect(Number.isNaN(image[10 * W + 150]!)).toBe(true);
  });

  it('memory does not grow with the raster height', () => {
    const a = new Stitcher({ width: 1000, height: 1000, bands: 2, blockSize: 256, tileSize: 512, overlap: 64 });
    const b = new Stitcher({ width: 1000, height: 100_000, bands: 2, blockSize: 256, tileSize: 512, overlap: 64 });
    expect(b.memoryBytes).toBe(a.memoryBytes);
    expect(a.memoryBytes).toBe(3 * (512 + 256) * 1000 * 4);
  });

  it('blends an uncertainty band as the spread of the mixture: the float64 formula where tiles overlap, σ itself where one tile covers', () => {
    // Tiles disagree on the mean (a per-tile offset, as edge effects would) and carry their own σ.
    const [w, h, T, O, B] = [300, 220, 96, 24, 64];
    const mean = (x: number, y: number, t: number): number => 25 + 4 * Math.sin(x / 17) * Math.cos(y / 23) + (((t * 7919) % 5) - 2) * 0.75;
    const std = (x: number, y: number, t: number): number => 0.02 + 0.3 * (((x + 3 * y + 11 * t) % 13) / 13);
    const s = new Stitcher({ width: w, height: h, bands: 2, blockSize: B, tileSize: T, overlap: O, spread: { mean: 0, std: 1 } });
    const win = axisWeights(T, O);
    // Independent float64 oracle: Σw(σ² + μ²)/Σw − μ̄² over every tile covering the pixel.
    const sw = new Float64Array(w * h);
    const swm = new Float64Array(w * h);
    const sw2 = new Float64Array(w * h);
    const swsd = new Float64Array(w * h);
    const count = new Uint8Array(w * h);
    const single = new Float64Array(w * h);
    const blocks: OutputBlock[] = [];
    let t = 0;
    for (const y of origins(h, T, O)) {
      for (const x of origins(w, T, O)) {
        const m = new Float32Array(T * T);
        const sd = new Float32Array(T * T);
        for (let j = 0; j < T; j++)
          for (let i = 0; i < T; i++) {
            m[j * T + i] = mean(x + i, y + j, t);
            sd[j * T + i] = std(x + i, y + j, t);
            const k = (y + j) * w + x + i;
            const wt = Math.fround(win[i]! * win[j]!);
            sw[k]! += wt;
            swm[k]! += wt * m[j * T + i]!;
            sw2[k]! += wt * (sd[j * T + i]! ** 2 + m[j * T + i]! ** 2);
            swsd[k]! += wt * sd[j * T + i]!;
            count[k]!++;
            single[k] = sd[j * T + i]!;
          }
        blocks.push(...s.add({ x, y, width: T, height: T, bands: [m, sd] }));
        t++;
      }
    }
    blocks.push(...s.finish());
    let maxErr = 0;
    let overlapped = 0;
    let grew = 0;
    let singles = 0;
    for (const b of blocks) {
      for (let r = 0; r < b.height; r++)
        for (let c = 0; c < b.width; c++) {
          const k = (b.y + r) * w + b.x + c;
          const got = b.bands[1]![r * B + c]!;
          const mu = swm[k]! / sw[k]!;
          const want = Math.sqrt(sw2[k]! / sw[k]! - mu * mu);
          maxErr = Math.max(maxErr, Math.abs(got - want));
          if (count[k] === 1) {
            singles++;
            expect(Math.abs(got - single[k]!)).toBeLessThanOrEqual(2e-7 * single[k]!);
          } else {
            overlapped++;
            // Never below the weighted mean of σ (what plain averaging gave); disagreeing tiles add to it.
            const meanSd = swsd[k]! / sw[k]!;
            expect(got).toBeGreaterThanOrEqual(meanSd - 1e-5);
            if (got > meanSd + 0.1) grew++;
          }
        }
    }
    expect(singles).toBeGreaterThan(1000);
    expect(overlapped).toBeGreaterThan(1000);
    expect(grew).toBeGreaterThan(overlapped / 4);
    // float32 inputs and accumulators against a float64 oracle at heights near 25 m.
    expect(maxErr).toBeLessThan(2e-5);
  });

  it('refuses a spread pair that is not two different bands', () => {
    expect(() => new Stitcher({ width: 10, height: 10, bands: 2, blockSize: 8, tileSize: 8, overlap: 2, spread: { mean: 1, std: 1 } })).toThrow(/two different bands/);
    expect(() => new Stitcher({ width: 10, height: 10, bands: 2, blockSize: 8, tileSize: 8, overlap: 2, spread: { mean: 0, std: 2 } })).toThrow(/two different bands/);
  });

  it('refuses tiles out of order', () => {
    const s = new Stitcher({ width: 100, height: 100, bands: 1, blockSize: 32, tileSize: 64, overlap: 16 });
    s.add({ x: 0, y: 48, width: 64, height: 64, bands: [new Float32Array(64 * 64)] });
    expect(() => s.add({ x: 0, y: 0, width: 64, height: 64, bands: [new Float32Array(64 * 64)] })).toThrow(/non-decreasing/);
  });
});

describe('per-pixel weights (several predictions of one tile, e.g. one per source scene)', () => {
  it('mixes the predictions by their shares: mean Σ sᵢμᵢ, std of the mixture, computed here in float64', () => {
    const T = 16;
    const s = new Stitcher({ width: T, height: T, bands: 2, blockSize: T, tileSize: T, overlap: 0, spread: { mean: 0, std: 1 } });
    const n = T * T;
    const mu = [new Float32Array(n), new Float32Array(n)];
    const sd = [new Float32Array(n), new Float32Array(n)];
    const share = [new Float32Array(n), new Float32Array(n)];
    for (let i = 0; i < n; i++) {
      mu[0]![i] = 10 + (i % 7);
      mu[1]![i] = 20 - (i % 5);
      sd[0]![i] = 1 + (i % 3);
      sd[1]![i] = 2;
      share[0]![i] = (i % T) / (T - 1); // 0 … 1 across the tile
      share[1]![i] = 1 - share[0]![i]!;
    }
    for (let k = 0; k < 2; k++) s.add({ x: 0, y: 0, width: T, height: T, bands: [mu[k]!, sd[k]!], weight: share[k]! });
    const [blk] = s.finish();
    for (let i = 0; i < n; i++) {
      const w0 = share[0]![i]!;
      const w1 = share[1]![i]!;
      const m = w0 * mu[0]![i]! + w1 * mu[1]![i]!;
      const v = w0 * (sd[0]![i]! ** 2 + (mu[0]![i]! - m) ** 2) + w1 * (sd[1]![i]! ** 2 + (mu[1]![i]! - m) ** 2);
      expect(Math.abs(blk!.bands[0]![i]! - m)).toBeLessThan(1e-4);
      expect(Math.abs(blk!.bands[1]![i]! - Math.sqrt(v))).toBeLessThan(1e-3);
    }
  });
});
