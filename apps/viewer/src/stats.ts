/**
 * The statistics panel: a table (exact numbers in data-value attributes) and a histogram.
 */
import type { ViewerStats as StatsResponse } from './api.js';
import { $, $as, el, fmtMetres } from './dom.js';

function row(label: string, key: string, value: number | null | undefined, text: string): HTMLTableRowElement {
  return el('tr', {}, [el('th', { text: label }), el('td', { text, data: { key, value: value === null || value === undefined ? '' : String(value) } })]);
}

const pct = (v: number | undefined): string => (v === undefined ? '–' : `${(v * 100).toFixed(1)} %`);
const ha = (m2: number): string => `${(m2 / 1e4).toFixed(m2 < 1e4 ? 3 : 2)} ha`;

export function showStats(s: StatsResponse): void {
  const table = $('stats-table');
  table.replaceChildren(
    row('Polygon area', 'areaM2', s.polygon.areaM2, ha(s.polygon.areaM2)),
    row('With data', 'validAreaM2', s.validAreaM2, `${ha(s.validAreaM2)} (${s.pixels.valid} px)`),
    row('Mean height', 'mean', s.height?.mean, fmtMetres(s.height?.mean)),
    row('Median height', 'median', s.height?.median, fmtMetres(s.height?.median)),
    row('Std. deviation', 'std', s.height?.std, fmtMetres(s.height?.std)),
    row('10th–90th pct', 'p10p90', s.height?.p90, s.height ? `${s.height.p10.toFixed(2)}–${s.height.p90.toFixed(2)} m` : '–'),
    row('Max height', 'max', s.height?.max, fmtMetres(s.height?.max)),
    row('Canopy cover > 2 m', 'gt2m', s.canopyCover?.gt2m, pct(s.canopyCover?.gt2m)),
    row('Canopy cover > 5 m', 'gt5m', s.canopyCover?.gt5m, pct(s.canopyCover?.gt5m)),
    row('Mean uncertainty', 'uncertainty', s.uncertainty?.mean, s.uncertainty ? `± ${s.uncertainty.mean.toFixed(2)} m` : '–'),
  );
  drawHistogram(s);
  // Static sites compute in the browser: full resolution up to a pixel cap, else an overview.
  const note = $('stats-note');
  const r = s.resolution;
  note.hidden = !r;
  if (r) {
    note.textContent = r.fullResolution
      ? `Computed in the browser at full resolution (${r.pixelSizeM.toFixed(2)} m pixels).`
      : `Computed in the browser from overview level ${r.level} (${r.pixelSizeM.toFixed(2)} m pixels): the polygon is too large for full resolution here; \`geo-dino serve\` gives exact values.`;
    note.dataset['level'] = String(r.level);
    note.dataset['pixelSize'] = String(r.pixelSizeM);
  }
  $('stats-panel').hidden = false;
  $('stats-error').hidden = true;
}

export function showStatsError(message: string): void {
  const e = $('stats-error');
  e.textContent = message;
  e.hidden = false;
  $('stats-panel').hidden = true;
}

export function hideStats(): void {
  $('stats-panel').hidden = true;
  $('stats-error').hidden = true;
}

function drawHistogram(s: StatsResponse): void {
  const canvas = $as('histogram', HTMLCanvasElement);
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const { counts, edges, binWidthM } = s.histogram;
  const total = counts.reduce((a, b) => a + b, 0);
  const W = canvas.width;
  const H = canvas.height;
  const left = 30;
  const bottom = 18;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = '#9aa5a0';
  ctx.font = '10px system-ui, sans-serif';
  const maxFrac = Math.max(1e-9, ...counts.map((c) => c / Math.max(1, total)));
  const bw = (W - left - 4) / Math.max(1, counts.length);
  counts.forEach((c, i) => {
    const h = ((c / Math.max(1, total)) / maxFrac) * (H - bottom - 8);
    ctx.fillStyle = '#5fb36b';
    ctx.fillRect(left + i * bw + 0.5, H - bottom - h, Math.max(1, bw - 1), h);
  });
  ctx.fillStyle = '#c9d1cc';
  ctx.fillText(`${(maxFrac * 100).toFixed(0)}%`, 2, 12);
  ctx.fillText('0', 2, H - bottom);
  const step = Math.max(1, Math.ceil(counts.length / 6));
  for (let i = 0; i < edges.length; i += step) ctx.fillText(String(edges[i]), left + i * bw - 3, H - 4);
  canvas.setAttribute('aria-label', `height histogram, ${binWidthM} m bins, ${total} pixels`);
  canvas.dataset['counts'] = counts.join(',');
}
