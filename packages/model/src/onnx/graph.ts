/**
 * An ONNX graph builder and serialiser, written against onnx/onnx.proto (ModelProto, GraphProto,
 * NodeProto, AttributeProto, TensorProto, ValueInfoProto field numbers as in that file).
 *
 * Initializer data may be lazy (a length and a producer), so a model of any size is written in
 * one streaming pass. Above a size threshold (protobuf's 2 GB limit) the tensor data goes to one
 * external file beside the model (`<model>.onnx.data`, offsets aligned to 4 KiB), referenced by
 * TensorProto.external_data {location, offset, length} with data_location = EXTERNAL.
 */
import { basename } from 'node:path';
import { openAtomic, type AtomicFile } from '@geo-dino/core';
import { ProtoMessage, writeMessage, type LazyBytes } from './proto.js';

export type DType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool' | 'float64';

/** TensorProto.DataType values. */
export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4,
  uint8: 1,
  int8: 1,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
  float64: 8,
  bfloat16: 2,
};

export type Dim = number | string;

export type AttrValue =
  | { t: 'f'; v: number }
  | { t: 'i'; v: number }
  | { t: 's'; v: string }
  | { t: 'fs'; v: readonly number[] }
  | { t: 'is'; v: readonly number[] };

/** Attribute constructors: `attr.i(1)`, `attr.f(1e-5)`, `attr.s('linear')`, `attr.ints([0, 2, 1])`. */
export const attr = {
  f: (v: number): AttrValue => ({ t: 'f', v }),
  i: (v: number): AttrValue => ({ t: 'i', v }),
  s: (v: string): AttrValue => ({ t: 's', v }),
  floats: (v: readonly number[]): AttrValue => ({ t: 'fs', v }),
  ints: (v: readonly number[]): AttrValue => ({ t: 'is', v }),
};

export interface NodeSpec {
  op: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export type TensorData = Uint8Array | LazyBytes;

export interface InitializerSpec {
  name: string;
  dtype: DType;
  dims: number[];
  data: TensorData;
}

export interface ValueSpec {
  name: string;
  dtype: DType;
  dims: Dim[];
}

export function lazyBytes(length: number, produce: () => Uint8Array | Promise<Uint8Array>): LazyBytes {
  return { lazy: true, length, produce };
}

/** A graph under construction. Names are unique; `uniq()` makes fresh ones. */
export class Graph {
  readonly name: string;
  readonly nodes: NodeSpec[] = [];
  readonly initializers: InitializerSpec[] = [];
  readonly inputs: ValueSpec[] = [];
  readonly outputs: ValueSpec[] = [];
  private readonly used = new Set<string>();
  private counter = 0;
  private readonly constCache = new Map<string, string>();
  /** Domains used by nodes (besides the default), for opset imports. */
  readonly domains = new Set<string>();

  constructor(name: string) {
    this.name = name;
  }

  uniq(prefix: string): string {
    let n: string;
    do n = `${prefix}_${this.counter++}`;
    while (this.used.has(n));
    return n;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new Error(`graph ${this.name}: duplicate value name ${name}`);
    this.used.add(name);
    return name;
  }

  input(name: string, dtype: DType, dims: Dim[]): string {
    this.inputs.push({ name: this.claim(name), dtype, dims });
    return name;
  }

  /** Declare `value` as a graph output called `name` (adds an Identity when the names differ). */
  output(value: string, name: string, dtype: DType, dims: Dim[]): string {
    if (value !== name) this.op('Identity', [value], {}, { outputs: [name] });
    this.outputs.push({ name, dtype, dims });
    return name;
  }

  initializer(name: string, dtype: DType, dims: number[], data: TensorData): string {
    const want = dims.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    if (data.length !== want) throw new Error(`initializer ${name}: ${data.length} bytes for dims [${dims.join(',')}] ${dtype}, expected ${want}`);
    this.initializers.push({ name: this.claim(name), dtype, dims, data });
    return name;
  }

  /** A small float32 constant (deduplicated by value). */
  constF32(values: readonly number[] | Float32Array, dims: number[] = [values.length], name?: string): string {
    const arr = values instanceof Float32Array ? values : Float32Array.from(values);
    const key = `f32:${dims.join(',')}:${arr.length <= 64 ? Array.from(arr).join(',') : name ?? this.counter}`;
    const hit = this.constCache.get(key);
    if (hit && !name) return hit;
    const n = this.initializer(name ?? this.uniq('c'), 'float32', dims, new Uint8Array(arr.buffer.slice(arr.byteOffset, arr.byteOffset + arr.byteLength)));
    if (!name) this.constCache.set(key, n);
    return n;
  }

  constF16(bits: Uint16Array, dims: number[], name?: string): string {
    return this.initializer(name ?? this.uniq('c16'), 'float16', dims, new Uint8Array(bits.buffer.slice(bits.byteOffset, bits.byteOffset + bits.byteLength)));
  }

  /** A small int64 constant (deduplicated by value). */
  constI64(values: readonly number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join(',')}:${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const arr = BigInt64Array.from(values.map((v) => BigInt(v)));
    const n = this.initializer(this.uniq('k'), 'int64', dims, new Uint8Array(arr.buffer));
    this.constCache.set(key, n);
    return n;
  }

  /**
   * Add a node. Returns its output names (fresh unless given). Empty-string inputs stand for
   * omitted optional inputs.
   */
  op(
    op: string,
    inputs: readonly string[],
    attrs: Record<string, AttrValue> = {},
    opts: { outputs?: number | string[]; domain?: string; name?: string } = {},
  ): string[] {
    const outs =
      Array.isArray(opts.outputs)
        ? opts.outputs.map((o) => this.claim(o))
        : Array.from({ length: opts.outputs ?? 1 }, () => this.claim(this.uniq(op.toLowerCase())));
    const domain = opts.domain ?? '';
    if (domain) this.domains.add(domain);
    this.nodes.push({ op, domain, name: opts.name ?? `n${this.nodes.length}_${op}`, inputs: [...inputs], outputs: outs, attrs });
    return outs;
  }

  /** `op` for single-output nodes. */
  op1(op: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, opts: { domain?: string; name?: string; output?: string } = {}): string {
    return this.op(op, inputs, attrs, { ...opts, ...(opts.output ? { outputs: [opts.output] } : {}) })[0]!;
  }

  /** Total bytes of initializer data. */
  initializerBytes(): number {
    return this.initializers.reduce((s, t) => s + t.data.length, 0);
  }
}

// ------------------------------------------------------------------------------------------
// Serialisation

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface SaveOptions {
  opsets: OpsetImport[];
  irVersion: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
  /**
   * Where tensor data goes: 'auto' (external file when initializers exceed
   * `externalThresholdBytes`), 'always' or 'never'.
   */
  externalData?: 'auto' | 'always' | 'never';
  /** Default 1.9 GB (the protobuf message limit is 2 GiB). */
  externalThresholdBytes?: number;
}

export interface SavedModel {
  path: string;
  bytes: number;
  externalDataFile?: string;
  externalDataBytes?: number;
}

function attrProto(name: string, a: AttrValue): ProtoMessage {
  const m = new ProtoMessage().string(1, name);
  switch (a.t) {
    case 'f':
      m.float(2, a.v).int(20, 1);
      break;
    case 'i':
      m.int(3, a.v).int(20, 2);
      break;
    case 's':
      m.string(4, a.v).int(20, 3);
      break;
    case 'fs':
      m.packedFloats(7, a.v).int(20, 6);
      break;
    case 'is':
      m.packedInts(8, a.v).int(20, 7);
      break;
  }
  return m;
}

function nodeProto(n: NodeSpec): ProtoMessage {
  const m = new ProtoMessage();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  m.string(3, n.name).string(4, n.op);
  if (n.domain) m.string(7, n.domain);
  for (const [k, v] of Object.entries(n.attrs)) m.message(5, attrProto(k, v));
  return m;
}

function valueInfoProto(v: ValueSpec): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of v.dims) {
    const dim = new ProtoMessage();
    if (typeof d === 'number') dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoMessage().int(1, ONNX_DTYPE[v.dtype]).message(2, shape);
  const type = new ProtoMessage().message(1, tensorType);
  return new ProtoMessage().string(1, v.name).message(2, type);
}

function entry(key: string, value: string): ProtoMessage {
  return new ProtoMessage().string(1, key).string(2, value);
}

const ALIGN = 4096;

/**
 * Serialise `graph` to `path` (atomically). With external data, the data file is written first
 * (streaming each tensor), then the model. Both are renamed into place only when complete.
 */
export async function saveModel(graph: Graph, path: string, options: SaveOptions): Promise<SavedModel> {
  const mode = options.externalData ?? 'auto';
  const threshold = options.externalThresholdBytes ?? 1_900_000_000;
  const external = mode === 'always' || (mode === 'auto' && graph.initializerBytes() > threshold);
  const dataName = `${basename(path)}.data`;
  const dataPath = `${path}.data`;

  // Decide the external layout (tensors >= 1 KiB go out; small ones stay inline).
  const offsets = new Map<string, number>();
  let dataBytes = 0;
  if (external) {
    for (const t of graph.initializers) {
      if (t.data.length < 1024) continue;
      dataBytes = Math.ceil(dataBytes / ALIGN) * ALIGN;
      offsets.set(t.name, dataBytes);
      dataBytes += t.data.length;
    }
  }

  const g = new ProtoMessage();
  for (const n of graph.nodes) g.message(1, nodeProto(n));
  g.string(2, graph.name);
  for (const t of graph.initializers) {
    const tm = new ProtoMessage();
    tm.packedInts(1, t.dims).int(2, ONNX_DTYPE[t.dtype]).string(8, t.name);
    const off = offsets.get(t.name);
    if (off !== undefined) {
      tm.message(13, entry('location', dataName));
      tm.message(13, entry('offset', String(off)));
      tm.message(13, entry('length', String(t.data.length)));
      tm.int(14, 1);
    } else if (t.data instanceof Uint8Array) {
      tm.bytes(9, t.data);
    } else {
      tm.lazyBytes(9, t.data);
    }
    g.message(5, tm);
  }
  for (const v of graph.inputs) g.message(11, valueInfoProto(v));
  for (const v of graph.outputs) g.message(12, valueInfoProto(v));

  const m = new ProtoMessage();
  m.int(1, options.irVersion);
  m.string(2, options.producerName ?? 'geo-dino');
  if (options.producerVersion) m.string(3, options.producerVersion);
  if (options.docString) m.string(6, options.docString);
  m.message(7, g);
  for (const o of options.opsets) m.message(8, new ProtoMessage().string(1, o.domain).int(2, o.version));
  for (const [k, v] of Object.entries(options.metadata ?? {})) m.message(14, entry(k, v));

  if (!external && m.length > 2 ** 31 - 1) {
    throw new Error(`${path}: model of ${m.length} bytes exceeds protobuf's 2 GiB limit; use external data`);
  }

  let dataFile: AtomicFile | undefined;
  let modelFile: AtomicFile | undefined;
  try {
    if (external) {
      dataFile = await openAtomic(dataPath);
      let pos = 0;
      for (const t of graph.initializers) {
        const off = offsets.get(t.name);
        if (off === undefined) continue;
        if (off > pos) {
          await dataFile.write(new Uint8Array(off - pos));
          pos = off;
        }
        const bytes = t.data instanceof Uint8Array ? t.data : await t.data.produce();
        if (bytes.length !== t.data.length) throw new Error(`initializer ${t.name}: produced ${bytes.length} bytes, expected ${t.data.length}`);
        await dataFile.write(bytes);
        pos += bytes.length;
      }
    }
    modelFile = await openAtomic(path);
    const file = modelFile;
    const written = await writeMessage(m, (b) => file.write(b));
    if (dataFile) await dataFile.commit();
    await modelFile.commit();
    return {
      path,
      bytes: written,
      ...(external ? { externalDataFile: dataPath, externalDataBytes: dataBytes } : {}),
    };
  } catch (err) {
    await dataFile?.abort();
    await modelFile?.abort();
    throw err;
  }
}
