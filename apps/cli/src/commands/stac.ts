/**
 * `geo-dino stac search`: which scenes of a STAC API or static catalog cover an AOI, and how much
 * of it. A thin layer over @geo-dino/stac's `searchScenes`.
 */
import { resolve } from 'node:path';
import { GeoDinoError, cliValues, flagName, parseWith, readJsonFile, z } from '@geo-dino/core';
import { parseAoi, type Aoi } from '@geo-dino/geometry';
import {
  parseDatetimeRange,
  parseSortBy,
  sceneItemCollection,
  planetaryComputerSigner,
  searchScenes,
  summariseRejections,
  type AssetSigner,
  type SceneSearchResult,
} from '@geo-dino/stac';
import type { CommandModule } from '../app.js';
import { parseHeaders, table } from '../context.js';
import { BBOX_HELP, aoiFromOptions, bboxField } from '../aoi-option.js';

const optionsSchema = z
  .object({
    api: z.string().min(1).optional(),
    catalog: z.string().min(1).optional(),
    aoi: z.string().min(1).optional(),
    bbox: bboxField,
    intersects: z.string().min(1).optional(),
    ids: cliValues.list.optional(),
    sortby: z.string().min(1).optional(),
    query: z.string().min(1).optional(),
    filter: z.string().min(1).optional(),
    format: z.enum(['report', 'itemcollection'], { error: 'must be report or itemcollection' }).default('report'),
    collections: cliValues.list.optional(),
    datetime: z.string().optional(),
    newerThan: z.string().optional(),
    maxCloud: z.coerce.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100').optional(),
    maxGsd: cliValues.positiveNumber.optional(),
    limit: cliValues.positiveInt.max(10_000, 'must be at most 10000').optional(),
    maxItems: cliValues.positiveInt.optional(),
    sign: z.enum(['auto', 'none', 'planetary-computer'], { error: 'must be auto, none or planetary-computer' }).default('auto'),
    header: z.array(z.string()).default([]),
  })
  .refine((o) => (o.api ? 1 : 0) + (o.catalog ? 1 : 0) === 1, { message: 'give exactly one of --api <url> or --catalog <path|url>', path: ['api'] })
  .refine((o) => (o.aoi ? 1 : 0) + (o.bbox ? 1 : 0) + (o.intersects ? 1 : 0) === 1, {
    message: 'give exactly one of --aoi <file>, --bbox <minlon,minlat,maxlon,maxlat> or --intersects <geojson>',
    path: ['aoi'],
  });

type Options = z.output<typeof optionsSchema>;

export interface StacSearchReport {
  source: SceneSearchResult['source'];
  aoi: { source: string; areaKm2: number };
  criteria: { collections?: string[]; datetime?: string; newerThan?: string; maxCloud?: number; maxGsd?: number };
  found: boolean;
  scenes: {
    id: string;
    collection?: string;
    datetime: string | null;
    cloudCover?: number;
    gsd?: number;
    asset: string;
    href: string;
    bands: { red: number; green: number; blue: number };
    coverageKm2: number;
    coveragePercent: number;
    item: string;
  }[];
  coverage: SceneSearchResult['coverage'];
  considered: number;
  eligible: number;
  redundant: number;
  rejected: { reason: string; count: number }[];
  truncated: boolean;
  server?: SceneSearchResult['server'];
  problems: SceneSearchResult['problems'];
}

/** A JSON option: inline JSON (starting with `{`) or a file holding it (core's readJsonFile). */
async function jsonOption(value: string, flag: string, cwd: string): Promise<Record<string, unknown>> {
  const text = value.trim();
  let json: unknown;
  if (text.startsWith('{')) {
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new GeoDinoError('E_ARGUMENT', `${flag}: not valid JSON: ${(err as Error).message}`, { details: { field: flag } });
    }
  } else json = await readJsonFile(resolve(cwd, text));
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new GeoDinoError('E_ARGUMENT', `${flag}: must be a JSON object`, { details: { field: flag } });
  return json as Record<string, unknown>;
}

/** The area of `--aoi`, `--bbox` or `--intersects` (a GeoJSON geometry, Feature or FeatureCollection, inline or a file). */
async function searchArea(o: Options, cwd: string): Promise<Aoi> {
  if (o.intersects) return parseAoi(await jsonOption(o.intersects, '--intersects', cwd), '--intersects');
  return (await aoiFromOptions(o, cwd))!;
}

function fmt(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '?';
}

function human(r: StacSearchReport): string {
  const c = r.coverage;
  const head = `AOI ${r.aoi.source}: ${fmt(r.aoi.areaKm2, 2)} km²; source ${r.source.location} (${r.source.kind})`;
  if (!r.found) {
    const why = r.rejected.slice(0, 5).map((x) => `  ${x.count} × ${x.reason}`);
    return [
      head,
      `No imagery found: ${r.considered} item${r.considered === 1 ? '' : 's'} considered, none usable for this AOI.`,
      ...(why.length ? ['Refused:', ...why] : []),
      ...(r.problems.length ? [`${r.problems.length} broken catalog entr${r.problems.length === 1 ? 'y' : 'ies'} skipped (see the log)`] : []),
    ].join('\n');
  }
  const rows = r.scenes.map((s, i) => [
    String(i + 1),
    s.id,
    s.collection ?? '',
    s.datetime ?? '',
    s.cloudCover === undefined ? '' : fmt(s.cloudCover, 1),
    s.gsd === undefined ? '' : fmt(s.gsd, 2),
    `${fmt(s.coveragePercent, 2)} %`,
    s.asset,
    s.href,
  ]);
  return [
    head,
    `${r.scenes.length} scene${r.scenes.length === 1 ? '' : 's'} cover ${fmt(c.coveredPercent, 2)} % (${fmt(c.coveredKm2, 2)} km²); not covered: ${fmt(c.uncoveredPercent, 2)} % (${fmt(c.uncoveredKm2, 2)} km²)`,
    table(['#', 'item', 'collection', 'datetime', 'cloud %', 'gsd m', 'covers', 'asset', 'href'], rows),
    `${r.considered} items considered, ${r.eligible} usable, ${r.redundant} not needed${r.truncated ? ' (stopped at --max-items)' : ''}`,
  ].join('\n');
}

export const stacCommand: CommandModule = {
  register(program, app) {
    const stac = program.command('stac').description('STAC catalogs and APIs: find imagery for an AOI');
    stac
      .command('search')
      .description('choose the scenes of a STAC API or static catalog that cover an AOI (most recent first) and report the share covered')
      .option('--api <url>', 'STAC API landing page URL')
      .option('--catalog <path|url>', 'static catalog.json / collection.json / item / ItemCollection, local or http(s)')
      .option('--aoi <file>', 'area of interest (GeoJSON)')
      .option('--bbox <minlon,minlat,maxlon,maxlat>', BBOX_HELP)
      .option('--intersects <geojson>', 'area as a GeoJSON geometry (inline JSON or a file), as STAC API searches take it')
      .option('--ids <ids>', 'only these item ids (comma-separated)')
      .option('--sortby <fields>', 'server-side order, e.g. -properties.datetime,+id (needs the API\'s sort conformance)')
      .option('--query <json>', 'query-extension object, inline or a file (needs the API\'s query conformance)')
      .option('--filter <cql2-json>', 'CQL2-JSON filter, inline or a file (needs the API\'s filter + cql2-json conformance)')
      .option('--format <report|itemcollection>', 'report: geo-dino\'s coverage report (table, or JSON with --json); itemcollection: the chosen items as a STAC ItemCollection on stdout', 'report')
      .option('--collections <ids>', 'only these collections (comma-separated)')
      .option('--datetime <range>', 'acquisition window: 2023, 2023-06, 2023-01-01/2023-06-30, 2023-06/.., RFC 3339')
      .option('--newer-than <datetime>', 'only scenes acquired strictly after this instant')
      .option('--max-cloud <percent>', 'maximum eo:cloud_cover (items without it are refused)')
      .option('--max-gsd <metres>', 'coarsest ground sample distance accepted')
      .option('--limit <n>', 'page size asked of the API (default 100)')
      .option('--max-items <n>', 'read at most this many candidate items (default 5000)')
      .option('--sign <mode>', 'sign asset URLs: auto (Planetary Computer APIs), none, planetary-computer', 'auto')
      .option('--header <name:value>', 'HTTP header for the API or catalog (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
      .action(async (raw: Record<string, unknown>) => {
        const ctx = app.context();
        const o: Options = parseWith(optionsSchema, raw, { fieldName: flagName });
        if (o.datetime) parseDatetimeRange(o.datetime, '--datetime');
        if (o.newerThan) parseDatetimeRange(o.newerThan, '--newer-than');
        const headers = parseHeaders(o.header);
        const aoi = await searchArea(o, ctx.io.cwd);
        const query = o.query ? await jsonOption(o.query, '--query', ctx.io.cwd) : undefined;
        const filter = o.filter ? await jsonOption(o.filter, '--filter', ctx.io.cwd) : undefined;
        const location = o.api ?? o.catalog!;
        let signer: AssetSigner | undefined;
        const pcHost = /planetarycomputer\.microsoft\.com/i.test(location);
        if (o.sign === 'planetary-computer' || (o.sign === 'auto' && pcHost)) {
          const key = ctx.io.env['PC_SDK_SUBSCRIPTION_KEY'];
          signer = planetaryComputerSigner({ log: ctx.log, ...(key ? { subscriptionKey: key } : {}) });
        }
        const result = await searchScenes(
          o.api ? { api: o.api } : { catalog: o.catalog! },
          aoi,
          {
            ...(o.collections?.length ? { collections: o.collections } : {}),
            ...(o.datetime ? { datetime: o.datetime } : {}),
            ...(o.newerThan ? { newerThan: o.newerThan } : {}),
            ...(o.maxCloud !== undefined ? { maxCloudCover: o.maxCloud } : {}),
            ...(o.maxGsd !== undefined ? { maxGsd: o.maxGsd } : {}),
          },
          {
            log: ctx.log,
            progress: ctx.progress,
            signal: ctx.signal,
            cwd: ctx.io.cwd,
            ...(Object.keys(headers).length ? { headers } : {}),
            ...(o.limit ? { pageSize: o.limit } : {}),
            ...(o.maxItems ? { maxItems: o.maxItems } : {}),
            ...(signer ? { signer } : {}),
            search: {
              ...(o.ids?.length ? { ids: o.ids } : {}),
              ...(o.sortby ? { sortby: parseSortBy(o.sortby) } : {}),
              ...(query ? { query } : {}),
              ...(filter ? { filter } : {}),
            },
          },
        );
        const aoiSource = o.aoi ?? (o.bbox ? `--bbox ${o.bbox.join(',')}` : '--intersects');
        if (o.format === 'itemcollection') {
          if (!result.scenes.length) ctx.log.warn({ aoi: aoiSource, source: location, considered: result.considered }, 'no imagery found for the AOI');
          ctx.io.stdout.write(JSON.stringify(sceneItemCollection(result.scenes)) + '\n');
          return;
        }
        const report: StacSearchReport = {
          source: result.source,
          aoi: { source: aoiSource, areaKm2: aoi.areaM2 / 1e6 },
          criteria: {
            ...(o.collections?.length ? { collections: o.collections } : {}),
            ...(o.datetime ? { datetime: o.datetime } : {}),
            ...(o.newerThan ? { newerThan: o.newerThan } : {}),
            ...(o.maxCloud !== undefined ? { maxCloud: o.maxCloud } : {}),
            ...(o.maxGsd !== undefined ? { maxGsd: o.maxGsd } : {}),
          },
          found: result.scenes.length > 0,
          scenes: result.scenes.map((s) => ({
            id: s.itemId,
            ...(s.collection ? { collection: s.collection } : {}),
            datetime: s.datetime,
            ...(s.cloudCover !== undefined ? { cloudCover: s.cloudCover } : {}),
            ...(s.gsd !== undefined ? { gsd: s.gsd } : {}),
            asset: s.asset.key,
            href: s.href,
            bands: s.asset.bands,
            coverageKm2: s.contributionKm2,
            coveragePercent: s.contributionPercent,
            item: s.itemHref,
          })),
          coverage: result.coverage,
          considered: result.considered,
          eligible: result.eligible,
          redundant: result.redundant,
          rejected: summariseRejections(result.rejected),
          truncated: result.truncated,
          ...(result.server ? { server: result.server } : {}),
          problems: result.problems,
        };
        if (!report.found) ctx.log.warn({ aoi: aoiSource, source: location, considered: result.considered }, 'no imagery found for the AOI');
        ctx.result(report, () => human(report));
      });
  },
};
