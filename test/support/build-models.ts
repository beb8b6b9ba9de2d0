import pino from 'pino';
import { loadConfig } from '../../src/config.js';
import { DEFAULT_MODEL, MODELS } from '../../src/processors/models/catalog.js';
import { locateModel } from '../../src/processors/models/locate.js';
import { TEST_MODELS_DIR } from './models.js';

/**
 * vitest global setup: the default model is made ready in TEST_MODELS_DIR before the first test, so no test's
 * timeout has to cover its build (a minute, the first time on a machine; a checksum after that).
 */
export default async function setup(): Promise<void> {
  const config = loadConfig({ PIXQ_MODELS_DIR: TEST_MODELS_DIR, PIXQ_LOG_LEVEL: 'silent' });
  const started = performance.now();
  await locateModel(MODELS[DEFAULT_MODEL], config, pino({ level: 'warn' }));
  console.log(
    `test models: ${DEFAULT_MODEL} ready in ${TEST_MODELS_DIR} after ${Math.round(performance.now() - started)} ms`,
  );
}
