/**
 * `provenance.geojson`: which scene (id, acquisition datetime, href, collection) every part of the
 * map comes from.
 *
 * Method: derived from the tiler's **per-pixel source index** (the scene that supplied each valid
 * output pixel, in priority order), not from scene footprints, so masked pixels, nodata collars
 * and gaps between scenes are accounted for. The index is aggregated on square cells of
 * `plan.provenanceCell` pixels (default 16 px = one ViT patch, 9.6 m at 0.6 m): a cell is
 * attributed to the scene that supplied most of its valid pixels (ties: the higher-priority
 * scene), and cells without valid pixels are left out. Accuracy: every valid pixel lies inside
 * the polygon of some scene (coverage is complete); a scene boundary is placed within one cell
 * of where it really is, and polygons extend at most one cell beyond the valid data. Pixel counts
 * per scene (`pixels`) are exact.
 *
 * Streaming: cells arrive one block row at a time and go row by row through the geometry
 * package's `StreamingPolygonizer` (each cell row a row of scene labels): 4-connected regions of
 * one scene become polygons with holes as soon as they are complete, so memory is one row of
 * cells, the open regions' boundaries and the finished polygons (proportional to boundary
 * length, not area). A scene's polygons form its MultiPolygon, projected to WGS 84 (densified,
 * RFC 7946 ring orientation).
 */
import { densify, geodesicArea, mapPositions, orientRfc7946, StreamingPolygonizer, type MultiPolygonCoords, type PolygonizedRegion, type Position } from '@geo-dino/geometry';
import { NO_SOURCE, pixelToCrs, transformBetween, WGS84, type Grid } from '@geo-dino/tiling';
import type { RunPlan } from './types.js';
import { publishedSource } from './sources.js';

export interface ProvenanceFeature {
  type: 'Feature';
  geometry: { type: 'MultiPolygon'; coordinates: MultiPolygonCoords };
  properties: {
    scene_id: string;
    datetime: string | null;
    start_datetime?: string;
    end_datetime?: string;
    href: string;
    /** Tile services: template (redacted), level, attribution, date known or not. */
    tile_service?: Record<string, unknown>;
    collection: string | null;
    item: string | null;
    /** Position in the priority order (0 = first choice). */
    priority: number;
    /** Output pixels this scene supplied (exact). */
    pixels: number;
    /** Geodesic area of the polygons, m². */
    area_m2: number;
    /** Radiometric harmonisation applied to the scene (`harmonise`): matched to `to` on their overlap. */
    radiometry?: { to: string; gain: number[]; offset: number[]; method: string };
  };
}

/**
 * A transition zone across a scene seamline (scene-feather.ts): where the map is a blend of the
 * predictions from two scenes, with the weight of `scene_ids[0]` falling from 1 to 0 across it.
 */
export interface TransitionFeature {
  type: 'Feature';
  geometry: { type: 'MultiPolygon'; coordinates: MultiPolygonCoords };
  properties: {
    kind: 'scene-transition';
    /** The two scenes blended, in priority order. */
    scene_ids: [string, string];
    datetimes: [string | null, string | null];
    /** Width of the zone across the seamline, metres; the weights' extent. */
    width_m: number;
    weights: string;
    /** Output pixels strictly inside the zone (exact). */
    pixels: number;
    area_m2: number;
  };
}

export interface ProvenanceCollection {
  type: 'FeatureCollection';
  /** How the polygons were made (a foreign member, allowed by RFC 7946). */
  geo_dino: { method: string; cell_px: number; cell_m: number; accuracy: string; config_hash: string; demo: boolean };
  features: ProvenanceFeature[];
  /** Transition zones across scene seamlines (a foreign member; absent without scene feathering). */
  transition_zones?: TransitionFeature[];
}

/** Polygons from a stream of per-pixel source indexes (see the module comment). */
export class ProvenanceBuilder {
  private readonly cell: number;
  private readonly cellsAcross: number;
  /** Cell rows → regions of one scene (labels: source index, NO_SOURCE = no region). */
  private readonly polygonizer = new StreamingPolygonizer({ background: NO_SOURCE });
  /** Finished polygons per scene, in cell coordinates. */
  private readonly polygons = new Map<number, MultiPolygonCoords>();
  private readonly pixels: Float64Array;
  private labels: Uint16Array;
  private rowCells = 0;

  /** `labels`: what the per-pixel index names — the plan's scenes, or its scene seams (transition zones). */
  constructor(
    private readonly plan: RunPlan,
    blockRows: number,
    private readonly labelKind: 'scenes' | 'seams' = 'scenes',
  ) {
    this.cell = plan.provenanceCell;
    this.cellsAcross = Math.ceil(plan.grid.width / this.cell);
    this.pixels = new Float64Array(labelKind === 'scenes' ? plan.sources.length : (plan.sceneFeather?.seams.length ?? 0));
    this.labels = new Uint16Array(this.cellsAcross * Math.ceil(blockRows / this.cell));
  }

  /** Start a row of windows covering output rows [y0, y0 + rows). `y0` must be a multiple of the cell size. */
  beginRow(y0: number, rows: number): void {
    if (y0 % this.cell !== 0) throw new Error(`provenance: row ${y0} is not a multiple of the cell size ${this.cell}`);
    this.rowCells = Math.ceil(rows / this.cell);
    if (this.labels.length < this.rowCells * this.cellsAcross) this.labels = new Uint16Array(this.rowCells * this.cellsAcross);
    this.labels.fill(NO_SOURCE, 0, this.rowCells * this.cellsAcross);
  }

  /** The source index of a window (row-major, `width` × `rows`) starting at output column `x0` (a multiple of the cell). */
  addWindow(x0: number, width: number, rows: number, source: Uint16Array): void {
    const c = this.cell;
    const counts: number[] = [];
    for (let i = 0; i < source.length; i++) {
      const s = source[i]!;
      if (s !== NO_SOURCE) this.pixels[s]!++;
    }
    for (let cy = 0; cy < this.rowCells; cy++) {
      for (let cx = 0; cx * c < width; cx++) {
        counts.length = 0;
        const ya = cy * c;
        const yb = Math.min(rows, ya + c);
        const xa = cx * c;
        const xb = Math.min(width, xa + c);
        // Most cells hold one scene: pairs [label, count] searched linearly.
        for (let y = ya; y < yb; y++) {
          for (let x = xa; x < xb; x++) {
            const s = source[y * width + x]!;
            if (s === NO_SOURCE) continue;
            let k = 0;
            while (k < counts.length && counts[k] !== s) k += 2;
            if (k < counts.length) counts[k + 1]!++;
            else counts.push(s, 1);
          }
        }
        if (!counts.length) continue;
        let best = counts[0]!;
        let bestN = counts[1]!;
        for (let k = 2; k < counts.length; k += 2) {
          const n = counts[k + 1]!;
          if (n > bestN || (n === bestN && counts[k]! < best)) {
            best = counts[k]!;
            bestN = n;
          }
        }
        this.labels[cy * this.cellsAcross + x0 / c + cx] = best;
      }
    }
  }

  /** Finish the row of windows: its cell rows go to the polygonizer. */
  endRow(): void {
    for (let cy = 0; cy < this.rowCells; cy++) this.collect(this.polygonizer.addRow(this.labels.subarray(cy * this.cellsAcross, (cy + 1) * this.cellsAcross)));
  }

  private collect(regions: PolygonizedRegion[]): void {
    for (const r of regions) {
      const list = this.polygons.get(r.label);
      if (list) list.push(...r.polygons);
      else this.polygons.set(r.label, [...r.polygons]);
    }
  }

  /** The finished regions per label, in lon/lat (RFC 7946 orientation). */
  private regions(): { label: number; lonlat: MultiPolygonCoords }[] {
    const plan = this.plan;
    const grid: Grid = { crs: plan.grid.crs, transform: plan.grid.transform, width: plan.grid.width, height: plan.grid.height, gsd: plan.grid.gsd };
    const toLonLat = transformBetween(grid.crs, WGS84, 'provenance');
    const c = this.cell;
    this.collect(this.polygonizer.finish());
    return [...this.polygons.keys()]
      .sort((a, b) => a - b)
      .map((label) => {
        const px = mapPositions(this.polygons.get(label)!, ([x, y]): Position => [Math.min(grid.width, x * c), Math.min(grid.height, y * c)]);
        const lonlat = orientRfc7946(
          mapPositions(densify(px, 256), ([x, y]) => {
            const [X, Y] = pixelToCrs(grid, x, y);
            return toLonLat.forward(X, Y);
          }),
        );
        return { label, lonlat };
      });
  }

  /** The transition zones (a builder made with `'seams'`): one feature per seam with pixels inside its zone. */
  finishTransitions(): TransitionFeature[] {
    const plan = this.plan;
    const f = plan.sceneFeather;
    if (!f) return [];
    const m = plan.grid.gsd * plan.grid.crs.metresPerUnit;
    return this.regions().map(({ label, lonlat }) => {
      const seam = f.seams[label]!;
      const [a, b] = [plan.sources[seam.a]!, plan.sources[seam.b]!];
      return {
        type: 'Feature' as const,
        geometry: { type: 'MultiPolygon' as const, coordinates: lonlat },
        properties: {
          kind: 'scene-transition' as const,
          scene_ids: [a.id, b.id] as [string, string],
          datetimes: [a.datetime, b.datetime] as [string | null, string | null],
          width_m: Math.round(seam.featherPx * m * 1000) / 1000,
          weights: seam.footprint
            ? `raised cosine inward from ${a.id}'s footprint edge (inside ${b.id}'s extent): ${a.id} from 0 to 1, ${b.id} from 1 to 0`
            : `raised cosine across the seamline: ${a.id} from 1 to 0, ${b.id} from 0 to 1`,
          pixels: this.pixels[label]!,
          area_m2: Math.round(geodesicArea(lonlat) * 100) / 100,
        },
      };
    });
  }

  /** The FeatureCollection (lon/lat), one MultiPolygon feature per scene that supplied pixels. */
  finish(): ProvenanceCollection {
    const plan = this.plan;
    const grid: Grid = { crs: plan.grid.crs, transform: plan.grid.transform, width: plan.grid.width, height: plan.grid.height, gsd: plan.grid.gsd };
    const c = this.cell;
    const features: ProvenanceFeature[] = [];
    for (const { label: l, lonlat } of this.regions()) {
      const s = plan.sources[l]!;
      features.push({
        type: 'Feature',
        geometry: { type: 'MultiPolygon', coordinates: lonlat },
        properties: {
          scene_id: s.id,
          datetime: s.datetime,
          ...(s.startDatetime ? { start_datetime: s.startDatetime } : {}),
          ...(s.endDatetime ? { end_datetime: s.endDatetime } : {}),
          ...publishedSource(s),
          collection: s.collection,
          item: s.itemHref,
          priority: l,
          pixels: this.pixels[l]!,
          area_m2: Math.round(geodesicArea(lonlat) * 100) / 100,
          ...radiometryOf(plan, l),
        },
      });
    }
    const cellM = c * grid.gsd * grid.crs.metresPerUnit;
    return {
      type: 'FeatureCollection',
      geo_dino: {
        method: 'per-pixel source index of the mosaic, majority scene per cell',
        cell_px: c,
        cell_m: Math.round(cellM * 1000) / 1000,
        accuracy: `complete coverage of valid pixels; scene boundaries within one cell (${cellM.toFixed(1)} m)`,
        config_hash: plan.configHash,
        demo: plan.demo,
      },
      features,
    };
  }
}

/** The `radiometry` property of a harmonised scene. */
function radiometryOf(plan: RunPlan, l: number): { radiometry?: NonNullable<ProvenanceFeature['properties']['radiometry']> } {
  const r = plan.sceneFeather?.radiometry?.[l];
  if (!r) return {};
  return { radiometry: { to: plan.sources[r.reference]!.id, gain: r.gain, offset: r.offset, method: `per-band moment matching on the overlap (${r.cells} coarse cells): v' = gain · v + offset` } };
}
