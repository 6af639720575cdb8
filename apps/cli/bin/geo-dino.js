#!/usr/bin/env node
// The `geo-dino` command. The code lives in ../dist (built by `npm run build`).
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv);
