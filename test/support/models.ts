import os from 'node:os';
import path from 'node:path';

/**
 * The model files every test shares, kept between runs like any models directory: the int8 model (a calibration
 * run of about a minute) and the widened fp32 file are built once per machine, by test/support/build-models.ts
 * (vitest's global setup) or the first test that needs one, and checked, not rebuilt, after that (a changed
 * quantizer or package gets a new build key, see int8-models.ts). Tests of the building and caching itself use
 * their own directories.
 */
export const TEST_MODELS_DIR = path.join(os.tmpdir(), 'pixq-test-models');
