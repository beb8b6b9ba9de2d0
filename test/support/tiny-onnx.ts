/**
 * Hand-encoded ONNX models small enough to write inline, so tests of the model-loading paths need no downloads.
 * Field numbers follow onnx.proto3.
 */
import { lenField, varintField } from '../../src/processors/models/protobuf.js';

const FLOAT = 1;
const FLOAT16 = 10;
const ATTR_INT = 2;
const ATTR_INTS = 7;

const int = varintField;
const bytes = (no: number, payload: Buffer | string) =>
  lenField(no, typeof payload === 'string' ? Buffer.from(payload) : payload);
const message = (...fields: Buffer[]) => Buffer.concat(fields);

function tensorType(elemType: number, dims: number[]): Buffer {
  const shape = message(...dims.map((d) => bytes(1, int(1, d))));
  return bytes(1, message(int(1, elemType), bytes(2, shape)));
}

function valueInfo(name: string, elemType: number, dims: number[]): Buffer {
  return message(bytes(1, name), bytes(2, tensorType(elemType, dims)));
}

function node(op: string, inputs: string[], outputs: string[], attributes: Buffer[] = []): Buffer {
  return message(
    ...inputs.map((i) => bytes(1, i)),
    ...outputs.map((o) => bytes(2, o)),
    bytes(3, `${op}_${outputs[0]}`),
    bytes(4, op),
    ...attributes.map((a) => bytes(5, a)),
  );
}

const intAttr = (name: string, value: number) => message(bytes(1, name), int(3, value), int(20, ATTR_INT));
const intsAttr = (name: string, values: number[]) =>
  message(bytes(1, name), ...values.map((v) => int(8, v)), int(20, ATTR_INTS));

function model(graph: { nodes: Buffer[]; initializers?: Buffer[]; inputs: Buffer[]; outputs: Buffer[] }): Buffer {
  const body = message(
    ...graph.nodes.map((n) => bytes(1, n)),
    bytes(2, 'tiny'),
    ...(graph.initializers ?? []).map((t) => bytes(5, t)),
    ...graph.inputs.map((i) => bytes(11, i)),
    ...graph.outputs.map((o) => bytes(12, o)),
  );
  const opset = message(bytes(1, ''), int(2, 13));
  return message(int(1, 8), bytes(2, 'pixq-test'), bytes(7, body), bytes(8, opset));
}

/**
 * Same signature as rembg's u2netp: `input.1` float32 [1,3,320,320] to a float32 [1,1,320,320] first output.
 * It computes sigmoid(mean over channels): bright pixels come out as foreground.
 */
export function tinyU2netLike(size = 320): Buffer {
  return model({
    nodes: [
      node('ReduceMean', ['input.1'], ['mean'], [intsAttr('axes', [1]), intAttr('keepdims', 1)]),
      node('Sigmoid', ['mean'], ['d0']),
    ],
    inputs: [valueInfo('input.1', FLOAT, [1, 3, size, size])],
    outputs: [valueInfo('d0', FLOAT, [1, 1, size, size])],
  });
}

/** float32 x [1,n] -> Cast(fp16) -> Mul by fp16 weights -> Cast(fp32) -> y, the shape of an fp16-exported network. */
export function tinyFp16Scale(weights: number[]): Buffer {
  const n = weights.length;
  const raw = Buffer.alloc(n * 2);
  weights.forEach((w, i) => raw.writeUInt16LE(toHalf(w), i * 2));
  const initializer = message(int(1, 1), int(1, n), int(2, FLOAT16), bytes(8, 'w'), bytes(9, raw));
  return model({
    nodes: [
      node('Cast', ['x'], ['x16'], [intAttr('to', FLOAT16)]),
      node('Mul', ['x16', 'w'], ['y16']),
      node('Cast', ['y16'], ['y'], [intAttr('to', FLOAT)]),
    ],
    initializers: [initializer],
    inputs: [valueInfo('x', FLOAT, [1, n])],
    outputs: [valueInfo('y', FLOAT, [1, n])],
  });
}

/** IEEE half bits of a normal number (tests use values like 0.5 or -3 that half represents exactly). */
function toHalf(value: number): number {
  if (value === 0) return 0;
  const sign = value < 0 ? 0x8000 : 0;
  const magnitude = Math.abs(value);
  const exponent = Math.floor(Math.log2(magnitude));
  const mantissa = Math.round((magnitude / 2 ** exponent - 1) * 1024);
  return sign | ((exponent + 15) << 10) | mantissa;
}

/** x [n,n] multiplied `repeats` times by the identity: returns x, after a measurable while. */
export function slowMatMul(n: number, repeats: number): Buffer {
  const weight = Buffer.alloc(n * n * 4);
  for (let i = 0; i < n; i++) weight.writeFloatLE(1, (i * n + i) * 4);
  const initializer = message(int(1, n), int(1, n), int(2, FLOAT), bytes(8, 'w'), bytes(9, weight));
  const nodes = Array.from({ length: repeats }, (_, i) =>
    node('MatMul', [i === 0 ? 'x' : `h${i}`, 'w'], [i === repeats - 1 ? 'y' : `h${i + 1}`]),
  );
  return model({
    nodes,
    initializers: [initializer],
    inputs: [valueInfo('x', FLOAT, [n, n])],
    outputs: [valueInfo('y', FLOAT, [n, n])],
  });
}
