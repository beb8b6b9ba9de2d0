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
 * optimizer can fold DequantizeLinear -> Conv -> QuantizeLinear into one QLinearConv, which runs on VNNI, and
 * the pooling, upsampling, concatenation and residual additions between them run on uint8 too (planQuantization).
 * Bumping QUANTIZER_VERSION rebuilds every cached quantized model.
 */
export const QUANTIZER_VERSION = 2;

export interface QuantizationPlan {
  /** The Conv nodes to run in int8. */
  convs: GraphNode[];
  /** The activations whose scale calibration sets, in graph order. */
  tensors: string[];
  /**
   * Activations that take another's scale and zero point: the outputs of MaxPool and Resize. onnxruntime runs those
   * two directly on uint8 when the pairs on both sides agree, so the int8 region does not stop at them.
   */
  sameAs: Map<string, string>;
}

export interface Range {
  min: number;
  max: number;
}

/** Name of the one output of the calibration graph: each planned tensor's low then high percentile, in plan order. */
export const RANGES_OUTPUT = 'pixq_calibration_ranges';

const dq = (tensor: string) => `${tensor}_dequantized`;
const q = (tensor: string) => `${tensor}_quantized`;

/**
 * Which Convs to quantize: all whose weights are initializers, except the one that reads the image itself (the
 * first layer sees raw pixels, whose fine steps int8 would coarsen) and the single-channel side outputs that
 * become the mask (their error lands directly on the edge). Between quantized Convs the activations stay uint8:
 * a MaxPool or Resize of a quantized tensor, and a Concat or Add of quantized tensors, get pairs too, which
 * onnxruntime turns into uint8 MaxPool/Resize, QLinearConcat and QLinearAdd. Without them every int8 Conv would
 * convert its output back to float and the next one convert it again.
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
  const isInt8Conv = (node: GraphNode) => {
    if (node.op !== 'Conv') return false;
    const weight = initializers.get(node.inputs[1]);
    const bias = node.inputs[2] ? initializers.get(node.inputs[2]) : undefined;
    if (!weight || (node.inputs[2] && !bias)) return false;
    return weight.dims[0] > 1 && !readsImage(node.inputs[0]);
  };
  const convs: GraphNode[] = [];
  const calibrated = new Set<string>();
  const sameAs = new Map<string, string>();
  const paired = (tensor: string) => calibrated.has(tensor) || sameAs.has(tensor);
  for (const node of nodes) {
    if (isInt8Conv(node)) {
      convs.push(node);
      if (!paired(node.inputs[0])) calibrated.add(node.inputs[0]);
      const after = readers.get(node.outputs[0]) ?? [];
      calibrated.add(after.length === 1 && after[0].op === 'Relu' ? after[0].outputs[0] : node.outputs[0]);
    } else if ((node.op === 'MaxPool' || node.op === 'Resize') && paired(node.inputs[0])) {
      sameAs.set(node.outputs[0], sameAs.get(node.inputs[0]) ?? node.inputs[0]);
    } else if ((node.op === 'Concat' || node.op === 'Add') && node.inputs.every(paired)) {
      calibrated.add(node.outputs[0]);
    }
  }
  const inOrder = [...new Set(nodes.flatMap((node) => node.outputs))].filter((tensor) => calibrated.has(tensor));
  return { convs, tensors: inOrder, sameAs };
}

/**
 * Every STRIDE-th value of a tensor is what the percentiles are taken over: an activation at 1024 px holds up to
 * 67 million values, and TopK over all of them would make calibration minutes per image. 7 is prime, so the
 * sample does not line up with rows or channels.
 */
const STRIDE = 7;

/**
 * The model with each planned tensor's range as one extra output, RANGES_OUTPUT: the values `tail` of the way in
 * from each end (of a strided sample). Unlike the min and max, they ignore the few outliers that would otherwise
 * stretch the scale and leave the bulk of the values with a handful of steps (measured in docs/processors.md).
 */
export function calibrationModel(model: Buffer, plan: QuantizationPlan, tail: number): Buffer {
  const extra: Buffer[] = [
    initializerField('pixq_flat', DATA_TYPE.int64, [1], BigInt64Array.of(-1n)),
    initializerField('pixq_one', DATA_TYPE.int64, [1], BigInt64Array.of(1n)),
    initializerField('pixq_zero', DATA_TYPE.int64, [1], BigInt64Array.of(0n)),
    initializerField('pixq_end', DATA_TYPE.int64, [1], BigInt64Array.of(2n ** 62n)),
    initializerField('pixq_stride', DATA_TYPE.int64, [1], BigInt64Array.of(BigInt(STRIDE))),
    initializerField('pixq_tail', DATA_TYPE.float, [], Float32Array.of(tail)),
  ];
  const stats: string[] = [];
  const node = (op: string, name: string, inputs: string[], attributes: Buffer[] = []) => {
    extra.push(nodeField({ op, name, inputs, outputs: [name] }, attributes));
    return name;
  };
  for (const tensor of plan.tensors) {
    const flat = node('Reshape', `${tensor}_flat`, [tensor, 'pixq_flat']);
    const sample = node('Slice', `${tensor}_sample`, [flat, 'pixq_zero', 'pixq_end', 'pixq_zero', 'pixq_stride']);
    const size = node(
      'Cast',
      `${tensor}_size_float`,
      [node('Size', `${tensor}_size`, [sample])],
      [intAttribute('to', DATA_TYPE.float)],
    );
    const count = node('Ceil', `${tensor}_tail_count`, [node('Mul', `${tensor}_tail_size`, [size, 'pixq_tail'])]);
    const k = node('Max', `${tensor}_k`, [
      node('Reshape', `${tensor}_k_vector`, [
        node('Cast', `${tensor}_k_int`, [count], [intAttribute('to', DATA_TYPE.int64)]),
        'pixq_one',
      ]),
      'pixq_one',
    ]);
    const topK = (largest: number) => {
      const name = `${tensor}_top_${largest}`;
      extra.push(
        nodeField({ op: 'TopK', name, inputs: [sample, k], outputs: [name, `${name}_indices`] }, [
          intAttribute('axis', 0),
          intAttribute('largest', largest),
        ]),
      );
      return name;
    };
    const keep = [intAttribute('keepdims', 1)];
    stats.push(
      node('ReduceMax', `${tensor}_low`, [topK(0)], keep),
      node('ReduceMin', `${tensor}_high`, [topK(1)], keep),
    );
  }
  extra.push(
    nodeField({ op: 'Concat', name: RANGES_OUTPUT, inputs: stats, outputs: [RANGES_OUTPUT] }, [
      intAttribute('axis', 0),
    ]),
  );
  extra.push(floatOutputField(RANGES_OUTPUT));
  return withGraph(model, (graph) => Buffer.concat([graph, ...extra]));
}

/**
 * Folds each image's ranges (plan order) into one per tensor: the mean over the images. The widest instead lets
 * one unusual image set the scale for all (it measured worse on the portraits, docs/processors.md).
 */
export function mergeRanges(plan: QuantizationPlan, perImage: Float32Array[]): Map<string, Range> {
  const ranges = new Map<string, Range>();
  plan.tensors.forEach((tensor, i) => {
    let min = 0;
    let max = 0;
    for (const values of perImage) {
      min += values[2 * i] / perImage.length;
      max += values[2 * i + 1] / perImage.length;
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
  // A MaxPool's or Resize's output uses its input's scale and zero point (planQuantization).
  const scaleOwner = (tensor: string) => plan.sameAs.get(tensor) ?? tensor;
  const quantizedWeights = new Set<string>();
  const weightNodes: Buffer[] = [];
  const added: Buffer[] = [];
  for (const conv of plan.convs) {
    const [input, weightName, biasName] = conv.inputs;
    const inputScale = params.get(scaleOwner(input))!.scale;
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
  const pair = (tensor: string) => {
    const affine = [`${scaleOwner(tensor)}_scale`, `${scaleOwner(tensor)}_zero_point`];
    return [
      nodeField({ op: 'QuantizeLinear', name: q(tensor), inputs: [tensor, ...affine], outputs: [q(tensor)] }),
      nodeField({ op: 'DequantizeLinear', name: dq(tensor), inputs: [q(tensor), ...affine], outputs: [dq(tensor)] }),
    ];
  };
  const isPaired = (name: string) => params.has(scaleOwner(name));
  const rename = (name: string) => (isPaired(name) ? dq(name) : name);
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
      for (const output of node.outputs) if (isPaired(output)) parts.push(...pair(output));
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
    for (let i = c * per; i < (c + 1) * per; i++)
      values[i] = Math.max(-127, Math.min(127, Math.round(weight.values[i] / scale)));
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
      {
        op: 'DequantizeLinear',
        name: `${name}_dequantize`,
        inputs: [q(name), `${name}_scale`, `${name}_zero_point`],
        outputs: [name],
      },
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
  return rewrite(model, (f) =>
    f.no === MODEL_GRAPH && f.wire === WIRE_LEN ? lenField(MODEL_GRAPH, edit(f.bytes)) : undefined,
  );
}
