/**
 * Seamless blending of overlapping tile predictions into output blocks, in bounded memory.
 *
 * Tiles arrive in non-decreasing order of their top row (row-major tile order). The stitcher keeps
 * weighted sums and weight sums for a horizontal strip of `tileSize + blockSize` rows only; as soon
 * as no future tile can touch a row of output blocks, that block row is normalised (Σ w·p / Σ w)
 * and emitted, left to right, ready for a tile-ordered COG writer. Memory is
 * (bands + 1) × (tileSize + blockSize) × width × 4 bytes, independent of the raster's height.
 *
 * A band that is the standard deviation of another (`spread`) is not averaged: it becomes the
 * standard deviation of the blended mixture, σ² = Σ wᵢ(σᵢ² + (μᵢ − μ̄)²) / Σ wᵢ, so where
 * overlapping tiles disagree the uncertainty grows by their disagreement instead of hiding it.
 * Where one tile covers a pixel this is that tile's σ.
 *
 * Pixels that no valid tile pixel covered get `nodata`.
 */
import { GeoDinoError } from '@geo-dino/core';
import { tileWeights, type WindowKind } from './weights.js';

export interface StitcherOptions {
  /** Output raster size in pixels. */
  width: number;
  height: number;
  /** Number of values per pixel (e.g. 2: height and uncertainty). */
  bands: number;
  /** Output block edge (the COG block size). */
  blockSize: number;
  /** Largest tile edge that will be added. */
  tileSize: number;
  /** Overlap between neighbouring tiles: the length of the weight ramps. */
  overlap: number;
  /** Default 'raised-cosine'; 'uniform' (plain averaging) exists for comparison. */
  window?: WindowKind;
  /** Value for pixels without a valid prediction (default NaN). */
  nodata?: number;
  /**
   * Band `std` holds the standard deviation of band `mean`'s prediction: blend it as the spread
   * of the weighted mixture rather than as a mean (see the module comment). Default: none.
   */
  spread?: { mean: number; std: number } | null;
}

export interface TilePrediction {
  /** Top-left of the tile in output pixels; may be negative or reach past the raster. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** One row-major array of width × height values per band. */
  bands: readonly Float32Array[];
  /** Optional per-pixel validity (0 = no prediction there, e.g. no imagery). */
  valid?: Uint8Array;
  /**
   * Optional per-pixel factor on the tile's window weight (≥ 0): one of several predictions of
   * the same tile (one per source scene, feathered across a scene seamline) carries its share
   * here, and the shares of a pixel sum to 1, so the mixture is over tiles and scenes at once.
   */
  weight?: Float32Array;
}

export interface OutputBlock {
  /** Block column and row in the block grid. */
  col: number;
  row: number;
  /** Top-left pixel and the part of the block inside the raster. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** One array of blockSize × blockSize values per band; cells outside the raster hold nodata. */
  bands: Float32Array[];
  /** Pixels inside the raster that have a prediction. */
  validPixels: number;
}

export class Stitcher {
  readonly options: Required<StitcherOptions>;
  readonly blockCols: number;
  readonly blockRows: number;
  /** Rows held in the strip. */
  readonly capacityRows: number;
  private readonly sums: Float32Array[];
  private readonly weights: Float32Array;
  private readonly windowCache = new Map<string, Float32Array>();
  /** First raster row held in the strip (always a multiple of blockSize). */
  private top = 0;
  private nextBlockRow = 0;
  private lastTileY = -Infinity;

  constructor(options: StitcherOptions) {
    const o: Required<StitcherOptions> = { window: 'raised-cosine', nodata: Number.NaN, spread: null, ...options };
    for (const k of ['width', 'height', 'bands', 'blockSize', 'tileSize'] as const) {
      if (!Number.isInteger(o[k]) || o[k] <= 0) throw new GeoDinoError('E_INTERNAL', `stitcher: ${k} must be a positive integer (got ${o[k]})`);
    }
    if (!Number.isInteger(o.overlap) || o.overlap < 0 || o.overlap * 2 > o.tileSize) {
      throw new GeoDinoError('E_INTERNAL', `stitcher: overlap ${o.overlap} must be in [0, tileSize/2]`);
    }
    const sp = o.spread;
    if (sp && (![sp.mean, sp.std].every((b) => Number.isInteger(b) && b >= 0 && b < o.bands) || sp.mean === sp.std)) {
      throw new GeoDinoError('E_INTERNAL', `stitcher: spread bands ${sp.mean}/${sp.std} must be two different bands of ${o.bands}`);
    }
    this.options = o;
    this.blockCols = Math.ceil(o.width / o.blockSize);
    this.blockRows = Math.ceil(o.height / o.blockSize);
    this.capacityRows = o.tileSize + o.blockSize;
    const cells = this.capacityRows * o.width;
    this.sums = Array.from({ length: o.bands }, () => new Float32Array(cells));
    this.weights = new Float32Array(cells);
  }

  /** Bytes held by the accumulators (constant for a given width). */
  get memoryBytes(): number {
    return (this.sums.length + 1) * this.capacityRows * this.options.width * 4;
  }

  /** True once every block has been emitted. */
  get done(): boolean {
    return this.nextBlockRow >= this.blockRows;
  }

  private window(w: number, h: number): Float32Array {
    const key = `${w}x${h}`;
    let win = this.windowCache.get(key);
    if (!win) {
      win = tileWeights(w, h, this.options.overlap, this.options.window);
      this.windowCache.set(key, win);
    }
    return win;
  }

  /**
   * Accumulate one tile and return the output blocks that became final (rows above this tile's
   * top can no longer change, since tiles arrive in non-decreasing `y`).
   */
  add(tile: TilePrediction): OutputBlock[] {
    const { width: W, height: H, bands, spread } = this.options;
    if (tile.y < this.lastTileY) {
      throw new GeoDinoError('E_INTERNAL', `stitcher: tiles must arrive in non-decreasing y (got ${tile.y} after ${this.lastTileY})`);
    }
    if (tile.bands.length !== bands) throw new GeoDinoError('E_INTERNAL', `stitcher: expected ${bands} bands, got ${tile.bands.length}`);
    if (tile.height > this.options.tileSize || tile.width > this.options.tileSize) {
      throw new GeoDinoError('E_INTERNAL', `stitcher: tile ${tile.width}×${tile.height} exceeds tileSize ${this.options.tileSize}`);
    }
    const n = tile.width * tile.height;
    for (const b of tile.bands) if (b.length !== n) throw new GeoDinoError('E_INTERNAL', 'stitcher: band length does not match the tile size');
    if (tile.valid && tile.valid.length !== n) throw new GeoDinoError('E_INTERNAL', 'stitcher: mask length does not match the tile size');
    if (tile.weight && tile.weight.length !== n) throw new GeoDinoError('E_INTERNAL', 'stitcher: weight length does not match the tile size');
    this.lastTileY = tile.y;

    // Rows above this tile are final.
    // (Emitted rows all lie above the previous tiles' tops, so this tile never reaches them.)
    const emitted = this.flushBefore(Math.max(0, tile.y));

    const win = this.window(tile.width, tile.height);
    const meanBand = spread ? spread.mean : -1;
    const stdBand = spread ? spread.std : -1;
    const x0 = Math.max(0, tile.x);
    const x1 = Math.min(W, tile.x + tile.width);
    const y0 = Math.max(0, tile.y, this.top);
    const y1 = Math.min(H, tile.y + tile.height);
    for (let y = y0; y < y1; y++) {
      const ty = y - tile.y;
      const srow = (y - this.top) * W;
      const trow = ty * tile.width;
      for (let x = x0; x < x1; x++) {
        const ti = trow + (x - tile.x);
        if (tile.valid && tile.valid[ti] === 0) continue;
        const w = tile.weight ? win[ti]! * tile.weight[ti]! : win[ti]!;
        if (w <= 0) continue;
        const si = srow + x;
        const w0 = this.weights[si]!;
        this.weights[si] = w0 + w;
        for (let b = 0; b < bands; b++) if (b !== meanBand && b !== stdBand) this.sums[b]![si]! += w * tile.bands[b]![ti]!;
        if (spread) {
          // Weighted Welford update of S = Σ wᵢ(σᵢ² + (μᵢ − μ̄)²): every term is ≥ 0, so float32
          // holds it without the cancellation of Σ w(σ² + μ²) − W μ̄².
          const m = tile.bands[meanBand]![ti]!;
          const sd = tile.bands[stdBand]![ti]!;
          const sm = this.sums[meanBand]!;
          const sumBefore = sm[si]!;
          const sumAfter = sumBefore + w * m;
          sm[si] = sumAfter;
          if (w > 0) {
            const before = w0 > 0 ? sumBefore / w0 : m; // blended mean without and with this tile
            const after = sumAfter / (w0 + w);
            this.sums[stdBand]![si]! += w * (sd * sd + (m - before) * (m - after));
          }
        }
      }
    }
    return emitted;
  }

  /** Emit everything left (call after the last tile). */
  finish(): OutputBlock[] {
    return this.flushBefore(this.options.height);
  }

  /** Emit every block row that lies entirely above raster row `y`. */
  private flushBefore(y: number): OutputBlock[] {
    const out: OutputBlock[] = [];
    const B = this.options.blockSize;
    while (this.nextBlockRow < this.blockRows) {
      const rowTop = this.nextBlockRow * B;
      const rowBottom = Math.min(this.options.height, rowTop + B);
      if (rowBottom > y) break;
      out.push(...this.emitBlockRow());
    }
    return out;
  }

  private emitBlockRow(): OutputBlock[] {
    const { width: W, height: H, blockSize: B, bands, nodata, spread } = this.options;
    const stdBand = spread ? spread.std : -1;
    const row = this.nextBlockRow;
    const rowTop = row * B;
    const rows = Math.min(B, H - rowTop);
    const blocks: OutputBlock[] = [];
    for (let col = 0; col < this.blockCols; col++) {
      const x = col * B;
      const cols = Math.min(B, W - x);
      const data = Array.from({ length: bands }, () => new Float32Array(B * B).fill(nodata));
      let validPixels = 0;
      for (let r = 0; r < rows; r++) {
        const srow = (rowTop + r - this.top) * W + x;
        const drow = r * B;
        for (let c = 0; c < cols; c++) {
          const w = this.weights[srow + c]!;
          if (w > 0) {
            validPixels++;
            for (let b = 0; b < bands; b++) {
              const v = this.sums[b]![srow + c]! / w;
              data[b]![drow + c] = b === stdBand ? Math.sqrt(v) : v;
            }
          }
        }
      }
      blocks.push({ col, row, x, y: rowTop, width: cols, height: rows, bands: data, validPixels });
    }
    // Drop the emitted rows from the strip: shift the rest up and clear the freed rows.
    const shift = B * W;
    const keep = this.capacityRows * W - shift;
    for (const s of [...this.sums, this.weights]) {
      s.copyWithin(0, shift);
      s.fill(0, keep);
    }
    this.top += B;
    this.nextBlockRow++;
    return blocks;
  }
}
