/**
 * Static catalogs: walk `catalog.json` / `collection.json` / item links, on disk or over HTTP.
 *
 * - Relative hrefs resolve against the document that holds them (see `href.ts`).
 * - Every document is read once (a visited set keyed by resolved location), so catalogs whose
 *   links form a cycle, or that link one child twice, terminate.
 * - Depth and document-count caps bound hostile or runaway catalogs.
 * - ItemCollection documents (an `items` link of an OGC API collection, or a FeatureCollection
 *   file) are read too, following their GET `next` links.
 * - A broken child (missing, invalid JSON, not STAC) is reported through `onProblem` and skipped;
 *   with `strict` it fails the walk. A broken root always fails.
 */
import { GeoDinoError, silentLogger, silentProgress, throwIfAborted, type Logger, type Progress } from '@geo-dino/core';
import { displayLocation, readJsonDocument, resolveHref, toLocation, type ReadJsonOptions } from './href.js';
import { parseCatalog, parseCollection, parseItem, parseItemCollection, stacKindOf } from './parse.js';
import type { LocatedItem, StacCatalog, StacCollection, StacLink } from './types.js';

export interface WalkProblem {
  location: string;
  message: string;
  code: string;
}

export interface WalkOptions {
  log?: Logger;
  progress?: Progress;
  signal?: AbortSignal;
  /** Request headers for HTTP catalogs. */
  headers?: Record<string, string>;
  /** Deepest link level followed (root = 0; default 64). */
  maxDepth?: number;
  /** Most documents read in one walk (default 200,000). */
  maxDocuments?: number;
  /** Documents read at once over HTTP (default 8). */
  concurrency?: number;
  /** Fail on the first broken child instead of skipping it. */
  strict?: boolean;
  /** Return false to skip a catalog/collection's children (e.g. its extent misses the AOI). */
  prune?: (node: StacCatalog | StacCollection, location: string) => boolean;
  onProblem?: (p: WalkProblem) => void;
  /** Per-request settings for HTTP (retries, timeout). */
  fetch?: ReadJsonOptions['fetch'];
}

interface Pending {
  location: string;
  depth: number;
  /** The rel of the link that led here (for messages). */
  via: string;
  from?: string;
}

function normalise(location: string): string {
  if (/^https?:\/\//i.test(location)) {
    const u = new URL(location);
    u.hash = '';
    return u.toString();
  }
  return location;
}

/** Walk a static catalog (or collection, item, or ItemCollection file) and yield its items. */
export async function* walkCatalog(root: string, options: WalkOptions = {}): AsyncGenerator<LocatedItem> {
  const log = options.log ?? silentLogger();
  const progress = options.progress ?? silentProgress;
  const maxDepth = options.maxDepth ?? 64;
  const maxDocuments = options.maxDocuments ?? 200_000;
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const rootLocation = toLocation(root);
  const visited = new Set<string>([normalise(rootLocation)]);
  let queue: Pending[] = [{ location: rootLocation, depth: 0, via: 'root' }];
  let documents = 0;
  const task = progress.start('reading STAC catalog', { unit: 'documents' });
  const readOpts: ReadJsonOptions = {
    log,
    ...(options.signal ? { signal: options.signal } : {}),
    fetch: { ...(options.fetch ?? {}), ...(options.headers ? { headers: options.headers } : {}) },
  };

  const problem = (p: Pending, err: unknown): void => {
    const e = err instanceof GeoDinoError ? err : new GeoDinoError('E_BAD_STAC', String(err));
    if (p.depth === 0 || options.strict || e.code === 'E_CANCELLED') throw e;
    const message = `${e.message}${p.from ? ` (linked as "${p.via}" from ${displayLocation(p.from)})` : ''}`;
    log.warn({ location: displayLocation(p.location), code: e.code }, `skipping a broken catalog entry: ${message}`);
    options.onProblem?.({ location: p.location, message, code: e.code });
  };

  try {
    while (queue.length > 0) {
      throwIfAborted(options.signal);
      const batch = queue.slice(0, concurrency);
      queue = queue.slice(batch.length);
      if (documents + batch.length > maxDocuments) {
        throw new GeoDinoError('E_LIMIT', `${displayLocation(rootLocation)}: the catalog has more than ${maxDocuments} documents; stopped (raise maxDocuments)`, {
          details: { root: rootLocation, maxDocuments },
        });
      }
      const docs = await Promise.all(
        batch.map(async (p) => {
          try {
            return { p, doc: await readJsonDocument(p.location, readOpts) };
          } catch (err) {
            return { p, err };
          }
        }),
      );
      const children: Pending[] = [];
      for (const r of docs) {
        documents++;
        task.tick();
        if ('err' in r) {
          problem(r.p, r.err);
          continue;
        }
        const { p, doc } = r;
        const follow = (links: readonly StacLink[], rels: readonly string[]): void => {
          for (const l of links) {
            if (!rels.includes(l.rel)) continue;
            if (p.depth + 1 > maxDepth) {
              problem({ ...p, depth: p.depth + 1 }, new GeoDinoError('E_LIMIT', `${displayLocation(p.location)}: links nest deeper than ${maxDepth} levels; not followed`));
              continue;
            }
            const location = resolveHref(p.location, l.href);
            const key = normalise(location);
            if (visited.has(key)) {
              log.debug({ location: displayLocation(location), from: displayLocation(p.location) }, 'already read; link not followed again');
              continue;
            }
            visited.add(key);
            children.push({ location, depth: p.depth + 1, via: l.rel, from: p.location });
          }
        };
        try {
          const kind = stacKindOf(doc);
          if (kind === 'item') {
            yield { item: parseItem(doc, p.location), source: p.location };
          } else if (kind === 'item-collection') {
            const fc = parseItemCollection(doc, p.location);
            for (const item of fc.features) yield { item, source: p.location, inCollection: true };
            follow(
              (fc.links ?? []).filter((l) => (l.method ?? 'GET').toUpperCase() === 'GET'),
              ['next'],
            );
          } else if (kind === 'collection' || kind === 'catalog') {
            const node = kind === 'collection' ? parseCollection(doc, p.location) : parseCatalog(doc, p.location);
            if (options.prune && !options.prune(node, p.location)) {
              log.debug({ location: displayLocation(p.location) }, 'outside the search; children skipped');
              continue;
            }
            follow(node.links, ['child', 'item', 'items']);
          } else {
            throw new GeoDinoError('E_BAD_STAC', `${displayLocation(p.location)}: not a STAC Catalog, Collection, Item or ItemCollection`, {
              details: { location: p.location },
            });
          }
        } catch (err) {
          problem(p, err);
        }
      }
      // Depth-first-ish: children go to the front so items stream early in big catalogs.
      queue = [...children, ...queue];
    }
  } finally {
    task.finish();
  }
}
