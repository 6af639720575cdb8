/**
 * A minimal protocol-buffers *writer* (proto2/proto3 wire format), enough for ONNX models.
 *
 * Wire format (developers.google.com/protocol-buffers/docs/encoding): each field is a key
 * `(field_number << 3) | wire_type` as a varint, then the value: varint (type 0), 64-bit (1),
 * length-delimited (2: varint length + bytes) or 32-bit (5). Negative int64 values are 10-byte
 * two's-complement varints. Packed repeated scalars are one length-delimited field.
 *
 * Large byte strings (tensor data) can be *lazy*: only their length is known while the message is
 * assembled, and their bytes are produced when the message is written out, so a model bigger than
 * memory can be serialised in one pass with bounded memory.
 */

export interface LazyBytes {
  readonly lazy: true;
  readonly length: number;
  produce(): Uint8Array | Promise<Uint8Array>;
}

export type Chunk = Uint8Array | LazyBytes;

const WIRE_VARINT = 0;
const WIRE_I32 = 5;
const WIRE_LEN = 2;

function varintBytes(value: number | bigint): Uint8Array {
  let v = typeof value === 'bigint' ? value : BigInt(value);
  if (v < 0n) v = BigInt.asUintN(64, v);
  if (v < 0x80n) return Uint8Array.of(Number(v));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

function smallVarint(v: number): Uint8Array {
  // Fast path for non-negative values below 2^31 (keys, lengths, small ints).
  if (v < 0 || v > 0x7fffffff || !Number.isInteger(v)) return varintBytes(v);
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Uint8Array.from(out);
}

const encoder = new TextEncoder();

/** A message being assembled: a list of byte chunks with a known total length. */
export class ProtoMessage {
  readonly parts: Chunk[] = [];
  length = 0;

  private push(c: Chunk): void {
    this.parts.push(c);
    this.length += c.length;
  }

  private key(field: number, wire: number): void {
    this.push(smallVarint((field << 3) | wire));
  }

  /** int32/int64/uint64/enum/bool field (varint). */
  int(field: number, value: number | bigint): this {
    this.key(field, WIRE_VARINT);
    this.push(typeof value === 'number' && value >= 0 && value <= 0x7fffffff ? smallVarint(value) : varintBytes(value));
    return this;
  }

  /** float field (32-bit little-endian). */
  float(field: number, value: number): this {
    this.key(field, WIRE_I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, WIRE_LEN);
    this.push(smallVarint(value.length));
    if (value.length) this.push(value);
    return this;
  }

  /** A length-delimited field whose bytes are produced later. */
  lazyBytes(field: number, value: LazyBytes): this {
    this.key(field, WIRE_LEN);
    this.push(varintBytes(value.length));
    if (value.length) this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, encoder.encode(value));
  }

  message(field: number, value: ProtoMessage): this {
    this.key(field, WIRE_LEN);
    this.push(varintBytes(value.length));
    for (const p of value.parts) this.push(p);
    return this;
  }

  /** packed repeated int64. */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const parts = values.map((v) => varintBytes(v));
    const len = parts.reduce((s, p) => s + p.length, 0);
    this.key(field, WIRE_LEN);
    this.push(smallVarint(len));
    this.push(concat(parts, len));
    return this;
  }

  /** packed repeated float. */
  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  /** Materialise (only for messages without lazy parts; used for small messages and tests). */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const p of this.parts) {
      if (!(p instanceof Uint8Array)) throw new Error('toBytes: message has lazy parts');
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

function concat(parts: Uint8Array[], len: number): Uint8Array {
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Write a message's chunks to `write`, coalescing small chunks into buffers of `bufferSize`
 * bytes and producing lazy chunks in order. Checks that each lazy chunk has its promised length.
 */
export async function writeMessage(
  msg: ProtoMessage,
  write: (bytes: Uint8Array) => Promise<void>,
  bufferSize = 1 << 20,
): Promise<number> {
  let buf = new Uint8Array(bufferSize);
  let used = 0;
  let total = 0;
  const flush = async (): Promise<void> => {
    if (used === 0) return;
    await write(buf.subarray(0, used));
    buf = new Uint8Array(bufferSize);
    used = 0;
  };
  for (const p of msg.parts) {
    let bytes: Uint8Array;
    if (p instanceof Uint8Array) {
      bytes = p;
    } else {
      bytes = await p.produce();
      if (bytes.length !== p.length) throw new Error(`lazy chunk produced ${bytes.length} bytes, expected ${p.length}`);
    }
    if (bytes.length >= bufferSize / 2) {
      await flush();
      await write(bytes);
    } else {
      if (used + bytes.length > bufferSize) await flush();
      buf.set(bytes, used);
      used += bytes.length;
    }
    total += bytes.length;
  }
  await flush();
  return total;
}
