import { fields, lenField, packedVarints, varintField, WIRE_LEN } from './protobuf.js';

/**
 * Reading and building the parts of an ONNX graph that a graph rewrite needs: nodes by their inputs and outputs,
 * float initializers, and new nodes, tensors and outputs. Field numbers are from onnx.proto3.
 */
export const MODEL_GRAPH = 7;
export const GRAPH = { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13 };
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 };
const ATTR = { name: 1, i: 3, type: 20 };
const ATTR_INT = 2;
const TENSOR = { dims: 1, dataType: 2, floatData: 4, name: 8, rawData: 9 };
export const DATA_TYPE = { float: 1, uint8: 2, int8: 3, int32: 6, int64: 7 } as const;

export interface GraphNode {
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  /** The node's integer attributes (Cast's `to`, say); read from files, not written by nodeField. */
  ints?: Record<string, number>;
}

export interface FloatTensor {
  name: string;
  dims: number[];
  values: Float32Array;
}

export function graphOf(model: Buffer): Buffer {
  const graph = [...fields(model)].find((f) => f.no === MODEL_GRAPH && f.wire === WIRE_LEN);
  if (!graph) throw new Error('the ONNX file has no graph');
  return graph.bytes;
}

export function readNode(buf: Buffer): GraphNode {
  const node: GraphNode = { op: '', name: '', inputs: [], outputs: [], ints: {} };
  for (const f of fields(buf)) {
    if (f.no === NODE.input) node.inputs.push(f.bytes.toString());
    else if (f.no === NODE.output) node.outputs.push(f.bytes.toString());
    else if (f.no === NODE.name) node.name = f.bytes.toString();
    else if (f.no === NODE.opType) node.op = f.bytes.toString();
    else if (f.no === NODE.attribute && f.wire === WIRE_LEN) readIntAttribute(f.bytes, node.ints!);
  }
  return node;
}

function readIntAttribute(buf: Buffer, into: Record<string, number>): void {
  let name = '';
  let value: number | undefined;
  for (const f of fields(buf)) {
    if (f.no === ATTR.name) name = f.bytes.toString();
    else if (f.no === ATTR.i && f.wire !== WIRE_LEN) value = f.int;
  }
  if (value !== undefined) into[name] = value;
}

/** The names of the graph's declared outputs, in order. */
export function graphOutputs(graph: Buffer): string[] {
  return [...fields(graph)]
    .filter((f) => f.no === GRAPH.output && f.wire === WIRE_LEN)
    .map((f) => valueInfoName(f.bytes));
}

export const valueInfoName = (buf: Buffer) => [...fields(buf)].find((f) => f.no === 1)?.bytes.toString() ?? '';

/** The graph's nodes in file order, and its float initializers by name. */
export function readGraph(graph: Buffer): { nodes: GraphNode[]; initializers: Map<string, FloatTensor> } {
  const nodes: GraphNode[] = [];
  const initializers = new Map<string, FloatTensor>();
  for (const f of fields(graph)) {
    if (f.no === GRAPH.node) nodes.push(readNode(f.bytes));
    else if (f.no === GRAPH.initializer) {
      const tensor = readFloatTensor(f.bytes);
      if (tensor) initializers.set(tensor.name, tensor);
    }
  }
  return { nodes, initializers };
}

export function tensorName(buf: Buffer): string {
  return [...fields(buf)].find((f) => f.no === TENSOR.name)?.bytes.toString() ?? '';
}

/** A float32 tensor's name, shape and values; undefined for other element types. */
export function readFloatTensor(buf: Buffer): FloatTensor | undefined {
  let name = '';
  let type = 0;
  const dims: number[] = [];
  let data: Buffer | undefined;
  for (const f of fields(buf)) {
    if (f.no === TENSOR.name) name = f.bytes.toString();
    else if (f.no === TENSOR.dataType) type = f.int;
    else if (f.no === TENSOR.dims) dims.push(...(f.wire === WIRE_LEN ? packedVarints(f.bytes) : [f.int]));
    else if (f.no === TENSOR.rawData || (f.no === TENSOR.floatData && f.wire === WIRE_LEN)) data = f.bytes;
  }
  if (type !== DATA_TYPE.float) return undefined;
  // Copied: the payload's offset inside the file need not be 4-byte aligned.
  const values = new Float32Array(Uint8Array.from(data ?? []).buffer);
  return { name, dims, values };
}

const str = (no: number, text: string) => lenField(no, Buffer.from(text));

export function intAttribute(name: string, value: number): Buffer {
  return lenField(
    NODE.attribute,
    Buffer.concat([str(ATTR.name, name), varintField(ATTR.i, value), varintField(ATTR.type, ATTR_INT)]),
  );
}

/** A whole `node` field of a GraphProto. */
export function nodeField(node: GraphNode, attributes: Buffer[] = []): Buffer {
  return lenField(
    GRAPH.node,
    Buffer.concat([
      ...node.inputs.map((name) => str(NODE.input, name)),
      ...node.outputs.map((name) => str(NODE.output, name)),
      str(NODE.name, node.name),
      str(NODE.opType, node.op),
      ...attributes,
    ]),
  );
}

/** A whole `initializer` field of a GraphProto; `data` holds the little-endian values of `type`. */
export function initializerField(name: string, type: number, dims: number[], data: ArrayBufferView): Buffer {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return lenField(
    GRAPH.initializer,
    Buffer.concat([
      ...dims.map((d) => varintField(TENSOR.dims, d)),
      varintField(TENSOR.dataType, type),
      str(TENSOR.name, name),
      lenField(TENSOR.rawData, bytes),
    ]),
  );
}

/** A whole `output` field of a GraphProto: a float tensor of unstated shape. */
export function floatOutputField(name: string): Buffer {
  const tensorType = varintField(1, DATA_TYPE.float);
  return lenField(GRAPH.output, Buffer.concat([str(1, name), lenField(2, lenField(1, tensorType))]));
}

/** The node with some input names replaced; the rest of its bytes untouched. */
export function renameInputs(buf: Buffer, rename: (name: string) => string): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields(buf)) {
    if (f.no !== NODE.input) parts.push(f.raw);
    else parts.push(str(NODE.input, rename(f.bytes.toString())));
  }
  return Buffer.concat(parts);
}
