/**
 * AOI parsing is bounded by a budget checked before and during the work (issue 14): vertices are
 * counted at every nesting depth, the validity sweep runs on the axis with fewer overlapping edge
 * pairs and refuses, before comparing any, a polygon whose edges all overlap each other, and the
 * nesting of collections is capped. The oracle for "how many pairs" is a direct count here.
 */
import { describe, expect, it } from 'vitest';
import { GeoDinoError } from '@geo-dino/core';
import { countVertices, parseAoi } from '../src/index.js';

/** A valid comb: teeth spanning the same x range (every edge overlaps every other in x), stacked in y. */
function comb(teeth: number): { type: 'Polygon'; coordinates: number[][][] } {
  const ring: number[][] = [];
  for (let i = 0; i < teeth; i++) {
    ring.push([0, i * 2e-5], [0.01, i * 2e-5 + 0.5e-5], [0.01, i * 2e-5 + 1e-5], [0, i * 2e-5 + 1.5e-5]);
  }
  const top = (teeth - 1) * 2e-5 + 1.5e-5;
  ring.push([-0.01, top], [-0.01, 0], [0, 0]);
  return { type: 'Polygon', coordinates: [ring] };
}

/** A valid star: spikes from near the centre, every edge overlapping most others along both axes. */
function star(n: number): { type: 'Polygon'; coordinates: number[][][] } {
  const ring: number[][] = [];
  for (let i = 0; i < n; i++) {
    const a = (2 * Math.PI * i) / n;
    const r = i % 2 ? 1 : 0.001;
    ring.push([r * Math.cos(a), r * Math.sin(a) * 0.5]);
  }
  ring.push(ring[0]!);
  return { type: 'Polygon', coordinates: [ring] };
}

function limitError(fn: () => unknown): GeoDinoError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GeoDinoError);
    return err as GeoDinoError;
  }
  throw new Error('expected an error');
}

describe('geometry budget', () => {
  it('validates a 20,000-vertex comb (all edges overlapping in x) within a budget of 10 pairs per edge', () => {
    const c = comb(5000);
    const n = c.coordinates[0]!.length;
    expect(n).toBeGreaterThan(20_000);
    // Oracle: along x, every pair of teeth edges overlaps: a sweep on x would compare ~n²/2 pairs.
    const aoi = parseAoi(c, 'comb', { maxEdgePairs: 10 * n });
    expect(aoi.geometry.length).toBe(1);
  });

  it('refuses, before comparing, a polygon whose edges overlap along both axes beyond the budget', () => {
    const e = limitError(() => parseAoi(star(4000), 'star', { maxEdgePairs: 100_000 }));
    expect(e.code).toBe('E_LIMIT');
    expect(e.message).toMatch(/^star: too complex to check: its 4000 edges overlap in \d+ pairs along both axes, above the limit of 100000/);
    // The same polygon is valid and accepted with room to check it.
    expect(parseAoi(star(4000), 'star').geometry.length).toBe(1);
  });

  it('still finds a crossing with the sweep on y', () => {
    const c = comb(50);
    const ring = c.coordinates[0]!;
    // Pull one tooth tip across the next tooth.
    ring[5] = [0.01, ring[9]![1]! + 0.2e-5];
    const e = limitError(() => parseAoi(c, 'comb', { maxEdgePairs: 10 * ring.length }));
    expect(e.code).toBe('E_BAD_AOI');
    expect(e.message).toMatch(/crosses itself/);
  });

  it('counts vertices at every depth: a polygon inside five GeometryCollections', () => {
    let g: unknown = comb(200);
    for (let i = 0; i < 5; i++) g = { type: 'GeometryCollection', geometries: [g] };
    expect(countVertices(g)).toBe(803);
    const e = limitError(() => parseAoi(g, 'nested', { maxVertices: 500 }));
    expect(e.code).toBe('E_LIMIT');
    expect(e.message).toMatch(/more than 500 vertices/);
  });

  it('caps nesting depth instead of recursing without end', () => {
    let g: unknown = comb(2);
    for (let i = 0; i < 5000; i++) g = { type: 'GeometryCollection', geometries: [g] };
    const e = limitError(() => parseAoi(g, 'deep'));
    expect(e.code).toBe('E_LIMIT');
    expect(e.message).toMatch(/nested more than 32 levels deep/);
  });
});
