import {
  fields,
  lenField,
  nested,
  packedVarints,
  rewrite,
  varintField,
  WIRE_LEN,
  WIRE_VARINT,
  type Field,
} from './protobuf.js';

/**
 * Widens an ONNX model stored in float16 to float32: initializers, constants, Cast targets and declared types.
 * Most x86 CPUs have no fp16 arithmetic, so onnxruntime runs fp16 graphs through casts around every node;
 * the widened graph runs natively (measured in docs/processors-remove-background.md).
 * Field numbers are from onnx.proto3.
 */
const FLOAT = 1;
const FLOAT16 = 10;

const MODEL_GRAPH = 7;
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13 };
const NODE_ATTRIBUTE = 5;
const ATTR = { name: 1, i: 3, t: 5, g: 6, tensors: 9, graphs: 11 };
const TENSOR = { dataType: 2, floatData: 4, int32Data: 5, rawData: 9 };
const VALUE_INFO_TYPE = 2;
const TYPE_TENSOR = 1;
const TENSOR_TYPE_ELEM = 1;

export function widenFp16Model(model: Buffer): Buffer {
  return rewrite(model, (f) => (f.no === MODEL_GRAPH && f.wire === WIRE_LEN ? nested(f, graph) : undefined));
}

function graph(buf: Buffer): Buffer {
  return rewrite(buf, (f) => {
    if (f.wire !== WIRE_LEN) return undefined;
    if (f.no === GRAPH.node) return nested(f, node);
    if (f.no === GRAPH.initializer) return nested(f, tensor);
    if (f.no === GRAPH.input || f.no === GRAPH.output || f.no === GRAPH.valueInfo) return nested(f, valueInfo);
    return undefined;
  });
}

function node(buf: Buffer): Buffer {
  return rewrite(buf, (f) => (f.no === NODE_ATTRIBUTE && f.wire === WIRE_LEN ? nested(f, attribute) : undefined));
}

function attribute(buf: Buffer): Buffer {
  const name = [...fields(buf)].find((f) => f.no === ATTR.name)?.bytes.toString();
  return rewrite(buf, (f) => {
    // Cast(to=FLOAT16) becomes a float-to-float cast, which onnxruntime drops.
    if (name === 'to' && f.no === ATTR.i && f.wire === WIRE_VARINT && f.int === FLOAT16)
      return varintField(f.no, FLOAT);
    if (f.wire !== WIRE_LEN) return undefined;
    if (f.no === ATTR.t || f.no === ATTR.tensors) return nested(f, tensor);
    if (f.no === ATTR.g || f.no === ATTR.graphs) return nested(f, graph);
    return undefined;
  });
}

function tensor(buf: Buffer): Buffer {
  const isHalf = [...fields(buf)].some((f) => f.no === TENSOR.dataType && f.int === FLOAT16);
  if (!isHalf) return buf;
  return rewrite(buf, (f) => {
    if (f.no === TENSOR.dataType) return varintField(f.no, FLOAT);
    if (f.no === TENSOR.rawData) return lenField(f.no, widenRaw(f.bytes));
    // Without raw_data, fp16 values sit in int32_data, one per (packed) varint.
    if (f.no === TENSOR.int32Data) return lenField(TENSOR.floatData, widenPackedInt32(f));
    return undefined;
  });
}

function valueInfo(buf: Buffer): Buffer {
  return rewrite(buf, (f) => {
    if (f.no !== VALUE_INFO_TYPE || f.wire !== WIRE_LEN) return undefined;
    return nested(f, (type) =>
      rewrite(type, (t) => {
        if (t.no !== TYPE_TENSOR || t.wire !== WIRE_LEN) return undefined;
        return nested(t, (tensorType) => rewrite(tensorType, widenElemType));
      }),
    );
  });
}

function widenElemType(f: Field): Buffer | undefined {
  return f.no === TENSOR_TYPE_ELEM && f.int === FLOAT16 ? varintField(f.no, FLOAT) : undefined;
}

let halfTable: Float32Array | undefined;

/** All 65536 half-precision values, so widening is one lookup per weight. */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) halfTable[h] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) halfTable[h] = mantissa ? NaN : sign * Infinity;
    else halfTable[h] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return halfTable;
}

function widenRaw(bytes: Buffer): Buffer {
  const table = halfToFloatTable();
  const count = bytes.length >> 1;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

function widenPackedInt32(field: Field): Buffer {
  const table = halfToFloatTable();
  const halves = field.wire === WIRE_LEN ? packedVarints(field.bytes) : [field.int];
  const out = Float32Array.from(halves, (h) => table[h & 0xffff]);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}
