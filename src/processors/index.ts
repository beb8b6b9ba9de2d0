import type { Config } from '../config.js';
import { noop } from './noop.js';
import type { Processor } from './types.js';

export type { Processor, ProcessorContext, ProcessorOutput, ProcessorResult, ProgressUpdate } from './types.js';
export { parseOptions } from './options.js';

/** Every processor this build offers, by job type. `noop` only when PIXQ_ENABLE_NOOP=1. */
export function createProcessors(config: Config): Map<string, Processor> {
  const processors: Processor[] = [];
  if (config.enableNoop) processors.push(noop as unknown as Processor);
  return new Map(processors.map((p) => [p.type, p]));
}
