import { loadConfig } from '../config.js';
import { createLogger } from '../log.js';
import { DEFAULT_MODEL, MODEL_NAMES, MODELS, type ModelName } from '../processors/models/catalog.js';
import { locateModel } from '../processors/models/locate.js';

export const MODELS_USAGE = `models prepare [MODEL ...]
                        make remove-background's model files ready in PIXQ_MODELS_DIR before a job needs them
                        (default: ${DEFAULT_MODEL}, whose first build takes about a minute); prints each file`;

const isModelName = (name: string): name is ModelName => (MODEL_NAMES as string[]).includes(name);

/**
 * `pixq models prepare`: the same assembly, int8 build or download the first job would do, done ahead of time, so
 * that a deployment can build the files once (an image build step, or one process before the workers start on a
 * shared directory) instead of its first job waiting for it, or several workers each building the same file.
 */
export async function modelsCommand(args: string[]): Promise<void> {
  const [action, ...names] = args;
  if (action !== 'prepare' || !names.every(isModelName)) {
    const unknown = names.filter((name) => !isModelName(name));
    if (unknown.length) console.error(`unknown model ${unknown.join(', ')}; the models are ${MODEL_NAMES.join(', ')}`);
    console.error(`usage: pixq ${MODELS_USAGE}`);
    process.exitCode = 2;
    return;
  }
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  for (const name of names.length ? names : [DEFAULT_MODEL]) {
    const started = performance.now();
    const file = await locateModel(MODELS[name], config, log);
    console.log(`${name}: ${file} (ready after ${Math.round(performance.now() - started)} ms)`);
  }
}
