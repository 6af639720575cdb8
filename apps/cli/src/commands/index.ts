/**
 * Every `geo-dino` subcommand, in the order `--help` lists them. One file per command (or group);
 * each is a thin layer over a library package.
 */
import type { CommandModule } from '../app.js';
import { doctorCommand } from './doctor.js';
import { stacCommand } from './stac.js';
import { modelCommand } from './model.js';
import { tilesCommand } from './tiles.js';
import { serveCommand } from './serve.js';
import { publishCommand } from './publish.js';
import { rasterCommand } from './raster.js';
import { chmCommand } from './chm.js';
import { landcoverCommand } from './landcover.js';
import { monitorCommand } from './monitor.js';
import { workerCommand } from './worker.js';

export const COMMANDS: readonly CommandModule[] = [doctorCommand, chmCommand, landcoverCommand, modelCommand, stacCommand, tilesCommand, rasterCommand, serveCommand, publishCommand, monitorCommand, workerCommand];
