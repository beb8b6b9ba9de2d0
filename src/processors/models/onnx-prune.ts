import {
  GRAPH,
  graphOf,
  graphOutputs,
  MODEL_GRAPH,
  readNode,
  renameInputs,
  tensorName,
  valueInfoName,
} from './onnx-graph.js';
import { fields, lenField, rewrite, WIRE_LEN } from './protobuf.js';

const FLOAT = 1;

/**
 * The model answering only its first `count` outputs. ISNet declares twelve (six side masks and six feature maps
 * for training), and onnxruntime computes, and copies out through a Cast, every declared output on every run,
 * though pixq reads only the first. Nodes that fed only the dropped outputs go, with their initializers, and so
 * do the float-to-float Casts left by widening (a Cast that names a graph output stays: the name is the output).
 */
export function keepOutputs(model: Buffer, count: number): Buffer {
  const graph = graphOf(model);
  const kept = new Set(graphOutputs(graph).slice(0, count));
  const nodes = [...fields(graph)]
    .filter((f) => f.no === GRAPH.node && f.wire === WIRE_LEN)
    .map((f) => readNode(f.bytes));

  const alias = new Map<string, string>();
  const resolve = (name: string): string => alias.get(name) ?? name;
  for (const node of nodes) {
    if (node.op === 'Cast' && node.ints?.to === FLOAT && !kept.has(node.outputs[0]))
      alias.set(node.outputs[0], resolve(node.inputs[0]));
  }
  // Walking back from the kept outputs marks every tensor they need.
  const producer = new Map(nodes.flatMap((node, index) => node.outputs.map((out) => [out, index] as const)));
  const needed = new Set<string>();
  const live = new Set<number>();
  const visit = (tensor: string) => {
    const name = resolve(tensor);
    if (needed.has(name)) return;
    needed.add(name);
    const index = producer.get(name);
    if (index === undefined || live.has(index)) return;
    live.add(index);
    for (const input of nodes[index].inputs) if (input) visit(input);
  };
  for (const output of kept) visit(output);

  let index = 0;
  const edited = rewrite(graph, (f) => {
    if (f.wire !== WIRE_LEN) return undefined;
    if (f.no === GRAPH.node)
      return live.has(index++) ? lenField(GRAPH.node, renameInputs(f.bytes, resolve)) : Buffer.alloc(0);
    if (f.no === GRAPH.initializer) return needed.has(tensorName(f.bytes)) ? undefined : Buffer.alloc(0);
    if (f.no === GRAPH.output) return kept.has(valueInfoName(f.bytes)) ? undefined : Buffer.alloc(0);
    if (f.no === GRAPH.valueInfo) return needed.has(valueInfoName(f.bytes)) ? undefined : Buffer.alloc(0);
    return undefined;
  });
  return rewrite(model, (f) =>
    f.no === MODEL_GRAPH && f.wire === WIRE_LEN ? lenField(MODEL_GRAPH, edited) : undefined,
  );
}
