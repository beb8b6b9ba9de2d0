import {
  DATA_TYPE,
  floatOutputField,
  GRAPH,
  graphOf,
  initializerField,
  intAttribute,
  MODEL_GRAPH,
  nodeField,
  readGraph,
  readNode,
  renameInputs,
  tensorName,
  type FloatTensor,
  type GraphNode,
} from './onnx-graph.js';
import { lenField, rewrite, WIRE_LEN } from './protobuf.js';

/**
 * Static int8 quantization of a float32 ONNX graph in QDQ form: each quantized Conv reads its activation through
 * QuantizeLinear/DequantizeLinear (uint8, asymmetric, scale from calibration) and its weights through a
 * DequantizeLinear of per-output-channel symmetric int8 values (bias int32 at input scale x weight scale).
 * A quantized Conv's output (after its Relu, when a Relu is its only reader) gets a pair too, so onnxruntime's
 * optimizer can fold DequantizeLinear -> Conv -> QuantizeLinear into one QLinearConv, which runs on VNNI.
 * Bumping QUANTIZER_VERSION rebuilds every cached quantized model.
 */
export const QUANTIZER_VERSION = 1;

export interface QuantizationPlan {
  /** The Conv nodes to run in int8. */
  convs: GraphNode[];
  /** The activations that get a QuantizeLinear/DequantizeLinear pair, in graph order. */
  tensors: string[];
}

export interface Range {
  min: number;
  max: number;
}

/** Name of the one output of the calibration graph: each planned tensor's min then max, in plan order. */
export const RANGES_OUTPUT = 'pixq_calibration_ranges';

const dq = (tensor: string) => `${tensor}_dequantized`;
const q = (tensor: string) => `${tensor}_quantized`;

/**
 * Which Convs to quantize: all whose weights are initializers, except those that read the image itself (the
 * first layer sees raw pixels, whose fine steps int8 would coarsen) and the single-channel side outputs that
 * become the mask (their error lands directly on the edge).
 */
export function planQuantization(model: Buffer): QuantizationPlan {
  const { nodes, initializers } = readGraph(graphOf(model));
  const readers = new Map<string, GraphNode[]>();
  const producers = new Map<string, GraphNode>();
  for (const node of nodes) {
    for (const input of node.inputs) readers.set(input, [...(readers.get(input) ?? []), node]);
    for (const output of node.outputs) producers.set(output, node);
  }
  const readsImage = (tensor: string): boolean => {
    const producer = producers.get(tensor);
    if (!producer) return !initializers.has(tensor);
    return producer.op === 'Cast' && readsImage(producer.inputs[0]);
  };
  const convs = nodes.filter((node) => {
    if (node.op !== 'Conv') return false;
    const weight = initializers.get(node.inputs[1]);
    const bias = node.inputs[2] ? initializers.get(node.inputs[2]) : undefined;
    if (!weight || (node.inputs[2] && !bias)) return false;
    return weight.dims[0] > 1 && !readsImage(node.inputs[0]);
  });
  const wanted = new Set<string>();
  for (const conv of convs) {
    wanted.add(conv.inputs[0]);
    const after = readers.get(conv.outputs[0]) ?? [];
    wanted.add(after.length === 1 && after[0].op === 'Relu' ? after[0].outputs[0] : conv.outputs[0]);
  }
  const inOrder = [...new Set(nodes.flatMap((node) => node.outputs))].filter((tensor) => wanted.has(tensor));
  return { convs, tensors: inOrder };
}

/** The model with each planned tensor's min and max (over the whole tensor) as one extra output, RANGES_OUTPUT. */
export function calibrationModel(model: Buffer, plan: QuantizationPlan): Buffer {
  const extra: Buffer[] = [];
  const reduced: string[] = [];
  for (const tensor of plan.tensors) {
    for (const op of ['ReduceMin', 'ReduceMax']) {
      const output = `${tensor}_${op}`;
      extra.push(nodeField({ op, name: output, inputs: [tensor], outputs: [output] }, [intAttribute('keepdims', 1)]));
      reduced.push(output);
    }
  }
  extra.push(nodeField({ op: 'Concat', name: RANGES_OUTPUT, inputs: reduced, outputs: [RANGES_OUTPUT] }, [intAttribute('axis', 0)]));
  extra.push(floatOutputField(RANGES_OUTPUT));
  return withGraph(model, (graph) => Buffer.concat([graph, ...extra]));
}

/** Folds per-image [min, max, min, max, ...] (plan order) into one range per tensor: the widest seen. */
export function mergeRanges(plan: QuantizationPlan, perImage: Float32Array[]): Map<string, Range> {
  const ranges = new Map<string, Range>();
  plan.tensors.forEach((tensor, i) => {
    let min = Infinity;
    let max = -Infinity;
    for (const values of perImage) {
      min = Math.min(min, values[2 * i]);
      max = Math.max(max, values[2 * i + 1]);
    }
    ranges.set(tensor, { min, max });
  });
  return ranges;
}

interface Affine {
  scale: number;
  zeroPoint: number;
}

/** uint8 with zero exactly representable (padding and Relu's floor are zeros). */
function activationParams(range: Range): Affine {
  const min = Math.min(0, range.min);
  const max = Math.max(0, range.max);
  const scale = max > min ? (max - min) / 255 : 1;
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-min / scale))) };
}

/** Rewrites the model per `plan` with activation scales from `ranges`. */
export function quantizeModel(model: Buffer, plan: QuantizationPlan, ranges: Map<string, Range>): Buffer {
  const { initializers } = readGraph(graphOf(model));
  const params = new Map<string, Affine>();
  for (const tensor of plan.tensors) {
    const range = ranges.get(tensor);
    if (!range) throw new Error(`no calibration range for ${tensor}`);
    params.set(tensor, activationParams(range));
  }
  const quantizedWeights = new Set<string>();
  const weightNodes: Buffer[] = [];
  const added: Buffer[] = [];
  for (const conv of plan.convs) {
    const [input, weightName, biasName] = conv.inputs;
    const inputScale = params.get(input)!.scale;
    const weight = quantizeWeight(initializers.get(weightName)!);
    added.push(...dequantized(weightName, DATA_TYPE.int8, weight.dims, weight.values, weight.scales, weightNodes));
    quantizedWeights.add(weightName);
    if (biasName) {
      const bias = initializers.get(biasName)!;
      const scales = weight.scales.map((s) => s * inputScale);
      const values = Int32Array.from(bias.values, (b, c) => clampInt32(Math.round(b / scales[c])));
      added.push(...dequantized(biasName, DATA_TYPE.int32, bias.dims, values, scales, weightNodes));
      quantizedWeights.add(biasName);
    }
  }
  for (const [tensor, { scale, zeroPoint }] of params) {
    added.push(initializerField(`${tensor}_scale`, DATA_TYPE.float, [], Float32Array.of(scale)));
    added.push(initializerField(`${tensor}_zero_point`, DATA_TYPE.uint8, [], Uint8Array.of(zeroPoint)));
  }
  const pair = (tensor: string) => [
    nodeField({ op: 'QuantizeLinear', name: q(tensor), inputs: [tensor, `${tensor}_scale`, `${tensor}_zero_point`], outputs: [q(tensor)] }),
    nodeField({ op: 'DequantizeLinear', name: dq(tensor), inputs: [q(tensor), `${tensor}_scale`, `${tensor}_zero_point`], outputs: [dq(tensor)] }),
  ];
  const rename = (name: string) => (params.has(name) ? dq(name) : name);
  let first = true;
  return withGraph(model, (graph) => {
    const edited = rewrite(graph, (f) => {
      if (f.wire !== WIRE_LEN) return undefined;
      if (f.no === GRAPH.initializer && quantizedWeights.has(tensorName(f.bytes))) return Buffer.alloc(0);
      if (f.no !== GRAPH.node) return undefined;
      const node = readNode(f.bytes);
      const parts = first ? [...weightNodes] : [];
      first = false;
      parts.push(lenField(GRAPH.node, renameInputs(f.bytes, rename)));
      for (const output of node.outputs) if (params.has(output)) parts.push(...pair(output));
      return Buffer.concat(parts);
    });
    return Buffer.concat([edited, ...added]);
  });
}

/**
 * Per output channel (axis 0) symmetric int8 in [-127, 127]: zero point 0, so onnxruntime's u8s8 kernels apply,
 * and -128 is left out so that the sum of two products cannot overflow int16 on CPUs without VNNI.
 */
function quantizeWeight(weight: FloatTensor): { dims: number[]; values: Int8Array; scales: Float32Array } {
  const channels = weight.dims[0];
  const per = weight.values.length / channels;
  const scales = new Float32Array(channels);
  const values = new Int8Array(weight.values.length);
  for (let c = 0; c < channels; c++) {
    let peak = 0;
    for (let i = c * per; i < (c + 1) * per; i++) peak = Math.max(peak, Math.abs(weight.values[i]));
    const scale = peak > 0 ? peak / 127 : 1;
    scales[c] = scale;
    for (let i = c * per; i < (c + 1) * per; i++) values[i] = Math.max(-127, Math.min(127, Math.round(weight.values[i] / scale)));
  }
  return { dims: weight.dims, values, scales };
}

/**
 * Initializers holding `values` quantized with per-channel `scales` (zero points 0), and into `nodes` the
 * DequantizeLinear that gives back the original name, so the Conv that reads it needs no edit.
 */
function dequantized(
  name: string,
  type: number,
  dims: number[],
  values: Int8Array | Int32Array,
  scales: Float32Array,
  nodes: Buffer[],
): Buffer[] {
  const zeros = type === DATA_TYPE.int8 ? new Int8Array(scales.length) : new Int32Array(scales.length);
  nodes.push(
    nodeField(
      { op: 'DequantizeLinear', name: `${name}_dequantize`, inputs: [q(name), `${name}_scale`, `${name}_zero_point`], outputs: [name] },
      [intAttribute('axis', 0)],
    ),
  );
  return [
    initializerField(q(name), type, dims, values),
    initializerField(`${name}_scale`, DATA_TYPE.float, [scales.length], scales),
    initializerField(`${name}_zero_point`, type, [scales.length], zeros),
  ];
}

const clampInt32 = (v: number) => Math.max(-2147483648, Math.min(2147483647, v));

function withGraph(model: Buffer, edit: (graph: Buffer) => Buffer): Buffer {
  return rewrite(model, (f) => (f.no === MODEL_GRAPH && f.wire === WIRE_LEN ? lenField(MODEL_GRAPH, edit(f.bytes)) : undefined));
}
