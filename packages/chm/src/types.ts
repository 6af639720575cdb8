/**
 * The serialisable description of a run (`RunPlan`) and the options that produce it.
 *
 * A plan is plain JSON: `planRun` writes it to the run's state directory, `predictTiles` and
 * `assembleRun` work from it alone (plus a model runner and a tile store), so a coordinator can
 * plan once and hand tile batches to workers on other machines (issue 9).
 */
import type { Logger, Progress } from '@geo-dino/core';
import type { Aoi, MultiPolygonCoords } from '@geo-dino/geometry';
import type { Crs, Resampling, TileServiceInfo, TileServiceParams } from '@geo-dino/tiling';

export const PLAN_FORMAT = 'geo-dino-chm-plan';
export const PLAN_FORMAT_VERSION = 2;

/** plan.json of a whole run: one `RunPlan` per UTM zone part, cut into shards (see shards.ts). */
export const RUN_PLAN_FORMAT = 'geo-dino-chm-run';
export const RUN_PLAN_FORMAT_VERSION = 1;

/** Value written where there is no valid imagery (DEVELOPERS.md run-directory contract). */
export const NODATA = -9999;

/** Output block size of chm.tif (and the stitcher's block rows). */
export const BLOCK_SIZE = 512;

export type BlendWindow = 'raised-cosine' | 'uniform';
export type SignMode = 'auto' | 'none' | 'planetary-computer';

/** One imagery source, in priority order (the first valid scene at a pixel wins). */
export interface PlannedSource {
  /** Scene id: the STAC item id, or the file name of a local raster. */
  id: string;
  kind: 'raster' | 'stac' | 'tiles';
  /** Path or URL of the GeoTIFF/COG, unsigned; for tile services the `xyz:`/`wmts:` string. */
  href: string;
  /** Sign `href` before reading (signed URLs expire, so plans keep them unsigned). */
  sign: 'planetary-computer' | null;
  collection: string | null;
  /** Acquisition time (ISO 8601) when known. */
  datetime: string | null;
  startDatetime: string | null;
  endDatetime: string | null;
  /** The STAC item (absolute URL or path), for `derived_from` links. */
  itemHref: string | null;
  /** STAC asset key of the RGB asset. */
  assetKey: string | null;
  /** 0-based [red, green, blue] bands; null: by colour interpretation. */
  bands: number[] | null;
  /** The scene's extent in grid pixels [minX, minY, maxX, maxY]; null when it misses the grid. */
  gridBbox: [number, number, number, number] | null;
  /** Tile services (kind 'tiles'): what to read, and once opened where the pixels came from. */
  tiles?: PlannedTileService;
}

/** A tile service of a plan (see sources.ts). */
export interface PlannedTileService {
  /** The user's choices; `zoom` is fixed to the level read once the plan has opened the service. */
  params: TileServiceParams;
  /** The area to read, lon/lat [west, south, east, north]. */
  bbox: [number, number, number, number];
  /** Target pixel size in metres (chooses the level when no zoom is given). */
  gsd: number;
  /** Template (redacted), level, attribution: filled when the plan opens the service. */
  info: TileServiceInfo | null;
}

export interface PlannedHead {
  name: string;
  kind: 'canopy-height' | 'land-cover';
  /** Tile-store planes this head writes. */
  planes: string[];
  /** Heads other than canopy height (see extra-heads.ts). */
  spec?: ExtraHeadSpec;
}

/**
 * A head besides canopy height, run on the same backbone pass (issue 8: land cover). Plain data,
 * made by the head's own package (`@geo-dino/landcover`'s `loadLandcoverHead`).
 */
export interface ExtraHeadSpec {
  /** Head name: the prefix of its tile-store planes (`landcover`). */
  name: string;
  kind: 'land-cover';
  /** The head's ONNX graph (absolute path); its inputs are backbone outputs. */
  graph: string;
  /** sha256 of the graph file. */
  sha256: string;
  /** Output holding per-class probabilities, float32 [batch, K, H, W]. */
  output: string;
  /** Classes in output-channel order: value in landcover.tif, machine name, `#rrggbb`. */
  classes: { value: number; name: string; color: string; title?: string }[];
  /** landcover.tif's value where there is no prediction. */
  nodata: number;
  /** Weights hash of the backbone the head was trained on (must equal the model's). */
  backboneWeightsSha256: string;
  /** Where the head came from (its directory), for run.json and the STAC Item. */
  source: string;
}

export interface RunPlan {
  format: typeof PLAN_FORMAT;
  formatVersion: typeof PLAN_FORMAT_VERSION;
  /** Hash of the request (arguments that define the output); resume and no-op detection use it. */
  requestHash: string;
  /** Hash of everything below that changes the output (sources resolved, grid, model, tiling). */
  configHash: string;
  geoDino: string;
  demo: boolean;
  aoi: { source: string; geometry: MultiPolygonCoords; areaM2: number };
  sources: PlannedSource[];
  grid: { crs: Crs; transform: [number, number, number, number, number, number]; width: number; height: number; gsd: number };
  tiling: {
    tileSize: number;
    overlap: number;
    stride: number;
    rows: number;
    cols: number;
    /** Tiles to predict (touching the AOI and some scene's extent). */
    tiles: number;
    blockSize: number;
    window: BlendWindow;
    /** How imagery is resampled onto the grid (GDAL's methods; bilinear by default). */
    resampling: Resampling;
  };
  model: { name: string; weightsSha256: string; demo: boolean; family: string; layout: string; dtype: string; gsd: number };
  heads: PlannedHead[];
  /** Provenance is computed on cells of this many pixels (see provenance.ts). */
  provenanceCell: number;
  nodata: number;
  /** The global shard grid this zone's outputs are cut on (`@geo-dino/tiling` shards.ts). */
  shards: { size: number; zone: string; count: number; band: number };
  /**
   * Feathering across scene seamlines (scene-feather.ts): the transition zone's width and the
   * seamlines between overlapping scenes. Absent (or `px` 0): the priority mosaic, no seams.
   */
  sceneFeather?: { metres: number; px: number; seams: SceneSeam[]; radiometry?: (SceneRadiometry | null)[] };
}

/**
 * Radiometric harmonisation of a scene (`harmonise`): per-band moment matching of its 8-bit values
 * to a higher-priority scene, fitted on their overlap only: v' = gain · v + offset.
 */
export interface SceneRadiometry {
  /** Plan source index of the scene it was matched to. */
  reference: number;
  gain: [number, number, number];
  offset: [number, number, number];
  /** Coarse cells of the overlap the fit used. */
  cells: number;
}

/**
 * A seamline between two overlapping scenes (scene-feather.ts): a least-cost path across their
 * overlap, scene `a` (higher priority) on one side, `b` on the other.
 */
export interface SceneSeam {
  /** Plan source indexes; `a` comes first in the priority order. */
  a: number;
  b: number;
  /** 'x': the seam gives x as a function of y (scenes side by side); 'y': y as a function of x. */
  axis: 'x' | 'y';
  /** Side scene `a` keeps: -1 the smaller coordinate along `axis`, +1 the larger. */
  aSide: -1 | 1;
  /** The overlap of the two scenes' extents, grid pixels [minX, minY, maxX, maxY]. */
  overlap: [number, number, number, number];
  /** Seam samples: sample k lies at `start + (k + 0.5) · step` along the seam, at `positions[k]` across (grid px). */
  start: number;
  step: number;
  positions: number[];
  /** Width of this pair's transition zone in grid pixels (the run's, or less where the overlap is narrower). */
  featherPx: number;
  /**
   * A contained pair: scene `a`'s extent lies inside `b`'s (`overlap` is a's extent). There is no
   * seamline (`positions` empty): the zone runs along a's valid-footprint edge, inside a, and a's
   * weight rises with the distance inward from that edge (computed per tile from a's validity).
   */
  footprint?: true;
}

/**
 * A whole run: the AOI split by UTM zone (one `RunPlan` each, on the global pixel lattice), and
 * the output layout. `single`: exactly one shard holds every planned pixel, and the run
 * directory keeps the simple layout (chm.tif at the top); `sharded`: one COG per shard.
 */
export interface ChmPlan {
  format: typeof RUN_PLAN_FORMAT;
  formatVersion: typeof RUN_PLAN_FORMAT_VERSION;
  requestHash: string;
  /** Hash of the zone plans' config hashes. */
  configHash: string;
  geoDino: string;
  demo: boolean;
  aoi: { source: string; geometry: MultiPolygonCoords; areaM2: number };
  shardSize: number;
  layout: 'single' | 'sharded';
  zones: RunPlan[];
  /** Totals over the zones. */
  shards: number;
  tiles: number;
}

/** What the user asks for: every field here can change the output. */
export interface ChmRequest {
  /** AOI GeoJSON path or a parsed AOI; omitted: the imagery's extent (or the demo scene). */
  aoi?: string | Aoi;
  /** Imagery in priority order: GeoTIFF/COG paths or URLs, STAC API URLs, catalogs, items. */
  imagery?: readonly string[];
  collections?: readonly string[];
  datetime?: string;
  /** STAC sources: only scenes acquired strictly after this instant (ISO 8601; monitoring uses it). */
  newerThan?: string;
  maxCloud?: number;
  sign?: SignMode;
  /** Read STAC assets' https alternates instead of their s3:// hrefs. */
  preferHttps?: boolean;
  /** HTTP headers for STAC and imagery requests. */
  headers?: Record<string, string>;
  /** Tile services (`xyz:`/`wmts:` imagery): level, layer, tile matrix set, attribution, blank tiles. */
  tileService?: TileServiceParams;
  /** A model directory, or `demo`. */
  model: string;
  /** Output pixel size (default: the model's, 0.6 m). */
  gsd?: number;
  /** Output CRS (default: UTM zone of the AOI centroid). */
  crs?: string;
  tileSize?: number;
  overlap?: number;
  blend?: BlendWindow;
  /** Resampling of the imagery onto the output grid (default bilinear; palette imagery is always nearest). */
  resampling?: Resampling;
  provenanceCell?: number;
  /** Heads to run beside canopy height on the same backbone pass (needs a split model). */
  extraHeads?: readonly ExtraHeadSpec[];
  /** Shard edge in pixels (a multiple of 512; default 8192). */
  shardSize?: number;
  /** Width of the transition zone across scene seamlines, metres (default `DEFAULT_SCENE_FEATHER_M`; 0: off). */
  sceneFeather?: number;
  /** Match each lower-priority scene's radiometry to its seamline neighbour in their overlap (needs scene feathering). */
  harmonise?: boolean;
  /** Processing band width in shards (default 16): bounds the state; never changes the output. */
  bandShards?: number;
}

export interface CommonOptions {
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
  /** Environment (for $GEO_DINO_HOME, PC_SDK_SUBSCRIPTION_KEY); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Resolve relative paths against this (default process.cwd()). */
  cwd?: string;
}
