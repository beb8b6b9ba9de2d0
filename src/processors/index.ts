import type { Config } from '../config.js';
import { createFaceCrop } from './face-crop.js';
import { createLabelAnalysis } from './label-analysis.js';
import { noop } from './noop.js';
import { createPipeline } from './pipeline.js';
import { createRemoveBackground } from './remove-background.js';
import { createTransform } from './transform.js';
import type { Processor } from './types.js';

export type { Processor, ProcessorContext, ProcessorOutput, ProcessorResult, ProgressUpdate } from './types.js';
export { parseOptions } from './options.js';
export { afterStopping, raceAbort, throwIfAborted } from './abort.js';

/**
 * Every processor this build offers, by job type. Adding one is a file plus a line here.
 * `noop` is only there with PIXQ_ENABLE_NOOP=1 (tests and benchmarks).
 */
export function createProcessors(config: Config): Map<string, Processor> {
  const processors = new Map<string, Processor>();
  const add = (p: Processor) => processors.set(p.type, p);
  add(createTransform(config));
  add(createFaceCrop(config));
  add(createRemoveBackground(config));
  add(createLabelAnalysis(config));
  add(createPipeline((type) => processors.get(type), config));
  if (config.enableNoop) add(noop);
  return processors;
}
