/**
 * `geo-dino serve <dir>`: the viewer, the PMTiles layers and the JSON API for the runs under a
 * directory, until Ctrl-C. A thin layer over @geo-dino/server.
 */
import { resolve } from 'node:path';
import { cliValues, flagName, parseWith, z } from '@geo-dino/core';
import { startServer } from '@geo-dino/server';
import { isS3Url } from '@geo-dino/storage';
import type { CommandModule } from '../app.js';

const optionsSchema = z.object({
  port: z.coerce.number().int('must be an integer').min(0, 'must be 0-65535').max(65535, 'must be 0-65535').default(8080),
  host: z.string().min(1).default('127.0.0.1'),
  basemap: z.string().url('must be the http(s) URL of a MapLibre style').optional(),
  maxBody: cliValues.positiveInt.optional(),
  cors: z.boolean().default(false),
  allowHost: z.array(z.string().min(1)).default([]),
});

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export const serveCommand: CommandModule = {
  register(program, app) {
    program
      .command('serve')
      .description('serve the map viewer, PMTiles layers and a JSON API (values, statistics) for the runs under a directory')
      .argument('<dir>', 'a run directory, a directory of runs, or s3://bucket/prefix of published runs (objects proxied by this server)')
      .option('-p, --port <n>', 'port (0 = any free port)', '8080')
      .option('--host <address>', 'address to listen on; anything but loopback exposes every run under <dir>', '127.0.0.1')
      .option('--basemap <style-url>', 'a MapLibre style URL to show under the layers (off by default: works offline)')
      .option('--max-body <bytes>', 'largest request body accepted (default 1048576)')
      .option('--cors', 'let web maps on other origins read /tiles/ (Access-Control-Allow-Origin: *)')
      .option('--allow-host <name>', 'a host name requests may address the server by, besides IP addresses and localhost (repeatable; DNS-rebinding guard)', collect)
      .action(async (dir: string, raw: Record<string, unknown>) => {
        const ctx = app.context();
        const opts = parseWith(optionsSchema, raw, { fieldName: flagName });
        const root = isS3Url(dir) ? dir : resolve(ctx.io.cwd, dir);
        const server = await startServer({
          root,
          host: opts.host,
          port: opts.port,
          basemap: opts.basemap ?? null,
          ...(opts.maxBody ? { maxBodyBytes: opts.maxBody } : {}),
          ...(opts.cors ? { corsTiles: true } : {}),
          allowHosts: opts.allowHost,
          log: ctx.log,
        });
        ctx.result({ url: server.url, root, loopback: server.loopback }, () => `geo-dino serving ${dir} at ${server.url}  (Ctrl-C to stop)`);
        await new Promise<void>((done) => {
          if (ctx.signal.aborted) return done();
          ctx.signal.addEventListener('abort', () => done(), { once: true });
        });
        await server.close();
      });
  },
};
