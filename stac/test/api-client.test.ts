/**
 * The STAC API client against a scripted loopback server: recorded Planetary Computer and Earth
 * Search answers replayed (their hrefs pointed at the loopback server), and servers that
 * misbehave on purpose (5xx, 4xx, invalid JSON, a next link that repeats, pages that repeat, a
 * server that never answers). Every failure must be a clear typed error, never a hang.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { GeoDinoError } from '@geo-dino/core';
import { openStacApi, planetaryComputerSigner, searchAll, searchPages, type StacItem } from '../src/index.js';
import { sharedData } from '../../test/support/shared-data.js';
import { sendJson, startServer, type TestServer, expectError } from './helpers.js';

const FAST = { retries: 2, backoffMs: 5, timeoutMs: 5000 };
let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});
async function serve(handler: Parameters<typeof startServer>[0]): Promise<TestServer> {
  const s = await startServer(handler);
  servers.push(s);
  return s;
}

/** A recorded document with its origin replaced by the loopback server's. */
function recorded(file: string, origin: string, base: string): Record<string, unknown> {
  return JSON.parse(readFileSync(sharedData('stac', file), 'utf8').split(origin).join(base)) as Record<string, unknown>;
}


const PC = 'https://planetarycomputer.microsoft.com';

describe('recorded Planetary Computer answers', () => {
  it('discovers conformance and pages through POST next links with their body', async () => {
    const page1Raw = JSON.parse(readFileSync(sharedData('stac', 'planetary-computer-naip-search-page-1.json'), 'utf8')) as { features: StacItem[]; links: { rel: string; body?: Record<string, unknown> }[] };
    const page2Raw = JSON.parse(readFileSync(sharedData('stac', 'planetary-computer-naip-search-page-2.json'), 'utf8')) as { features: StacItem[] };
    const token1 = page1Raw.links.find((l) => l.rel === 'next')!.body!['token'];
    const s = await serve((req, res, base) => {
      const path = new URL(req.url, base).pathname;
      if (req.method === 'GET' && path === '/api/stac/v1/') return sendJson(res, 200, recorded('planetary-computer-landing-page.json', PC, base));
      if (req.method === 'POST' && path === '/api/stac/v1/search') {
        const body = JSON.parse(req.body) as Record<string, unknown>;
        if (body['token'] === undefined) return sendJson(res, 200, recorded('planetary-computer-naip-search-page-1.json', PC, base));
        if (body['token'] === token1) {
          const p2 = recorded('planetary-computer-naip-search-page-2.json', PC, base) as { links: { rel: string }[] };
          p2.links = p2.links.filter((l) => l.rel !== 'next');
          return sendJson(res, 200, p2);
        }
      }
      sendJson(res, 404, { code: 'NotFound', description: 'Not Found' });
    });
    const api = await openStacApi(`${s.url}/api/stac/v1/`, FAST);
    expect(api.legacy).toBe(false);
    expect(api.classes.has('filter') && api.classes.has('cql2-json') && api.classes.has('sort')).toBe(true);
    expect(api.search.POST).toBe(`${s.url}/api/stac/v1/search`);
    const pages: number[] = [];
    const items = await searchAll(api, { collections: ['naip'], bbox: [-73.21, 43.99, -73.12, 44.05], limit: 10 }, { ...FAST, onPage: (p) => pages.push(p.items.length) });
    expect(items.map((i) => i.id)).toEqual([...page1Raw.features, ...page2Raw.features].map((f) => f.id));
    expect(pages).toEqual([10, 10]);
    const posts = s.requests.filter((r) => r.method === 'POST');
    expect(JSON.parse(posts[0]!.body)).toEqual({ bbox: [-73.21, 43.99, -73.12, 44.05], collections: ['naip'], limit: 10 });
    expect(JSON.parse(posts[1]!.body)).toEqual(page1Raw.links.find((l) => l.rel === 'next')!.body);
    expect(posts[0]!.headers['content-type']).toMatch(/application\/json/);
  });

  it('maxItems stops paging as soon as it is reached', async () => {
    const s = await serve((req, res, base) => {
      if (req.method === 'GET') return sendJson(res, 200, recorded('planetary-computer-landing-page.json', PC, base));
      sendJson(res, 200, recorded('planetary-computer-naip-search-page-1.json', PC, base));
    });
    const api = await openStacApi(`${s.url}/api/stac/v1/`, FAST);
    const items = await searchAll(api, { limit: 10 }, { ...FAST, maxItems: 7 });
    expect(items).toHaveLength(7);
    expect(s.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });
});

describe('legacy and GET-only servers', () => {
  it('a legacy landing page without conformsTo (Earth Search v0) still searches, and refuses filters', async () => {
    const ES0 = 'https://earth-search.aws.element84.com';
    const s = await serve((req, res, base) => {
      const path = new URL(req.url, base).pathname;
      if (path === '/v0/') return sendJson(res, 200, recorded('earth-search-v0-landing-page-legacy-no-conformsTo.json', ES0, base));
      if (path === '/v0/conformance') return sendJson(res, 404, JSON.parse(readFileSync(sharedData('stac', 'earth-search-v1-error-collection-not-found.json'), 'utf8')));
      if (path === '/v0/search') return sendJson(res, 200, { type: 'FeatureCollection', features: [], links: [] });
      sendJson(res, 404, {});
    });
    const api = await openStacApi(`${s.url}/v0/`, FAST);
    expect(api.legacy).toBe(true);
    expect(api.conformsTo).toEqual([]);
    expect(api.classes.has('item-search')).toBe(true);
    expect(api.search).toEqual({ GET: `${s.url}/v0/search`, POST: `${s.url}/v0/search` });
    expect(await searchAll(api, { limit: 5 }, FAST)).toEqual([]);
    await expectError(searchAll(api, { filter: { op: '<=', args: [{ property: 'eo:cloud_cover' }, 10] } }, FAST), 'E_ARGUMENT', /does not declare CQL2-JSON filter support/);
    await expectError(searchAll(api, { sortby: '-properties.datetime' }, FAST), 'E_ARGUMENT', /does not declare sortby support/);
  });

  it('GET search encodes every parameter the STAC API way and follows GET next links', async () => {
    const s = await serve((req, res, base) => {
      const u = new URL(req.url, base);
      if (u.pathname === '/') {
        return sendJson(res, 200, {
          type: 'Catalog', id: 'x', description: 'x', stac_version: '1.0.0',
          conformsTo: ['https://api.stacspec.org/v1.0.0/core', 'https://api.stacspec.org/v1.0.0/item-search', 'https://api.stacspec.org/v1.0.0/item-search#sort'],
          links: [{ rel: 'search', href: `${base}/search`, method: 'GET' }],
        });
      }
      const page = Number(u.searchParams.get('page') ?? '1');
      const feature = (id: string): Record<string, unknown> => ({ type: 'Feature', stac_version: '1.0.0', id, geometry: null, properties: { datetime: '2020-01-01T00:00:00Z' }, links: [], assets: {} });
      return sendJson(res, 200, {
        type: 'FeatureCollection',
        features: [feature(`p${page}`)],
        links: page < 3 ? [{ rel: 'next', href: `${base}/search?page=${page + 1}` }] : [],
      });
    });
    const api = await openStacApi(s.url + '/', FAST);
    expect(api.search.POST).toBeUndefined();
    const items = await searchAll(
      api,
      { bbox: [1, 2, 3, 4], datetime: '2020-06', collections: ['a', 'b'], ids: ['x'], limit: 5, sortby: '-properties.datetime' },
      FAST,
    );
    expect(items.map((i) => i.id)).toEqual(['p1', 'p2', 'p3']);
    const first = new URL(s.requests[1]!.url, s.url).searchParams;
    expect(first.get('bbox')).toBe('1,2,3,4');
    expect(first.get('datetime')).toBe('2020-06-01T00:00:00.000Z/2020-06-30T23:59:59.999Z');
    expect(first.get('collections')).toBe('a,b');
    expect(first.get('ids')).toBe('x');
    expect(first.get('limit')).toBe('5');
    expect(first.get('sortby')).toBe('-properties.datetime');
    const g = await searchAll(api, { intersects: { type: 'Point', coordinates: [1, 2] } }, FAST);
    expect(g).toHaveLength(3);
    const q = new URL(s.requests.at(-3)!.url, s.url).searchParams;
    expect(JSON.parse(q.get('intersects')!)).toEqual({ type: 'Point', coordinates: [1, 2] });
  });
});

describe('servers that misbehave', () => {
  function landing(base: string): Record<string, unknown> {
    return {
      type: 'Catalog', id: 'x', description: 'x', stac_version: '1.0.0',
      conformsTo: ['https://api.stacspec.org/v1.0.0/core', 'https://api.stacspec.org/v1.0.0/item-search'],
      links: [{ rel: 'search', href: `${base}/search`, method: 'POST' }],
    };
  }
  const item = (id: string): Record<string, unknown> => ({ type: 'Feature', stac_version: '1.0.0', id, geometry: null, properties: { datetime: '2020-01-01T00:00:00Z' }, links: [], assets: {} });

  it('a next link that repeats the same request is a clear error, not an endless loop', async () => {
    let n = 0;
    const s = await serve((req, res, base) => {
      if (req.method === 'GET') return sendJson(res, 200, landing(base));
      n++;
      sendJson(res, 200, { type: 'FeatureCollection', features: [item(`i${n}`)], links: [{ rel: 'next', href: `${base}/search`, method: 'POST', body: { token: 'same' } }] });
    });
    const api = await openStacApi(s.url + '/', FAST);
    await expectError(searchAll(api, {}, FAST), 'E_BAD_STAC', /"next" link of page 2 repeats the request of page 2 \(a pagination loop/);
    expect(n).toBe(2);
  });

  it('pages that keep returning the same items under new tokens are a loop too', async () => {
    let n = 0;
    const s = await serve((req, res, base) => {
      if (req.method === 'GET') return sendJson(res, 200, landing(base));
      n++;
      sendJson(res, 200, { type: 'FeatureCollection', features: [item('a'), item('b')], links: [{ rel: 'next', href: `${base}/search`, method: 'POST', body: { token: `t${n}` } }] });
    });
    const api = await openStacApi(s.url + '/', FAST);
    await expectError(searchAll(api, {}, FAST), 'E_BAD_STAC', /only repeat items already returned/);
    expect(n).toBe(3);
  });

  it('5xx answers are retried with backoff; a page that arrives after two 503s is used', async () => {
    let posts = 0;
    const s = await serve((req, res, base) => {
      if (req.method === 'GET') return sendJson(res, 200, landing(base));
      posts++;
      if (posts <= 2) return sendJson(res, 503, 'busy');
      sendJson(res, 200, { type: 'FeatureCollection', features: [item('ok')], links: [] });
    });
    const api = await openStacApi(s.url + '/', FAST);
    expect((await searchAll(api, {}, FAST)).map((i) => i.id)).toEqual(['ok']);
    expect(posts).toBe(3);
  });

  it('a server that keeps failing ends in E_NETWORK naming the URL and the status', async () => {
    const s = await serve((req, res, base) => {
      if (req.method === 'GET') return sendJson(res, 200, landing(base));
      sendJson(res, 500, { code: 'Internal', description: 'boom' });
    });
    const api = await openStacApi(s.url + '/', FAST);
    await expectError(searchAll(api, {}, FAST), 'E_NETWORK', new RegExp(`${s.url}/search: failed after 3 attempts: HTTP 500`));
  });

  it('a 4xx answer is reported with its status and the server description, without retries', async () => {
    let posts = 0;
    const s = await serve((req, res, base) => {
      if (req.method === 'GET') return sendJson(res, 200, landing(base));
      posts++;
      sendJson(res, 404, JSON.parse(readFileSync(sharedData('stac', 'planetary-computer-error-item-not-found.json'), 'utf8')));
    });
    const api = await openStacApi(s.url + '/', FAST);
    await expectError(searchAll(api, {}, FAST), 'E_HTTP_STATUS', /HTTP 404 .*Item for-sure-not-a-real-id in Collection aster-l1t does not exist/);
    expect(posts).toBe(1);
  });

  it('invalid JSON, and JSON that is not a FeatureCollection, are E_BAD_JSON / E_BAD_STAC naming the URL', async () => {
    const s = await serve((req, res, base) => {
      if (req.method === 'GET') return sendJson(res, 200, landing(base));
      const body = JSON.parse(req.body) as { limit?: number };
      if (body.limit === 1) return sendJson(res, 200, '{"type": "FeatureCollection", "features": [');
      sendJson(res, 200, { type: 'Collection', id: 'c' });
    });
    const api = await openStacApi(s.url + '/', FAST);
    await expectError(searchAll(api, { limit: 1 }, FAST), 'E_BAD_JSON', new RegExp(`${s.url}/search: invalid JSON`));
    await expectError(searchAll(api, { limit: 2 }, FAST), 'E_BAD_STAC', /a search answer must be a FeatureCollection \(got "type": "Collection"\)/);
  });

  it('a landing page that is not STAC, or has no search, is refused clearly', async () => {
    const s = await serve((req, res, base) => {
      if (req.url === '/html') {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        return res.end('<html></html>');
      }
      if (req.url === '/nosearch') return sendJson(res, 200, { type: 'Catalog', id: 'c', description: 'd', stac_version: '1.0.0', links: [{ rel: 'child', href: `${base}/c.json` }] });
      sendJson(res, 200, [1, 2]);
    });
    await expectError(openStacApi(`${s.url}/html`, FAST), 'E_BAD_JSON', /invalid JSON/);
    await expectError(openStacApi(`${s.url}/array`, FAST), 'E_BAD_STAC', /not a STAC API landing page \(expected a Catalog with links, got an array\)/);
    await expectError(openStacApi(`${s.url}/nosearch`, FAST), 'E_BAD_STAC', /has no item search .* use it as a static catalog with --catalog/);
  });

  it('a server that never answers ends in E_NETWORK after the deadline, never a hang', async () => {
    const s = await serve(() => {
      // never respond
    });
    await expectError(openStacApi(s.url + '/', { retries: 1, backoffMs: 5, timeoutMs: 300 }), 'E_NETWORK', /no complete answer within 300 ms/);
  });

  it('an abort signal stops a search with E_CANCELLED', async () => {
    const s = await serve((req, res, base) => {
      if (req.method === 'GET') return sendJson(res, 200, landing(base));
      // hold the search
    });
    const api = await openStacApi(s.url + '/', FAST);
    const ctl = new AbortController();
    const p = searchAll(api, {}, { ...FAST, signal: ctl.signal });
    setTimeout(() => ctl.abort(), 100);
    await expectError(p, 'E_CANCELLED', /interrupted/);
  });

  it('the page guard stops at maxPages', async () => {
    let n = 0;
    const s = await serve((req, res, base) => {
      if (req.method === 'GET') return sendJson(res, 200, landing(base));
      n++;
      sendJson(res, 200, { type: 'FeatureCollection', features: [item(`i${n}`)], links: [{ rel: 'next', href: `${base}/search`, method: 'POST', body: { token: `t${n}` } }] });
    });
    const api = await openStacApi(s.url + '/', FAST);
    const pages: number[] = [];
    await expectError(
      (async () => {
        for await (const p of searchPages(api, {}, { ...FAST, maxPages: 4 })) pages.push(p.number);
      })(),
      'E_LIMIT',
      /stopped after 4 pages/,
    );
    expect(pages).toEqual([1, 2, 3, 4]);
  });
});

describe('asset signing', () => {
  it('Planetary Computer signer: token per account/container, cached until near expiry', async () => {
    let issued = 0;
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const s = await serve((req, res) => {
      issued++;
      const [, , account, container] = new URL(req.url, 'http://x').pathname.split('/').slice(3);
      void account;
      sendJson(res, 200, { 'msft:expiry': new Date(clock + 60 * 60_000).toISOString(), token: `sv=2024&sr=c&sig=${container}-${issued}` });
    });
    const sign = planetaryComputerSigner({ tokenEndpoint: `${s.url}/api/sas/v1/token`, now: () => clock, retries: 0 });
    const item = { id: 'i' } as StacItem;
    const href = 'https://naipeuwest.blob.core.windows.net/naip/v002/vt/2023/x.tif';
    expect(await sign(href, { item, assetKey: 'image' })).toBe(`${href}?sv=2024&sr=c&sig=naip-1`);
    expect(await sign(href + '?a=1', { item, assetKey: 'image' })).toBe(`${href}?a=1&sv=2024&sr=c&sig=naip-1`);
    expect(issued).toBe(1);
    expect(s.requests[0]!.url).toBe('/api/sas/v1/token/naipeuwest/naip');
    // Other hosts and already signed URLs are left alone.
    expect(await sign('https://example.com/a.tif', { item, assetKey: 'x' })).toBe('https://example.com/a.tif');
    expect(await sign(`${href}?sig=abc`, { item, assetKey: 'x' })).toBe(`${href}?sig=abc`);
    // 56 minutes later the token is within the 5-minute margin: a new one is fetched.
    clock += 56 * 60_000;
    expect(await sign(href, { item, assetKey: 'image' })).toBe(`${href}?sv=2024&sr=c&sig=naip-2`);
    expect(issued).toBe(2);
  });
});
