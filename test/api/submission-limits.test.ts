import { expect, it } from 'vitest';
import { JOB_LIMITS, type JobLimit } from '../../src/engine/limits.js';
import { expectProblem, useApi } from '../support/api.js';
import { rejection } from '../support/errors.js';
import { describeEachStore } from '../support/stores.js';

/**
 * One definition of what a job may ask for: the API's request schema and the engine's enqueue refuse exactly
 * the same values. The probes straddle both bounds of every limit and the bounds each layer had on its own
 * before (maxAttempts 10 and 100, timeoutMs 100, 1000, 1 h and 24 h), so any second definition shows.
 */
const PROBES: Record<Exclude<JobLimit, 'delayMs'>, number[]> = {
  maxAttempts: [0, 1, 10, 11, 100, 101],
  timeoutMs: [99, 100, 999, 1000, 3_600_000, 3_600_001, 86_400_000, 86_400_001],
  priority: [-1001, -1000, 1000, 1001],
};

describeEachStore('submission limits', (target) => {
  const api = useApi(target);

  for (const [field, values] of Object.entries(PROBES) as [keyof typeof PROBES, number[]][]) {
    it(`${field}: the API and the engine accept exactly ${JOB_LIMITS[field].min}..${JOB_LIMITS[field].max}`, async () => {
      const { id: vendorId, key } = await api().vendor();
      const { min, max } = JOB_LIMITS[field];
      for (const value of values) {
        const inRange = value >= min && value <= max;
        const res = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop', [field]: value } });
        if (inRange) expect(res.status, `API ${field}=${value}: ${JSON.stringify(res.body)}`).toBe(202);
        else expectProblem(res, 400, 'validation_failed');

        const enqueued = api().services.engine.jobs.enqueue(vendorId, [{ type: 'noop', [field]: value }]);
        if (inRange) {
          const { jobs } = await enqueued;
          expect(jobs[0][field], `engine ${field}=${value}`).toBe(value);
        } else {
          const err = await rejection(enqueued);
          expect(err.code, `engine ${field}=${value}`).toBe('validation_failed');
          expect(err.message).toContain(`from ${min} to ${max}`);
        }
      }
    });
  }
});
