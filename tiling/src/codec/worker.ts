/**
 * Worker thread of the tiler's pool: decodes blocks and runs warp steps. Answers with the
 * results (buffers transferred) or a serialised GeoDinoError.
 */
import { parentPort } from 'node:worker_threads';
import { GeoDinoError } from '@geo-dino/core';
import { decodeBlock, type BlockTask } from './decode.js';
import { decodeTileImage, type ImageTask } from './image.js';
import { warpStep, type WarpJob } from '../warp/step.js';

type Request =
  | { id: number; kind: 'decode'; task: BlockTask }
  | { id: number; kind: 'image'; task: ImageTask }
  | { id: number; kind: 'warp'; task: WarpJob } | { id: number; kind: 'ping'; task: null };

function transferable(u8: Uint8Array): Uint8Array {
  if (u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength && u8.buffer instanceof ArrayBuffer) return u8;
  return u8.slice();
}

function fail(msg: Request, err: unknown): void {
  const name = msg.kind === 'decode' ? `${msg.task.name}: ${msg.task.what}: ` : msg.kind === 'image' ? `${msg.task.name}: ` : 'warp: ';
  const e = err instanceof GeoDinoError ? err : new GeoDinoError(msg.kind === 'decode' || msg.kind === 'image' ? 'E_BAD_RASTER' : 'E_INTERNAL', `${name}${(err as Error)?.message ?? String(err)}`);
  parentPort!.postMessage({ id: msg.id, ok: false, error: { code: e.code, message: e.message, details: e.details } });
}

parentPort!.on('message', (msg: Request) => {
  if (msg.kind === 'ping') {
    parentPort!.postMessage({ id: msg.id, ok: true, data: true });
    return;
  }
  if (msg.kind === 'warp') {
    try {
      const r = warpStep(msg.task);
      parentPort!.postMessage({ id: msg.id, ok: true, data: r }, [r.rgb.buffer, r.source.buffer, r.todo.buffer] as ArrayBuffer[]);
    } catch (err) {
      fail(msg, err);
    }
    return;
  }
  (msg.kind === 'image' ? decodeTileImage(msg.task) : decodeBlock(msg.task)).then(
    (out) => {
      const t = transferable(out);
      parentPort!.postMessage({ id: msg.id, ok: true, data: t }, [t.buffer as ArrayBuffer]);
    },
    (err: unknown) => fail(msg, err),
  );
});
