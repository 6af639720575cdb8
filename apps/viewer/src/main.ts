/**
 * The geo-dino viewer: runs served by `geo-dino serve` or published as a static site by
 * `geo-dino publish` (values then read from the COGs in the browser, api.ts), their layers (imagery, canopy height,
 * uncertainty, land cover), a browser-side colour ramp with a legend, pixel values on click, AOI
 * statistics, and a swipe compare between two runs of the same area. No external resources: the
 * map works offline unless a basemap is configured on the server.
 */
import 'maplibre-gl/dist/maplibre-gl.css';
import './style.css';
import { addProtocol, Map as MlMap, NavigationControl, Popup, ScaleControl, setWorkerUrl, type MapMouseEvent, type StyleSpecification } from 'maplibre-gl';
import workerUrl from 'maplibre-gl/dist/maplibre-gl-worker.mjs?url';
import { Protocol } from 'pmtiles';
import type { ConfigResponse, PointResponse, RunInfo } from '@geo-dino/server/api-types';
import { openBackend, type Backend, type ViewerStats } from './api.js';
import { $, $as, el, fmtDate, fmtMetres } from './dom.js';
import { applySettings, LAYER_LABEL, LAYER_ORDER, layerOf, recolour, showRun, type LayerId, type LayerSettings } from './layers.js';
import { PolygonDrawer, type PolygonGeoJSON } from './draw.js';
import { buildLut, cssColor, RAMPS } from './ramps.js';
import { hideStats, showStats, showStatsError } from './stats.js';
import { installValueProtocol, valueUnder, type ValueStyle } from './values.js';

interface State {
  runs: RunInfo[];
  run: RunInfo | null;
  compare: RunInfo | null;
  layers: Record<LayerId, LayerSettings>;
  ramp: { name: string; min: number; max: number };
  aoi: unknown;
  stats: ViewerStats | null;
  point: PointResponse | null;
}

const state: State = {
  runs: [],
  run: null,
  compare: null,
  layers: {
    imagery: { visible: true, opacity: 1 },
    landcover: { visible: false, opacity: 0.7 },
    uncertainty: { visible: false, opacity: 0.8 },
    height: { visible: true, opacity: 0.85 },
  },
  ramp: { name: 'viridis', min: 0, max: 40 },
  aoi: null,
  stats: null,
  point: null,
};

const BACKGROUND = '#1d2226';
let heightLut = buildLut('viridis');
const uncertaintyLut = buildLut('magma');
let uncertaintyMax = 5;
const heightStyle = (): ValueStyle => ({ lut: heightLut, min: state.ramp.min, max: state.ramp.max });
const uncertaintyStyle = (): ValueStyle => ({ lut: uncertaintyLut, min: 0, max: uncertaintyMax });

function baseStyle(): StyleSpecification {
  return { version: 8, sources: {}, layers: [{ id: 'background', type: 'background', paint: { 'background-color': BACKGROUND } }] };
}

function fail(message: string): void {
  const e = $('map-error');
  e.textContent = message;
  e.hidden = false;
}

/** Wait until a map has loaded its style. */
function loaded(map: MlMap): Promise<void> {
  return map.loaded() || map.isStyleLoaded() ? Promise.resolve() : new Promise((r) => map.once('load', () => r()));
}

async function createMap(container: string, config: ConfigResponse, run: RunInfo | null): Promise<MlMap> {
  const map = new MlMap({
    container,
    style: config.basemap ?? baseStyle(),
    ...(run?.bbox ? { bounds: run.bbox, fitBoundsOptions: { padding: 30 } } : { center: [0, 0], zoom: 1 }),
    maxZoom: 23,
    attributionControl: { compact: true },
    fadeDuration: 0,
    canvasContextAttributes: { preserveDrawingBuffer: true },
  });
  await loaded(map);
  return map;
}

function runsOfArea(area: string): RunInfo[] {
  return state.runs.filter((r) => r.area === area);
}

function label(r: RunInfo): string {
  return `${r.datetime ? fmtDate(r.datetime).slice(0, 10) : 'undated'} · ${r.name}${r.demo ? ' (DEMO)' : ''}`;
}

function updateBanner(): void {
  $('demo-banner').hidden = !(state.run?.demo || state.compare?.demo);
}

function fillSelect(select: HTMLSelectElement, options: { value: string; text: string }[], selected: string | null): void {
  select.replaceChildren(...options.map((o) => el('option', { text: o.text, attrs: { value: o.value } })));
  if (selected !== null) select.value = selected;
}

function renderRunControls(): void {
  const areas = [...new Set(state.runs.map((r) => r.area))];
  fillSelect($as('area-select', HTMLSelectElement), areas.map((a) => ({ value: a, text: a })), state.run?.area ?? null);
  $('area-select').parentElement!.hidden = areas.length < 2;
  const inArea = state.run ? runsOfArea(state.run.area) : [];
  fillSelect($as('run-select', HTMLSelectElement), inArea.map((r) => ({ value: r.id, text: label(r) })), state.run?.id ?? null);
  const others = inArea.filter((r) => r.id !== state.run?.id);
  const cmp = $as('compare-select', HTMLSelectElement);
  fillSelect(cmp, others.map((r) => ({ value: r.id, text: label(r) })), state.compare?.id ?? others[others.length - 1]?.id ?? null);
  const toggle = $as('compare-toggle', HTMLInputElement);
  toggle.disabled = others.length === 0;
  cmp.disabled = others.length === 0 || !toggle.checked;
  const r = state.run;
  $('run-info').textContent = r ? `${r.model ? `model ${r.model} · ` : ''}${fmtDate(r.datetime)}` : 'no runs found under the served directory';
}

function renderLayerControls(maps: () => MlMap[]): void {
  const list = $('layer-list');
  list.replaceChildren();
  for (const id of [...LAYER_ORDER].reverse()) {
    const present = state.run ? layerOf(state.run, id) : undefined;
    const s = state.layers[id];
    const box = el('input', { attrs: { type: 'checkbox', id: `layer-${id}` } });
    box.checked = s.visible;
    box.disabled = !present;
    const slider = el('input', { attrs: { type: 'range', min: '0', max: '1', step: '0.05', id: `opacity-${id}`, 'aria-label': `${LAYER_LABEL[id]} opacity` } });
    slider.value = String(s.opacity);
    slider.disabled = !present;
    const apply = (): void => {
      s.visible = box.checked;
      s.opacity = Number(slider.value);
      for (const m of maps()) for (const p of ['a', 'b']) applySettings(m, p, state.layers);
      renderLegend();
    };
    box.addEventListener('change', apply);
    slider.addEventListener('input', apply);
    list.appendChild(
      el('div', { className: `layer${present ? '' : ' absent'}`, data: { layer: id } }, [
        el('label', { className: 'inline' }, [box, document.createTextNode(` ${LAYER_LABEL[id]}${present ? '' : ' (not in this run)'}`)]),
        slider,
      ]),
    );
  }
}

function renderLegend(): void {
  const canvas = $as('legend-canvas', HTMLCanvasElement);
  const ctx = canvas.getContext('2d');
  if (ctx) {
    for (let x = 0; x < canvas.width; x++) {
      ctx.fillStyle = cssColor(heightLut, Math.round((x / (canvas.width - 1)) * 255));
      ctx.fillRect(x, 0, 1, canvas.height);
    }
  }
  const { min, max } = state.ramp;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((t) => min + (max - min) * t);
  $('legend-labels').replaceChildren(...ticks.map((v) => el('span', { text: `${Number(v.toFixed(1))}` })));
  const l = state.run ? layerOf(state.run, 'height') : undefined;
  const range = l?.geoDino && l.geoDino.min !== null && l.geoDino.max !== null ? ` · data ${l.geoDino.min.toFixed(1)}–${l.geoDino.max.toFixed(1)} m` : '';
  $('legend-caption').textContent = `canopy height, m (values beyond the range take the end colours)${range}`;
  $('legend').dataset['min'] = String(min);
  $('legend').dataset['max'] = String(max);
  // Legends of the other visible value layers.
  const extra: HTMLElement[] = [];
  if (state.run && state.layers.uncertainty.visible && layerOf(state.run, 'uncertainty')) {
    const c = el('canvas', { attrs: { width: '240', height: '10', 'aria-label': 'uncertainty legend' } });
    const g = c.getContext('2d');
    if (g) for (let x = 0; x < 240; x++) (g.fillStyle = cssColor(uncertaintyLut, Math.round((x / 239) * 255))), g.fillRect(x, 0, 1, 10);
    extra.push(el('div', { className: 'legend-block' }, [c, el('div', { className: 'muted small', text: `uncertainty (± m): 0 – ${uncertaintyMax} m` })]));
  }
  const lc = state.run ? layerOf(state.run, 'landcover') : undefined;
  if (lc && state.layers.landcover.visible) {
    const items = (lc.geoDino?.classes ?? []).map((k) => {
      const sw = el('span', { className: 'swatch' });
      sw.style.background = k.color;
      return el('li', {}, [sw, document.createTextNode(` ${k.name}`)]);
    });
    extra.push(el('div', { className: 'legend-block' }, [el('div', { className: 'muted small', text: 'land cover' }), el('ul', { className: 'classes' }, items)]));
  }
  $('legend-extra').replaceChildren(...extra);
}

function popupContent(p: PointResponse): HTMLElement {
  const lines: HTMLElement[] = [];
  if (!p.inside) lines.push(el('div', { text: 'Outside this run', className: 'muted' }));
  else if (p.height_m === null) lines.push(el('div', { text: 'No data at this pixel', className: 'muted' }));
  else {
    const h = el('div', { className: 'value', data: { height: String(p.height_m), uncertainty: String(p.uncertainty_m ?? '') } });
    h.append(el('strong', { text: fmtMetres(p.height_m) }), document.createTextNode(p.uncertainty_m !== null ? ` ± ${fmtMetres(p.uncertainty_m)}` : ''));
    lines.push(el('div', { text: 'Canopy height', className: 'muted' }), h);
  }
  if (p.landcover) lines.push(el('div', { text: `Land cover: ${p.landcover.name ?? `class ${p.landcover.value}`}` }));
  if (p.scene) {
    lines.push(el('div', { text: `Acquired ${fmtDate(p.scene.datetime)}`, data: { datetime: p.scene.datetime ?? '' } }));
    lines.push(el('div', { text: `Scene ${p.scene.scene_id ?? 'unknown'}${p.scene.collection ? ` (${p.scene.collection})` : ''}`, className: 'scene', data: { scene: p.scene.scene_id ?? '' } }));
  } else if (p.inside) lines.push(el('div', { text: 'Source scene unknown (no provenance)', className: 'muted' }));
  if (p.blend) {
    const [a, b] = p.blend.scene_ids;
    lines.push(el('div', { text: `Blend of scenes ${a} and ${b}${p.blend.width_m !== null ? ` (${Number(p.blend.width_m.toFixed(1))} m transition across their seamline)` : ''}`, className: 'blend', data: { blend: `${a}|${b}` } }));
  }
  lines.push(el('div', { text: `${p.lat.toFixed(6)}, ${p.lon.toFixed(6)}`, className: 'muted small' }));
  return el('div', { className: 'point-popup' }, lines);
}

async function main(): Promise<void> {
  setWorkerUrl(workerUrl);
  addProtocol('pmtiles', new Protocol().tile);
  installValueProtocol();

  const backend: Backend = await openBackend();
  const config = backend.config;
  const runs = await backend.runs();
  $('version').textContent = `v${config.version}${backend.mode === 'static' ? ' · static site' : ''}`;
  document.body.dataset['mode'] = backend.mode;
  state.runs = runs.runs;
  // Latest run of the first area.
  state.run = state.runs.length ? runsOfArea(state.runs[state.runs.length - 1]!.area).slice(-1)[0]! : null;
  const h = state.run ? layerOf(state.run, 'height')?.geoDino : undefined;
  if (h?.max !== null && h?.max !== undefined) state.ramp.max = Math.max(5, Math.ceil(h.max / 5) * 5);
  const u = state.run ? layerOf(state.run, 'uncertainty')?.geoDino : undefined;
  if (u?.max !== null && u?.max !== undefined) uncertaintyMax = Math.max(1, Math.ceil(u.max));

  const map = await createMap('map', config, state.run);
  map.addControl(new NavigationControl({ showCompass: false }), 'top-right');
  map.addControl(new ScaleControl({ unit: 'metric' }), 'bottom-right');
  let compareMap: MlMap | null = null;
  const maps = (): MlMap[] => (compareMap ? [map, compareMap] : [map]);
  const styles = { height: heightStyle, uncertainty: uncertaintyStyle };
  const exposed = { map, compareMap: null as MlMap | null, state };
  (window as unknown as { geoDino: typeof exposed }).geoDino = exposed;

  // --- runs and layers
  // A static site: a run's files are probed first (a missing file or a server without Range
  // support is named in the page, and its layers are not added).
  const checkedRuns = new Set<string>();
  const usable = (r: RunInfo | null): boolean => !!r && (!backend.check || checkedRuns.has(r.id));
  const check = async (r: RunInfo | null): Promise<void> => {
    if (!r || !backend.check || checkedRuns.has(r.id)) return;
    try {
      await backend.check(r.id);
      checkedRuns.add(r.id);
      $('map-error').hidden = true;
    } catch (err) {
      fail((err as Error).message);
    }
  };
  const show = (): void => {
    if (state.run && usable(state.run)) showRun(map, 'a', state.run, state.layers, styles);
    if (compareMap && state.compare && usable(state.compare)) showRun(compareMap, 'b', state.compare, state.layers, styles);
    updateBanner();
    renderRunControls();
    renderLayerControls(maps);
    renderLegend();
  };
  await check(state.run);
  show();

  $('run-select').addEventListener('change', async (e) => {
    state.run = state.runs.find((r) => r.id === (e.target as HTMLSelectElement).value) ?? state.run;
    if (state.compare?.id === state.run?.id) state.compare = runsOfArea(state.run!.area).find((r) => r.id !== state.run!.id) ?? null;
    await check(state.run);
    show();
    if (state.aoi) void runStats();
  });
  $('area-select').addEventListener('change', async (e) => {
    const runs = runsOfArea((e.target as HTMLSelectElement).value);
    state.run = runs[runs.length - 1] ?? state.run;
    state.compare = null;
    $as('compare-toggle', HTMLInputElement).checked = false;
    void setCompare(false);
    await check(state.run);
    show();
    if (state.run?.bbox) map.fitBounds(state.run.bbox, { padding: 30, duration: 0 });
  });

  // --- swipe compare
  const swipe = $('swipe');
  let swipeX = 0.5;
  const clip = (): void => {
    const w = $('maps').clientWidth;
    const x = Math.round(w * swipeX);
    $('map-compare').style.clipPath = `inset(0 0 0 ${x}px)`;
    swipe.style.left = `${x}px`;
  };
  let syncing = false;
  const sync = (from: MlMap, to: MlMap) => (): void => {
    if (syncing) return;
    syncing = true;
    to.jumpTo({ center: from.getCenter(), zoom: from.getZoom(), bearing: from.getBearing(), pitch: from.getPitch() });
    syncing = false;
  };
  const setCompare = async (on: boolean): Promise<void> => {
    const cmpSel = $as('compare-select', HTMLSelectElement);
    cmpSel.disabled = !on;
    state.compare = on ? (state.runs.find((r) => r.id === cmpSel.value) ?? null) : null;
    $('map-compare').hidden = !on;
    swipe.hidden = !on;
    $('compare-labels').hidden = !on;
    if (on && state.compare) {
      await check(state.compare);
      if (!usable(state.compare)) return;
      if (!compareMap) {
        compareMap = await createMap('map-compare', config, state.run);
        exposed.compareMap = compareMap;
        compareMap.on('move', sync(compareMap, map));
        map.on('move', sync(map, compareMap));
        compareMap.on('click', (e) => void onClick(compareMap!, e, () => state.compare));
      }
      sync(map, compareMap)();
      showRun(compareMap, 'b', state.compare, state.layers, styles);
      compareMap.resize();
      clip();
      $('label-left').textContent = state.run ? label(state.run) : '';
      $('label-right').textContent = label(state.compare);
    }
    updateBanner();
  };
  $('compare-toggle').addEventListener('change', (e) => void setCompare((e.target as HTMLInputElement).checked));
  $('compare-select').addEventListener('change', () => void setCompare(true));
  swipe.addEventListener('pointerdown', (e) => {
    swipe.setPointerCapture(e.pointerId);
    const move = (ev: PointerEvent): void => {
      const r = $('maps').getBoundingClientRect();
      swipeX = Math.min(0.98, Math.max(0.02, (ev.clientX - r.left) / r.width));
      clip();
    };
    const up = (): void => {
      swipe.removeEventListener('pointermove', move);
      swipe.removeEventListener('pointerup', up);
    };
    swipe.addEventListener('pointermove', move);
    swipe.addEventListener('pointerup', up);
  });
  window.addEventListener('resize', () => compareMap && clip());

  // --- ramp
  const rampSelect = $as('ramp-select', HTMLSelectElement);
  fillSelect(rampSelect, Object.keys(RAMPS).map((k) => ({ value: k, text: k })), state.ramp.name);
  const minInput = $as('ramp-min', HTMLInputElement);
  const maxInput = $as('ramp-max', HTMLInputElement);
  minInput.value = String(state.ramp.min);
  maxInput.value = String(state.ramp.max);
  const onRamp = (): void => {
    const min = Number(minInput.value);
    const max = Number(maxInput.value);
    if (!Number.isFinite(min) || !Number.isFinite(max) || max <= min) {
      maxInput.setCustomValidity('max must be above min');
      maxInput.reportValidity();
      return;
    }
    maxInput.setCustomValidity('');
    state.ramp = { name: rampSelect.value, min, max };
    heightLut = buildLut(state.ramp.name);
    if (state.run) recolour(map, 'a', state.run, ['height']);
    if (compareMap && state.compare) recolour(compareMap, 'b', state.compare, ['height']);
    renderLegend();
  };
  rampSelect.addEventListener('change', onRamp);
  minInput.addEventListener('change', onRamp);
  maxInput.addEventListener('change', onRamp);

  // --- click: values from the COG and provenance
  const popup = new Popup({ closeButton: true, maxWidth: '280px' });
  let pointAbort: AbortController | null = null;
  const onClick = async (m: MlMap, e: MapMouseEvent, run: () => RunInfo | null): Promise<void> => {
    const r = run();
    if (drawer.drawing || !r) return;
    pointAbort?.abort();
    pointAbort = new AbortController();
    try {
      const p = await backend.point(r.id, e.lngLat.lng, e.lngLat.lat, pointAbort.signal);
      state.point = p;
      popup.setLngLat(e.lngLat).setDOMContent(popupContent(p)).addTo(m);
    } catch (err) {
      if ((err as Error).name !== 'AbortError') popup.setLngLat(e.lngLat).setText(`Cannot read the value: ${(err as Error).message}`).addTo(m);
    }
  };
  map.on('click', (e) => void onClick(map, e, () => state.run));

  // --- hover readout from the decoded tiles
  map.on('mousemove', (e) => {
    if (!state.run) return;
    const parts: string[] = [];
    for (const id of ['height', 'uncertainty'] as const) {
      if (!state.layers[id].visible || !layerOf(state.run, id)) continue;
      const v = valueUnder(`a:${state.run.id}:${id}`, e.lngLat.lng, e.lngLat.lat, map.getZoom());
      if (v) parts.push(`${id} ${Number.isNaN(v.value) ? 'no data' : fmtMetres(v.value)} (z${v.z})`);
    }
    const readout = $('readout');
    readout.textContent = parts.length ? parts.join(' · ') : '\u00a0';
    const hv = valueUnder(`a:${state.run.id}:height`, e.lngLat.lng, e.lngLat.lat, map.getZoom());
    readout.dataset['height'] = hv && !Number.isNaN(hv.value) ? String(hv.value) : '';
  });

  // --- AOI statistics
  const runStats = async (): Promise<void> => {
    if (!state.run || !state.aoi) return;
    try {
      state.stats = await backend.stats(state.run.id, state.aoi);
      showStats(state.stats);
    } catch (err) {
      state.stats = null;
      showStatsError(`Statistics failed: ${(err as Error).message}`);
    }
  };
  const drawButton = $as('draw-button', HTMLButtonElement);
  const finishButton = $as('finish-button', HTMLButtonElement);
  const clearButton = $as('clear-button', HTMLButtonElement);
  const drawer = new PolygonDrawer(
    map,
    (polygon: PolygonGeoJSON) => {
      state.aoi = polygon;
      clearButton.disabled = false;
      void runStats();
    },
    ({ drawing, points }) => {
      drawButton.disabled = drawing;
      finishButton.disabled = !drawing || points < 3;
    },
  );
  drawButton.addEventListener('click', () => {
    popup.remove();
    hideStats();
    drawer.start();
  });
  finishButton.addEventListener('click', () => drawer.finish());
  clearButton.addEventListener('click', () => {
    drawer.cancel();
    state.aoi = null;
    state.stats = null;
    clearButton.disabled = true;
    hideStats();
  });
  $as('upload-input', HTMLInputElement).addEventListener('change', async (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (!file) return;
    if (file.size > 1 << 20) return showStatsError(`${file.name} is larger than 1 MB`);
    try {
      const json = JSON.parse(await file.text()) as unknown;
      drawer.show(json);
      state.aoi = json;
      clearButton.disabled = false;
      await runStats();
    } catch {
      showStatsError(`${file.name} is not valid GeoJSON`);
    }
  });

  map.on('error', (e) => console.error('map error', e.error?.message ?? e));
  map.once('idle', () => {
    document.body.dataset['ready'] = '1';
  });
  if (!state.run) fail('No geo-dino runs found under the served directory.');
}

main().catch((err: unknown) => fail(`The viewer could not start: ${(err as Error).message}`));
