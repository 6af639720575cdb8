/**
 * Datetime windows as analysts type them; expected instants written out by hand.
 */
import { describe, expect, it } from 'vitest';
import { formatDatetimeRange, intersectRanges, itemInRange, itemTime, parseDatetimeRange, type StacItem } from '../src/index.js';

const iso = (r: { start: Date | null; end: Date | null }): [string | null, string | null] => [r.start?.toISOString() ?? null, r.end?.toISOString() ?? null];

describe('datetime windows', () => {
  it('partial dates cover their whole period; open ends; zones', () => {
    expect(iso(parseDatetimeRange('2023'))).toEqual(['2023-01-01T00:00:00.000Z', '2023-12-31T23:59:59.999Z']);
    expect(iso(parseDatetimeRange('2024-02'))).toEqual(['2024-02-01T00:00:00.000Z', '2024-02-29T23:59:59.999Z']);
    expect(iso(parseDatetimeRange('2023-06-22'))).toEqual(['2023-06-22T00:00:00.000Z', '2023-06-22T23:59:59.999Z']);
    expect(iso(parseDatetimeRange('2023-06/..'))).toEqual(['2023-06-01T00:00:00.000Z', null]);
    expect(iso(parseDatetimeRange('/2020'))).toEqual([null, '2020-12-31T23:59:59.999Z']);
    expect(iso(parseDatetimeRange('2023-06-22T12:00:00+02:00/2023-06-23T00:00:00Z'))).toEqual(['2023-06-22T10:00:00.000Z', '2023-06-23T00:00:00.000Z']);
    expect(iso(parseDatetimeRange('2023-06-22T12:00:00'))).toEqual(['2023-06-22T12:00:00.000Z', '2023-06-22T12:00:00.000Z']);
    expect(formatDatetimeRange(parseDatetimeRange('2023-06/..'))).toBe('2023-06-01T00:00:00.000Z/..');
    expect(formatDatetimeRange(parseDatetimeRange('2023-06-22T12:00:00Z'))).toBe('2023-06-22T12:00:00.000Z');
  });

  it('refuses what it cannot read, naming the option', () => {
    expect(() => parseDatetimeRange('2023-02-30', '--datetime')).toThrow(/--datetime: 2023-02-30 is not a calendar date/);
    expect(() => parseDatetimeRange('yesterday', '--datetime')).toThrow(/--datetime: cannot read "yesterday"/);
    expect(() => parseDatetimeRange('../..')).toThrow(/both ends of the interval are open/);
    expect(() => parseDatetimeRange('2023/2022')).toThrow(/the start is after the end/);
    expect(() => parseDatetimeRange('a/b/c')).toThrow(/at most one "\/"/);
  });

  it('item times: datetime, or start/end intervals, overlap tests and window intersection', () => {
    const item = (p: Record<string, unknown>): StacItem => ({ type: 'Feature', stac_version: '1.0.0', id: 'x', geometry: null, properties: p, links: [], assets: {} });
    const range = parseDatetimeRange('2023-06');
    expect(itemInRange(itemTime(item({ datetime: '2023-06-30T23:00:00Z' })), range)).toBe(true);
    expect(itemInRange(itemTime(item({ datetime: '2023-07-01T00:00:00Z' })), range)).toBe(false);
    const iv = itemTime(item({ datetime: null, start_datetime: '2023-05-01T00:00:00Z', end_datetime: '2023-06-02T00:00:00Z' }));
    expect(iv.nominal?.toISOString()).toBe('2023-06-02T00:00:00.000Z');
    expect(itemInRange(iv, range)).toBe(true);
    expect(iso(intersectRanges(parseDatetimeRange('2023'), parseDatetimeRange('2023-06/..'))!)).toEqual(['2023-06-01T00:00:00.000Z', '2023-12-31T23:59:59.999Z']);
    expect(intersectRanges(parseDatetimeRange('2022'), parseDatetimeRange('2023/..'))).toBeNull();
  });
});
