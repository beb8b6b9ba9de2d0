import type { ModelSpec } from './catalog.js';
import type { TensorData } from './onnx-worker.js';

/** Interleaved RGB bytes (size x size x 3) to the planar float tensor [1, 3, size, size] the model expects. */
export function toInputTensor(rgb: Uint8Array, spec: ModelSpec): TensorData {
  const plane = spec.size * spec.size;
  if (rgb.length !== plane * 3) throw new Error(`expected ${plane * 3} RGB bytes, got ${rgb.length}`);
  const data = new Float32Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const mean = spec.mean[c];
    const scale = 1 / spec.std[c];
    const offset = c * plane;
    for (let i = 0; i < plane; i++) data[offset + i] = (rgb[i * 3 + c] - mean) * scale;
  }
  return { data, dims: [1, 3, spec.size, spec.size] };
}

/** The model's first output channel as 0..255 alpha at model resolution. */
export function toMask(output: TensorData, spec: ModelSpec): Uint8Array {
  const plane = spec.size * spec.size;
  if (output.data.length < plane) throw new Error(`model output has ${output.data.length} values, expected ${plane}`);
  const values = output.data.subarray(0, plane);
  if (spec.output === 'logits') for (let i = 0; i < plane; i++) values[i] = 1 / (1 + Math.exp(-values[i]));
  let low = 0;
  let range = 1;
  if (spec.stretch) {
    let min = Infinity;
    let max = -Infinity;
    for (const v of values) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    // A flat prediction (nothing found) stays flat instead of being blown up into noise.
    if (max - min > 1e-6) [low, range] = [min, max - min];
  }
  const mask = new Uint8Array(plane);
  for (let i = 0; i < plane; i++) mask[i] = Math.round(Math.min(1, Math.max(0, (values[i] - low) / range)) * 255);
  return mask;
}
