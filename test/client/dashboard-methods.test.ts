import { PixqApiError, PixqClient } from '@pixq/client';
import { expect, it } from 'vitest';
import {
  ApiKeyList,
  BulkActionResult,
  JobList,
  JobTypeList,
  JobTypeView,
  KeyIssued,
  StatsSeries,
  VendorCreated,
  VendorList,
  VendorView,
  WorkerList,
} from '../../src/api/schemas.js';
import { ADMIN_KEY, expectShape, useApi } from '../support/api.js';
import { describeEachStore } from '../support/stores.js';

/** The SDK methods the dashboard uses, each over HTTP against the real routes, answers checked against their schemas. */
describeEachStore('PixqClient dashboard methods', (target) => {
  const api = useApi(target);
  const admin = () => new PixqClient({ baseUrl: api().base, apiKey: ADMIN_KEY });

  it('manages vendors, keys, job types and workers with the admin key', async () => {
    const pixq = admin();
    expect(await pixq.whoami()).toEqual({ kind: 'admin' });
    const created = await pixq.createVendor({ name: `dash-${target.name}`, weight: 2 });
    expectShape(VendorCreated, created);
    expectShape(VendorList, await pixq.vendors());
    expect((await pixq.vendors()).vendors.map((v) => v.id)).toContain(created.vendor.id);
    expectShape(VendorView, await pixq.vendor(created.vendor.id));
    expect((await pixq.updateVendor(created.vendor.id, { maxRunning: 3 })).maxRunning).toBe(3);
    const issued = await pixq.issueKey(created.vendor.id);
    expectShape(KeyIssued, issued);
    const keys = await pixq.vendorKeys(created.vendor.id);
    expectShape(ApiKeyList, keys);
    expect(keys.keys).toHaveLength(2);
    expect((await pixq.revokeKey(created.vendor.id, issued.id)).revokedAt).toEqual(expect.any(String));
    expectShape(JobTypeView, await pixq.pauseType('noop'));
    expect((await pixq.resumeType('noop')).paused).toBe(false);
    expect((await pixq.configureJobType('noop', { maxRunning: 5 })).maxRunning).toBe(5);
    const types = await pixq.jobTypes();
    expectShape(JobTypeList, types);
    expect(types.available).toContain('noop');
    expectShape(WorkerList, await pixq.workers());

    const vendor = new PixqClient({ baseUrl: api().base, apiKey: created.apiKey });
    expect(await vendor.whoami()).toEqual({
      kind: 'vendor',
      vendor: { id: created.vendor.id, name: created.vendor.name },
    });
    await expect(vendor.vendors()).rejects.toMatchObject({ status: 403, code: 'forbidden' });
    const revoked = new PixqClient({ baseUrl: api().base, apiKey: issued.apiKey });
    await expect(revoked.whoami()).rejects.toBeInstanceOf(PixqApiError);
  });

  it('lists, counts, cancels and retries on a filter, and reads the series', async () => {
    const { key, id } = await api().vendor();
    const pixq = new PixqClient({ baseUrl: api().base, apiKey: key });
    const a = await pixq.submit({ type: 'noop', metadata: { recordId: 'x-1', lot: 7 } });
    await pixq.submit({ type: 'noop', metadata: { recordId: 'x-2', lot: 7 } });
    const page = await pixq.listJobs({ metadata: ['recordId=x-1'] });
    expectShape(JobList, page);
    expect(page.jobs.map((j) => j.id)).toEqual([a.id]);
    expect(await pixq.countJobs({ metadata: ['lot=7'] })).toEqual({ count: 2 });
    expect(await pixq.countJobs({ metadata: ['lot=7', 'recordId=x-2'] })).toEqual({ count: 1 });
    const cancelled = await pixq.cancelMatching({ metadata: ['lot=7'] });
    expectShape(BulkActionResult, cancelled);
    expect(cancelled).toEqual({ matched: 2, changed: 2, more: false });
    expect(await pixq.retryMatching({ metadata: ['lot=7'], state: 'cancelled' })).toEqual({
      matched: 2,
      changed: 2,
      more: false,
    });
    const series = await pixq.statsSeries({ minutes: 10 });
    expectShape(StatsSeries, series);
    expect(series.buckets).toHaveLength(10);
    // The admin key sees the vendor's jobs through the same calls, narrowed with vendorId.
    expect((await admin().listJobs({ vendorId: id, metadata: ['lot=7'] })).jobs).toHaveLength(2);
    expect(await admin().countJobs({ vendorId: id })).toEqual({ count: 2 });
    // The older iterator pages through listJobs.
    const seen = [];
    for await (const job of pixq.jobs({ limit: 1 })) seen.push(job.id);
    expect(seen).toHaveLength(2);
  });
});
