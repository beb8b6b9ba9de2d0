import { Type } from '@sinclair/typebox';
import type { Processor } from './types.js';

const options = Type.Object(
  { ms: Type.Integer({ minimum: 0, maximum: 600_000, default: 0, description: 'How long to sleep, in ms.' }) },
  { additionalProperties: false },
);

/** Sleeps `ms` and succeeds: for tests and benchmarks of the queue itself (enabled by PIXQ_ENABLE_NOOP=1). */
export const noop: Processor<typeof options> = {
  type: 'noop',
  optionsSchema: options,
  needsInput: false,
  async run({ options: { ms }, signal }) {
    if (ms > 0) await sleep(ms, signal);
    signal.throwIfAborted();
    return { outputs: [], result: { sleptMs: ms } };
  },
};

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', abort, { once: true });
    function done() {
      signal.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal.reason);
    }
  });
}
