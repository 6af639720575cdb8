/**
 * `geo-dino publish <run-dir>... --out <site>`: a static site of runs (viewer, web layers, COGs,
 * runs.json and a STAC catalog) for any static host or bucket. A thin layer over @geo-dino/server.
 */
import { resolve } from 'node:path';
import { flagName, parseWith, z } from '@geo-dino/core';
import { publishSite } from '@geo-dino/server';
import type { CommandModule } from '../app.js';

const optionsSchema = z.object({
  out: z.string().min(1, 'give the site directory'),
  link: z.boolean().default(false),
  basemap: z.string().url('must be the http(s) URL of a MapLibre style').optional(),
});

export const publishCommand: CommandModule = {
  register(program, app) {
    program
      .command('publish')
      .description('write a static site of runs (viewer, layers, COGs, runs.json, STAC catalog) for any static host or bucket; values are read from the COGs in the browser')
      .argument('<run-dir...>', 'run directories (as `geo-dino chm --out` writes them, simple or sharded); several runs of an area give the date picker')
      .requiredOption('-o, --out <site-dir>', 'the site directory to write (an earlier published site there is replaced when the new one is complete)')
      .option('--link', 'link data/<run> to the run directories (relative symbolic links) instead of copying the files')
      .option('--basemap <style-url>', 'a MapLibre style URL to show under the layers (none by default)')
      .action(async (dirs: string[], raw: Record<string, unknown>) => {
        const ctx = app.context();
        const opts = parseWith(optionsSchema, raw, { fieldName: flagName });
        const r = await publishSite({
          runs: dirs.map((d) => resolve(ctx.io.cwd, d)),
          out: resolve(ctx.io.cwd, opts.out),
          link: opts.link,
          basemap: opts.basemap ?? null,
          log: ctx.log,
          signal: ctx.signal,
        });
        ctx.result(
          { out: opts.out, runs: r.runs.map((x) => ({ id: x.id, layers: x.layers, rasters: x.rasters })), files: r.files, bytes: r.bytes },
          () => `published ${r.runs.length} run${r.runs.length === 1 ? '' : 's'} (${r.runs.map((x) => x.id).join(', ')}) to ${opts.out}: ${r.files} files${opts.link ? ' (run data linked)' : ''}; serve it from any static host with HTTP Range, e.g. \`aws s3 sync ${opts.out} s3://bucket/site\``,
        );
      });
  },
};
