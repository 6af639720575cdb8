/**
 * Whole graphs: fused (pixels → canopy height + uncertainty), or split into a backbone graph
 * (pixels → four normalised feature maps + cls tokens) and head graphs that take those, so
 * several heads can share one backbone pass.
 */
import { attr, Graph, type Dim, type ValueSpec } from '../onnx/graph.js';
import type { Architecture } from '../arch.js';
import type { ResolvedWeights } from '../weights.js';
import { BuildContext, type GraphOptions } from './context.js';
import { buildBackbone, type BackboneValues } from './vit.js';
import { buildChmHead } from './dpt.js';

/** Stable I/O names (recorded in geo-dino.json too). */
export const IO = {
  pixels: 'pixel_values',
  height: 'canopy_height',
  uncertainty: 'canopy_height_std',
  feature: (k: number): string => `features_${k}`,
  cls: (k: number): string => `cls_${k}`,
} as const;

export interface BuiltGraph {
  key: string;
  graph: Graph;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  /** The com.microsoft domain is used (fused attention). */
  contrib: boolean;
}

interface Dims {
  pixels: Dim[];
  features: Dim[];
  cls: Dim[];
  out: Dim[];
}

/** Output size along one axis for a patch grid of g (spec §4.5): 16·2·ceil(g/2). */
export function chmOutputSize(pixels: number, patch = 16): number {
  const grid = Math.floor(pixels / patch);
  return patch * 2 * Math.ceil(grid / 2);
}

function dims(arch: Architecture, opts: GraphOptions): Dims {
  const D = arch.backbone.hiddenSize;
  const p = arch.backbone.patchSize;
  if (opts.fixedSize) {
    const [H, W] = opts.fixedSize;
    return {
      pixels: ['batch', 3, H, W],
      features: ['batch', D, H / p, W / p],
      cls: ['batch', D],
      out: ['batch', chmOutputSize(H, p), chmOutputSize(W, p)],
    };
  }
  return {
    pixels: ['batch', 3, 'height', 'width'],
    features: ['batch', D, 'grid_height', 'grid_width'],
    cls: ['batch', D],
    out: ['batch', 'out_height', 'out_width'],
  };
}

function patchesAndCls(ctx: BuildContext, bb: BackboneValues): { tokens: string[]; cls: string[] } {
  const g = ctx.g;
  const tokens = bb.hidden.map((h) => g.op1('Slice', [h, g.constI64([bb.prefix]), g.constI64([2 ** 53]), g.constI64([1])]));
  const cls = bb.hidden.map((h) => g.op1('Gather', [h, g.constI64([0], [])], { axis: attr.i(1) }));
  return { tokens, cls };
}

/** pixels → canopy_height, canopy_height_std. */
export function buildFusedGraph(arch: Architecture, W: ResolvedWeights, opts: GraphOptions): BuiltGraph {
  if (!arch.head) throw new Error('fused graph needs a head');
  const g = new Graph('geo_dino_chmv2');
  const ctx = new BuildContext(g, W, opts);
  const d = dims(arch, opts);
  const px = g.input(IO.pixels, 'float32', d.pixels);
  const bb = buildBackbone(ctx, arch.backbone, px);
  const { tokens, cls } = patchesAndCls(ctx, bb);
  const head = buildChmHead(ctx, arch.head, arch.backbone.hiddenSize, { tokens, cls, gridHW: bb.gridHW, grid: bb.grid });
  g.output(head.height, IO.height, 'float32', d.out);
  g.output(head.std, IO.uncertainty, 'float32', d.out);
  return { key: 'model', graph: g, inputs: [...g.inputs], outputs: [...g.outputs], contrib: g.domains.has('com.microsoft') };
}

/** pixels → features_k [B, D, Hp, Wp] and cls_k [B, D] for each selected layer. */
export function buildBackboneGraph(arch: Architecture, W: ResolvedWeights, opts: GraphOptions): BuiltGraph {
  const g = new Graph('geo_dino_dinov3_backbone');
  const ctx = new BuildContext(g, W, opts);
  const d = dims(arch, opts);
  const px = g.input(IO.pixels, 'float32', d.pixels);
  const bb = buildBackbone(ctx, arch.backbone, px);
  const { tokens, cls } = patchesAndCls(ctx, bb);
  const mapShape = g.op1('Shape', [bb.patchEmbed]);
  tokens.forEach((t, k) => {
    const fm = g.op1('Reshape', [g.op1('Transpose', [t], { perm: attr.ints([0, 2, 1]) }), mapShape]);
    g.output(fm, IO.feature(k), 'float32', d.features);
  });
  cls.forEach((c, k) => g.output(c, IO.cls(k), 'float32', d.cls));
  return { key: 'backbone', graph: g, inputs: [...g.inputs], outputs: [...g.outputs], contrib: g.domains.has('com.microsoft') };
}

/** features_k, cls_k → canopy_height, canopy_height_std. */
export function buildHeadGraph(arch: Architecture, W: ResolvedWeights, opts: GraphOptions): BuiltGraph {
  if (!arch.head) throw new Error('head graph needs a head');
  const g = new Graph('geo_dino_chmv2_head');
  const ctx = new BuildContext(g, W, opts);
  const d = dims(arch, opts);
  const D = arch.backbone.hiddenSize;
  const feats = [0, 1, 2, 3].map((k) => g.input(IO.feature(k), 'float32', d.features));
  const clsIn = [0, 1, 2, 3].map((k) => g.input(IO.cls(k), 'float32', d.cls));
  const tokens = feats.map((f) => g.op1('Transpose', [g.op1('Reshape', [f, g.constI64([0, D, -1])])], { perm: attr.ints([0, 2, 1]) }));
  let hw: string | undefined;
  const gridHW = (): string => (hw ??= g.op1('Shape', [feats[0]!], { start: attr.i(2), end: attr.i(4) }));
  const p = arch.backbone.patchSize;
  const grid = opts.fixedSize ? { hp: opts.fixedSize[0] / p, wp: opts.fixedSize[1] / p } : null;
  const head = buildChmHead(ctx, arch.head, D, { tokens, cls: clsIn, gridHW, grid });
  g.output(head.height, IO.height, 'float32', d.out);
  g.output(head.std, IO.uncertainty, 'float32', d.out);
  return { key: 'head:chm', graph: g, inputs: [...g.inputs], outputs: [...g.outputs], contrib: g.domains.has('com.microsoft') };
}
