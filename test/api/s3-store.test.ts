import { readdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageForm, jpeg, startApi, waitForJob, type ApiHarness } from '../support/api.js';
import { startS3Server, type S3Server } from '../support/s3.js';
import { sqliteTarget } from '../support/stores.js';

/** A job served end to end with its blobs in an S3 bucket (s3rver on loopback): submit, run, download. */
describe('the S3 blob store behind the API', () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startS3Server();
  });
  afterAll(async () => {
    await s3?.stop();
  });

  async function runTransform(api: ApiHarness) {
    const { key } = await api.vendor();
    await api.startWorker();
    const input = await jpeg(80, 60);
    const submitted = await api.call('POST', '/v1/jobs', {
      key,
      form: imageForm([{ bytes: input }], { type: 'transform', options: '{"resize":{"width":40},"format":"png"}' }),
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    const job = await waitForJob(api, key, submitted.body.id, ['succeeded', 'failed']);
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    return { key, job, output: job.outputs[0] as { url: string; contentType: string; bytes: number } };
  }

  async function localBlobFiles(api: ApiHarness) {
    const entries = await readdir(path.join(api.dataDir, 'blobs'), { recursive: true, withFileTypes: true }).catch(
      () => [],
    );
    return entries.filter((e) => e.isFile());
  }

  it('stores input and output in the bucket and hands out a link that redirects to a presigned GET', async () => {
    const api = await startApi(sqliteTarget, s3.env);
    try {
      const { key, job, output } = await runTransform(api);
      const stored = await s3.keys();
      const outputKey = /^\/v1\/blobs\/([0-9a-f]{64})\?/.exec(output.url)![1];
      expect(stored).toContain(outputKey);
      expect(await localBlobFiles(api)).toEqual([]);

      const redirect = await fetch(api.base + output.url, { redirect: 'manual' });
      expect(redirect.status).toBe(302);
      expect(redirect.headers.get('location')).toMatch(
        new RegExp(`^${s3.endpoint}/${s3.bucket}/${outputKey}\\?.*X-Amz-Signature=`),
      );
      const download = await fetch(api.base + output.url);
      expect(download.status).toBe(200);
      expect(download.headers.get('content-type')).toBe('image/png');
      const bytes = Buffer.from(await download.arrayBuffer());
      expect(bytes.length).toBe(output.bytes);
      expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 40, height: 30 });

      // The vendor's own output route streams the same bytes from the bucket.
      const direct = await api.call('GET', `/v1/jobs/${job.id}/output`, { key });
      expect(direct.status).toBe(200);
      expect(direct.raw.equals(bytes)).toBe(true);
    } finally {
      await api.close();
    }
  });

  it('with PIXQ_S3_PRESIGN=0 pixq streams the bucket through its own signed link', async () => {
    const api = await startApi(sqliteTarget, { ...s3.env, PIXQ_S3_PRESIGN: '0', PIXQ_S3_PREFIX: 'private/' });
    try {
      const { output } = await runTransform(api);
      const outputKey = /^\/v1\/blobs\/([0-9a-f]{64})\?/.exec(output.url)![1];
      expect(await s3.keys()).toContain(`private/${outputKey}`);
      const download = await fetch(api.base + output.url, { redirect: 'manual' });
      expect(download.status).toBe(200);
      expect(download.headers.get('content-type')).toBe('image/png');
      const bytes = Buffer.from(await download.arrayBuffer());
      expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 40 });
      // A tampered link is still refused by pixq before the bucket is asked.
      expect(
        (
          await fetch(api.base + output.url.replace(/sig=(.)/, (_, c) => `sig=${c === 'A' ? 'B' : 'A'}`), {
            redirect: 'manual',
          })
        ).status,
      ).toBe(403);
    } finally {
      await api.close();
    }
  });
});
