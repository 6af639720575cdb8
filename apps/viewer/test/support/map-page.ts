/**
 * Driving the viewer's map in Chromium (playwright-core) for the end-to-end tests: wait until it
 * has rendered, move it, find a place on screen, read screen pixels. The page exposes its maps as
 * `window.geoDino` (`map`, and `compareMap` while swipe compare is on).
 */
import sharp from 'sharp';
import type { Page } from 'playwright-core';

type Maps = { geoDino: { map: import('maplibre-gl').Map; compareMap?: import('maplibre-gl').Map | null } };

/** Wait until every map has loaded its tiles and rendered a frame. */
export async function mapIdle(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const g = (window as unknown as Maps).geoDino;
    return [g.map, g.compareMap].every((m) => !m || (m.loaded() && m.areTilesLoaded() && !m.isMoving()));
  });
  await page.evaluate(() => new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))));
}

/** Jump the main map to (lon, lat) at `zoom` and wait for it to settle. */
export async function jumpTo(page: Page, lon: number, lat: number, zoom: number): Promise<void> {
  await page.evaluate(
    ([lon, lat, zoom]) =>
      new Promise<void>((resolve) => {
        const m = (window as unknown as Maps).geoDino.map;
        m.once('idle', () => resolve());
        m.jumpTo({ center: [lon!, lat!], zoom: zoom! });
      }),
    [lon, lat, zoom],
  );
}

/** Where (lon, lat) is on the page, in CSS pixels. */
export async function screenPoint(page: Page, lon: number, lat: number): Promise<{ x: number; y: number }> {
  return page.evaluate(([lon, lat]) => {
    const m = (window as unknown as Maps).geoDino.map;
    const p = m.project([lon!, lat!]);
    const r = m.getCanvas().getBoundingClientRect();
    return { x: r.left + p.x, y: r.top + p.y };
  }, [lon, lat]);
}

/** RGB of the page's screenshot at each point. */
export async function screenPixels(page: Page, points: { x: number; y: number }[]): Promise<[number, number, number][]> {
  const png = await page.screenshot();
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return points.map(({ x, y }) => {
    const i = (Math.round(y) * info.width + Math.round(x)) * 3;
    return [data[i]!, data[i + 1]!, data[i + 2]!];
  });
}

/** Largest per-channel difference of two colours. */
export const colourDistance = (a: readonly number[], b: readonly number[]): number => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
