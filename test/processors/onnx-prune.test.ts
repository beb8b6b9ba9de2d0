import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureImglyModel } from '../../src/processors/models/imgly-models.js';
import { widenFp16Model } from '../../src/processors/models/onnx-fp32.js';
import { graphOf, graphOutputs, readGraph } from '../../src/processors/models/onnx-graph.js';
import { keepOutputs } from '../../src/processors/models/onnx-prune.js';
import { OnnxHost } from '../../src/processors/models/onnx-worker.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pixq-prune-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('keepOutputs', () => {
  it('cuts the widened ISNet to its mask output, which comes out bit for bit the same', async () => {
    const widened = widenFp16Model(await readFile(await ensureImglyModel(dir, '/models/medium', false)));
    const pruned = keepOutputs(widened, 1);
    const [before, after] = [widened, pruned].map((m) => ({
      outputs: graphOutputs(graphOf(m)),
      nodes: readGraph(graphOf(m)).nodes,
    }));
    expect(before.outputs).toHaveLength(12);
    expect(after.outputs).toEqual(before.outputs.slice(0, 1));
    // Gone: the other side outputs' Convs, Resizes and Sigmoids, and the float-to-float Casts of widening.
    const count = (nodes: typeof before.nodes, op: string) => nodes.filter((n) => n.op === op).length;
    expect(count(after.nodes, 'Sigmoid')).toBe(1);
    expect(count(after.nodes, 'Cast')).toBeLessThanOrEqual(1);
    expect(count(after.nodes, 'Conv')).toBe(count(before.nodes, 'Conv') - 5);

    const files = [path.join(dir, 'widened.onnx'), path.join(dir, 'pruned.onnx')];
    await writeFile(files[0], widened);
    await writeFile(files[1], pruned);
    const input = {
      data: Float32Array.from({ length: 3 * 1024 * 1024 }, (_, i) => Math.sin(i / 97) * 0.45),
      dims: [1, 3, 1024, 1024],
    };
    const masks: Float32Array[] = [];
    for (const file of files) {
      const host = await OnnxHost.open(file, { provider: 'cpu', threads: 2 });
      try {
        masks.push((await host.run({ [host.inputNames[0]]: input }, host.outputNames[0])).data);
      } finally {
        await host.close();
      }
    }
    expect(masks[1].length).toBe(1024 * 1024);
    expect(Buffer.from(masks[1].buffer).equals(Buffer.from(masks[0].buffer))).toBe(true);
  }, 300_000);
});
