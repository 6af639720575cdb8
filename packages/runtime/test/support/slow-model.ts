/**
 * A model whose run time the test chooses: y = x·x·…·x (`matmuls` MatMul nodes) on a float32
 * [n, n] input with a symbolic n, so a run of a few hundred milliseconds per session needs no
 * weights and no large file (about 200 bytes). Written as ONNX protobuf by hand: the runtime
 * package does not depend on the model package's graph builder, and `onnx` (Python) is not
 * needed. Field numbers from onnx/onnx.proto (ModelProto, GraphProto, NodeProto, ValueInfoProto,
 * TypeProto, TensorShapeProto).
 */
import { writeFile } from 'node:fs/promises';

const utf8 = new TextEncoder();

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}

const int = (field: number, value: number): number[] => [...varint(field << 3), ...varint(value)];
const msg = (field: number, body: number[]): number[] => [...varint((field << 3) | 2), ...varint(body.length), ...body];
const str = (field: number, s: string): number[] => msg(field, [...utf8.encode(s)]);

/** ONNX bytes of y = x^(matmuls+1) (matrix power) for x: float32 [n, n], opset 17. */
export function slowModelBytes(matmuls: number): Uint8Array {
  const dim = msg(1, str(2, 'n')); // TensorShapeProto.dim { dim_param: "n" }
  const tensorType = msg(1, [...int(1, 1), ...msg(2, [...dim, ...dim])]); // TypeProto.tensor_type { FLOAT, [n, n] }
  const valueInfo = (name: string): number[] => [...str(1, name), ...msg(2, tensorType)];
  const nodes: number[] = [];
  let prev = 'x';
  for (let i = 0; i < matmuls; i++) {
    const out = i === matmuls - 1 ? 'y' : `t${i}`;
    nodes.push(...msg(1, [...str(1, prev), ...str(1, 'x'), ...str(2, out), ...str(3, `matmul_${i}`), ...str(4, 'MatMul')]));
    prev = out;
  }
  const graph = [...nodes, ...str(2, 'geo_dino_slow'), ...msg(11, valueInfo('x')), ...msg(12, valueInfo('y'))];
  const opset = [...str(1, ''), ...int(2, 17)];
  return Uint8Array.from([...int(1, 8), ...str(2, 'geo-dino-test'), ...msg(7, graph), ...msg(8, opset)]);
}

export async function writeSlowModel(path: string, matmuls: number): Promise<string> {
  if (!Number.isInteger(matmuls) || matmuls < 1) throw new Error(`matmuls: ${matmuls}`);
  await writeFile(path, slowModelBytes(matmuls));
  return path;
}
