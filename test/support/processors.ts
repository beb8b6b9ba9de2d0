import pino from 'pino';
import { expect } from 'vitest';
import { parseOptions } from '../../src/processors/options.js';
import type { Processor, ProcessorResult, ProgressUpdate } from '../../src/processors/types.js';

export interface JobRun {
  result: ProcessorResult;
  data: Buffer;
  contentType: string;
  stages: ProgressUpdate[];
}

/** Runs one processor job in this process, as a worker would: options parsed, one output stored in memory. */
export async function runJob(
  proc: Processor,
  input: Buffer,
  rawOptions: unknown = {},
  signal: AbortSignal = new AbortController().signal,
  onProgress: (update: ProgressUpdate) => void = () => undefined,
): Promise<JobRun> {
  const stored: { data: Buffer; contentType: string }[] = [];
  const stages: ProgressUpdate[] = [];
  const result = await proc.run({
    input,
    options: parseOptions(proc, rawOptions),
    signal,
    log: pino({ level: 'silent' }),
    progress: (update) => {
      stages.push(update);
      onProgress(update);
    },
    blobs: {
      put: async (data, contentType) => {
        stored.push({ data, contentType });
        return { key: `blob-${stored.length}`, bytes: data.length };
      },
    },
  });
  expect(stored).toHaveLength(1);
  return { result, data: stored[0].data, contentType: stored[0].contentType, stages };
}
