import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PixqClient, PixqApiError } from '@pixq/client';
import { BUILT_IN_TEMPLATES } from '../../src/engine/builtin-templates.js';
import { MAX_TEMPLATE_OPTIONS_BYTES, MAX_TEMPLATES_PER_VENDOR } from '../../src/engine/templates.js';
import { expectProblem, imageForm, jpeg, startApi, waitForJob, type ApiHarness } from '../support/api.js';
import { describeEachStore } from '../support/stores.js';
import { syntheticScene } from '../support/synthetic.js';

const BUILT_IN_NAMES = ['product-cutout-white', 'marketplace-main-white', 'id-photo-35x45', 'thumbnail-400'];
const small = { type: 'transform', options: { resize: { width: 100, height: 100, fit: 'inside' }, format: 'png' } };

describeEachStore('job templates', (target) => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await startApi(target);
  });
  afterAll(async () => {
    await api?.close();
  });

  const create = (key: string, name: string, body: Record<string, unknown> = small) =>
    api.call('POST', '/v1/templates', { key, json: { name, ...body } });
  const upload = async (key: string, bytes?: Buffer) => {
    const res = await api.call('POST', '/v1/uploads', { key, form: imageForm([{ bytes: bytes ?? (await jpeg()) }]) });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id as string;
  };
  /** The job as stored: its resolved type and options (defaults applied), which the job view does not show. */
  const stored = (id: string, vendorId: string) => api.services.engine.jobs.get(id, vendorId);

  it('lists the built-in templates for every vendor, before its own, and reads each by name', async () => {
    const { key } = await api.vendor();
    const list = await api.call('GET', '/v1/templates', { key });
    expect(list.status).toBe(200);
    expect(list.body.templates.map((t: { name: string }) => t.name)).toEqual(BUILT_IN_NAMES);
    for (const name of BUILT_IN_NAMES) {
      const one = await api.call('GET', `/v1/templates/${name}`, { key });
      expect(one.status).toBe(200);
      expect(one.body).toMatchObject({ name, builtIn: true, createdAt: null, updatedAt: null });
      expect(one.body).toEqual(list.body.templates.find((t: { name: string }) => t.name === name));
    }
    expect((await api.call('GET', '/v1/templates/thumbnail-400', { key })).body).toEqual({
      name: 'thumbnail-400',
      type: 'transform',
      options: { resize: { width: 400, height: 400, fit: 'inside' } },
      builtIn: true,
      createdAt: null,
      updatedAt: null,
    });
    expectProblem(await api.call('GET', '/v1/templates'), 401, 'unauthorized');
  });

  it('creates, reads, lists, replaces and deletes a template', async () => {
    const { key } = await api.vendor();
    const made = await create(key, 'small-png');
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(made.headers.get('location')).toBe('/v1/templates/small-png');
    // Stored as given: the defaults are applied when a job is submitted, not frozen into the template.
    expect(made.body).toMatchObject({ name: 'small-png', ...small, builtIn: false, createdAt: expect.any(String) });
    expect(made.body.updatedAt).toBe(made.body.createdAt);
    expect((await api.call('GET', '/v1/templates/small-png', { key })).body).toEqual(made.body);
    await create(key, 'a-first');
    const names = (await api.call('GET', '/v1/templates', { key })).body.templates.map((t: { name: string }) => t.name);
    expect(names).toEqual([...BUILT_IN_NAMES, 'a-first', 'small-png']);

    const replaced = await api.call('PUT', '/v1/templates/small-png', { key, json: { options: { format: 'webp' } } });
    expect(replaced.status, JSON.stringify(replaced.body)).toBe(200);
    expect(replaced.body).toMatchObject({
      type: 'transform',
      options: { format: 'webp' },
      createdAt: made.body.createdAt,
    });
    expect(Date.parse(replaced.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(made.body.createdAt));
    const retyped = await api.call('PUT', '/v1/templates/small-png', {
      key,
      json: { type: 'face-crop', options: { aspect: '1:1' } },
    });
    expect(retyped.body).toMatchObject({ type: 'face-crop', options: { aspect: '1:1' } });
    // A type change alone is checked against the options the template keeps.
    const bad = await api.call('PUT', '/v1/templates/small-png', { key, json: { type: 'transform' } });
    expectProblem(bad, 400, 'validation_failed');
    expect(bad.body.detail).toMatch(/options/);
    expectProblem(await api.call('PUT', '/v1/templates/small-png', { key, json: {} }), 400, 'validation_failed');

    const gone = await api.call('DELETE', '/v1/templates/small-png', { key });
    expect(gone.status).toBe(204);
    expect(gone.raw.length).toBe(0);
    expectProblem(await api.call('GET', '/v1/templates/small-png', { key }), 404, 'not_found');
    expectProblem(await api.call('DELETE', '/v1/templates/small-png', { key }), 404, 'not_found');
    expectProblem(await api.call('PUT', '/v1/templates/small-png', { key, json: { options: {} } }), 404, 'not_found');
  });

  it('refuses a template that could never run, exactly as a submission of its type is refused', async () => {
    const { id: vendorId, key } = await api.vendor();
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ type: 'transform', options: { resize: {} } }, 'validation_failed', /resize/],
      [{ type: 'transform', options: { resize: { width: 0 } } }, 'validation_failed', /options\.resize\.width/],
      [{ type: 'transform', options: { background: 'not-a-colour' } }, 'validation_failed', /background/],
      [{ type: 'face-crop', options: { aspect: 'wide' } }, 'validation_failed', /options\.aspect/],
      [{ type: 'no-such-type', options: {} }, 'unknown_job_type', /no-such-type/],
      [
        { type: 'pipeline', options: { steps: [{ type: 'transform', options: { rotate: 9999 } }] } },
        'validation_failed',
        /steps\[0\]/,
      ],
      [
        { type: 'pipeline', options: { steps: [{ type: 'pipeline' }] } },
        'validation_failed',
        /cannot contain a pipeline/,
      ],
      [{ type: 'pipeline', options: {} }, 'validation_failed', /steps/],
    ];
    for (const [body, code, detail] of cases) {
      const res = await create(key, 'doomed', body);
      expectProblem(res, 400, code);
      expect(res.body.detail).toMatch(detail);
      // The same answer as submitting that type and those options directly.
      const submitted = await api.call('POST', '/v1/jobs', {
        key,
        json: { ...body, input: { url: 'https://example.com/a.jpg' } },
      });
      expect([submitted.status, submitted.body.code]).toEqual([400, code]);
    }
    expectProblem(await create(key, 'has space'), 400, 'validation_failed');
    expectProblem(await create(key, 'x'.repeat(65)), 400, 'validation_failed');
    expectProblem(await create(key, 'extra', { ...small, input: { uploadId: 'u1' } }), 400, 'validation_failed');
    // No processor's schema lets options grow this large, so the engine's own bound is tried directly.
    const huge = { type: 'noop', options: { note: 'x'.repeat(MAX_TEMPLATE_OPTIONS_BYTES) } };
    await expect(api.services.engine.templates.create(vendorId, 'huge', huge)).rejects.toMatchObject({
      code: 'validation_failed',
      message: /at most 16384 bytes/,
    });

    const pipeline = await create(key, 'cut-and-shrink', {
      type: 'pipeline',
      options: {
        steps: [
          { type: 'transform', options: { rotate: 90 } },
          { type: 'transform', options: { resize: { width: 50 } } },
        ],
      },
    });
    expect(pipeline.status, JSON.stringify(pipeline.body)).toBe(201);
    expect((await api.call('GET', '/v1/templates', { key })).body.templates).toHaveLength(BUILT_IN_NAMES.length + 1);
  });

  it('refuses duplicate names and the built-in names, and never changes or deletes a built-in template', async () => {
    const { key } = await api.vendor();
    expect((await create(key, 'mine')).status).toBe(201);
    expectProblem(await create(key, 'mine'), 409, 'conflict');
    for (const name of BUILT_IN_NAMES) {
      expectProblem(await create(key, name), 409, 'conflict');
      expectProblem(
        await api.call('PUT', `/v1/templates/${name}`, { key, json: { options: {} } }),
        409,
        'built_in_template',
      );
      expectProblem(await api.call('DELETE', `/v1/templates/${name}`, { key }), 409, 'built_in_template');
    }
    const thumbnail = BUILT_IN_TEMPLATES.find((t) => t.name === 'thumbnail-400')!;
    expect((await api.call('GET', '/v1/templates/thumbnail-400', { key })).body.options).toEqual(thumbnail.options);
  });

  it(`keeps at most ${MAX_TEMPLATES_PER_VENDOR} templates per vendor`, async () => {
    const { key } = await api.vendor();
    const other = await api.vendor();
    for (let i = 0; i < MAX_TEMPLATES_PER_VENDOR; i++) expect((await create(key, `t${i}`)).status).toBe(201);
    expectProblem(await create(key, 'one-more'), 409, 'too_many_templates');
    // Another vendor's count is its own.
    expect((await create(other.key, 'one-more')).status).toBe(201);
    expect((await api.call('DELETE', '/v1/templates/t0', { key })).status).toBe(204);
    expect((await create(key, 'one-more')).status).toBe(201);
  });

  it("treats another vendor's template as not there: 404 to read, change or delete, unknown to submit by", async () => {
    const a = await api.vendor();
    const b = await api.vendor();
    expect((await create(a.key, 'private')).status).toBe(201);
    expectProblem(await api.call('GET', '/v1/templates/private', { key: b.key }), 404, 'not_found');
    expectProblem(
      await api.call('PUT', '/v1/templates/private', { key: b.key, json: { options: {} } }),
      404,
      'not_found',
    );
    expectProblem(await api.call('DELETE', '/v1/templates/private', { key: b.key }), 404, 'not_found');
    expect(
      (await api.call('GET', '/v1/templates', { key: b.key })).body.templates.map((t: { name: string }) => t.name),
    ).toEqual(BUILT_IN_NAMES);
    expectProblem(
      await api.call('POST', '/v1/jobs', {
        key: b.key,
        json: { template: 'private', input: { url: 'https://example.com/a.jpg' } },
      }),
      400,
      'unknown_template',
    );
    // The same name is free for the other vendor, and A's template is untouched by B's.
    expect((await create(b.key, 'private', { type: 'transform', options: { rotate: 90 } })).status).toBe(201);
    expect((await api.call('GET', '/v1/templates/private', { key: a.key })).body.options).toEqual(small.options);
    expectProblem(await api.call('GET', '/v1/templates', { key: 'pixq_wrong' }), 401, 'unauthorized');
  });

  it("submits by template: the job gets the template's type and options, the submission's top-level options replacing the template's", async () => {
    const { id: vendorId, key } = await api.vendor();
    await create(key, 'small-png');
    const uploadId = await upload(key);
    const plain = await api.call('POST', '/v1/jobs', {
      key,
      json: { template: 'small-png', input: { uploadId }, metadata: { sku: 'A1' } },
    });
    expect(plain.status, JSON.stringify(plain.body)).toBe(202);
    expect(plain.body).toMatchObject({ type: 'transform', template: 'small-png', metadata: { sku: 'A1' } });
    expect((await api.call('GET', `/v1/jobs/${plain.body.id}`, { key })).body.template).toBe('small-png');
    expect((await stored(plain.body.id, vendorId)).options).toEqual({
      resize: { width: 100, height: 100, fit: 'inside' },
      format: 'png',
    });

    // `resize` is replaced whole (its height is gone, its fit back to the default), `format` kept, `rotate` added.
    const over = await api.call('POST', '/v1/jobs', {
      key,
      json: { template: 'small-png', input: { uploadId }, options: { resize: { width: 50 }, rotate: 90 } },
    });
    expect(over.status, JSON.stringify(over.body)).toBe(202);
    expect((await stored(over.body.id, vendorId)).options).toEqual({
      resize: { width: 50, fit: 'cover' },
      format: 'png',
      rotate: 90,
    });
    // The template itself is unchanged by the submissions (defaults are applied to copies).
    expect((await api.call('GET', '/v1/templates/small-png', { key })).body.options).toEqual(small.options);

    const multipart = await api.call('POST', '/v1/jobs', {
      key,
      form: imageForm([{ bytes: await jpeg() }], { template: 'small-png', options: '{"format":"webp"}' }),
    });
    expect(multipart.status, JSON.stringify(multipart.body)).toBe(202);
    expect(await stored(multipart.body.id, vendorId)).toMatchObject({
      type: 'transform',
      options: { format: 'webp', resize: { width: 100 } },
    });

    const builtIn = await api.call('POST', '/v1/jobs', {
      key,
      json: { template: 'thumbnail-400', input: { uploadId } },
    });
    expect(await stored(builtIn.body.id, vendorId)).toMatchObject({
      type: 'transform',
      template: 'thumbnail-400',
      options: { resize: { width: 400, height: 400, fit: 'inside' } },
    });
    const typed = await api.call('POST', '/v1/jobs', { key, json: { ...small, input: { uploadId } } });
    expect(typed.body.template).toBeNull();
  });

  it('refuses a submission naming both or neither of type and template, an unknown template, or options that break the template', async () => {
    const { key } = await api.vendor();
    await create(key, 'small-png');
    const input = { url: 'https://example.com/a.jpg' };
    const both = await api.call('POST', '/v1/jobs', { key, json: { type: 'transform', template: 'small-png', input } });
    expectProblem(both, 400, 'validation_failed');
    expect(both.body.detail).toMatch(/exactly one of "type" and "template"/);
    expectProblem(await api.call('POST', '/v1/jobs', { key, json: { input } }), 400, 'validation_failed');
    const unknown = await api.call('POST', '/v1/jobs', { key, json: { template: 'nope', input } });
    expectProblem(unknown, 400, 'unknown_template');
    expect(unknown.body.detail).toMatch(/"nope"/);
    const broken = await api.call('POST', '/v1/jobs', {
      key,
      json: { template: 'small-png', input, options: { resize: {} } },
    });
    expectProblem(broken, 400, 'validation_failed');
    const wrongKind = await api.call('POST', '/v1/jobs', {
      key,
      json: { template: 'small-png', input, options: { aspect: '1:1' } },
    });
    expectProblem(wrongKind, 400, 'validation_failed');
    expectProblem(
      await api.call('POST', '/v1/jobs', { key, json: { template: 'bad name', input } }),
      400,
      'validation_failed',
    );
    const form = await api.call('POST', '/v1/jobs', {
      key,
      form: imageForm([{ bytes: await jpeg() }], { template: 'nope' }),
    });
    expectProblem(form, 400, 'unknown_template');
    expect((await api.call('GET', '/v1/jobs', { key })).body.jobs).toEqual([]);
  });

  it('submits bulk jobs by template, as JSON (mixed with typed jobs) and as multipart files', async () => {
    const { id: vendorId, key } = await api.vendor();
    await create(key, 'small-png');
    const uploadId = await upload(key);
    const bulk = await api.call('POST', '/v1/jobs/bulk', {
      key,
      json: {
        jobs: [
          { template: 'small-png', input: { uploadId } },
          { template: 'small-png', input: { uploadId }, options: { format: 'jpeg' } },
          { template: 'thumbnail-400', input: { uploadId } },
          { type: 'transform', input: { uploadId }, options: { rotate: 180 } },
        ],
      },
    });
    expect(bulk.status, JSON.stringify(bulk.body)).toBe(202);
    const jobs = await Promise.all(bulk.body.jobIds.map((id: string) => stored(id, vendorId)));
    expect(
      jobs.map((j) => [j.type, j.options.format ?? null, j.options.resize ?? null, j.options.rotate ?? null]),
    ).toEqual([
      ['transform', 'png', { width: 100, height: 100, fit: 'inside' }, null],
      ['transform', 'jpeg', { width: 100, height: 100, fit: 'inside' }, null],
      ['transform', null, { width: 400, height: 400, fit: 'inside' }, null],
      ['transform', null, null, 180],
    ]);

    const refused = await api.call('POST', '/v1/jobs/bulk', {
      key,
      json: {
        jobs: [
          { template: 'small-png', input: { uploadId } },
          { template: 'nope', input: { uploadId } },
        ],
      },
    });
    expectProblem(refused, 400, 'unknown_template');
    expect(refused.body.detail).toMatch(/^jobs\[1\]: /);

    const files = await api.call('POST', '/v1/jobs/bulk', {
      key,
      form: imageForm([{ bytes: await jpeg() }, { bytes: await jpeg(30, 20) }], {
        template: 'small-png',
        options: '{"rotate":90}',
      }),
    });
    expect(files.status, JSON.stringify(files.body)).toBe(202);
    for (const id of files.body.jobIds) {
      expect(await stored(id, vendorId)).toMatchObject({
        type: 'transform',
        options: { rotate: 90, format: 'png', resize: { width: 100 } },
        batchId: files.body.batchId,
      });
    }
    // Nothing of the refused bulk was queued: 4 + 2 jobs.
    expect((await api.call('GET', '/v1/jobs?limit=100', { key })).body.jobs).toHaveLength(6);
  });

  it('accepts every built-in template as a submission of its type', async () => {
    const { id: vendorId, key } = await api.vendor();
    const uploadId = await upload(key);
    for (const t of BUILT_IN_TEMPLATES) {
      const res = await api.call('POST', '/v1/jobs', { key, json: { template: t.name, input: { uploadId } } });
      expect(res.status, `${t.name}: ${JSON.stringify(res.body)}`).toBe(202);
      expect((await stored(res.body.id, vendorId)).type).toBe(t.type);
      // No worker runs here: the jobs stay queued and are cancelled, so no model is loaded.
      expect((await api.call('POST', `/v1/jobs/${res.body.id}/cancel`, { key })).status).toBe(200);
    }
    expect(BUILT_IN_TEMPLATES.map((t) => t.name)).toEqual(BUILT_IN_NAMES);
  });

  describe('with a worker', () => {
    let worked: ApiHarness;
    beforeAll(async () => {
      worked = await startApi(target);
      await worked.startWorker();
    });
    afterAll(async () => {
      await worked?.close();
    });

    it('runs thumbnail-400 on a real image: 400 px on the long side, the aspect kept', async () => {
      const { key } = await worked.vendor();
      for (const [width, height] of [
        [640, 480],
        [300, 900],
      ]) {
        const res = await worked.call('POST', '/v1/jobs', {
          key,
          form: imageForm([{ bytes: await jpeg(width, height) }], { template: 'thumbnail-400' }),
        });
        expect(res.status, JSON.stringify(res.body)).toBe(202);
        const job = await waitForJob(worked, key, res.body.id, ['succeeded', 'failed']);
        expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
        expect(job.template).toBe('thumbnail-400');
        const output = await worked.call('GET', `/v1/jobs/${job.id}/output`, { key });
        const meta = await sharp(output.raw).metadata();
        expect(Math.max(meta.width!, meta.height!)).toBe(400);
        expect(meta.width! / meta.height!).toBeCloseTo(width / height, 1);
        expect(job.outputs[0]).toMatchObject({ width: meta.width, height: meta.height });
      }
    });

    it('runs marketplace-main-white on a product photo: a 2000 px white JPEG square, the product 85 % of it, centred', async () => {
      const { key } = await worked.vendor();
      const scene = await syntheticScene(0, 640, 480);
      const res = await worked.call('POST', '/v1/jobs', {
        key,
        form: imageForm([{ bytes: scene.image }], { template: 'marketplace-main-white' }),
      });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      const job = await waitForJob(worked, key, res.body.id, ['succeeded', 'failed'], 600_000);
      expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
      expect(job.outputs[0]).toMatchObject({ contentType: 'image/jpeg', width: 2000, height: 2000 });
      const { left, top, width, height } = job.result.foreground;
      expect(Math.abs(Math.max(width, height) - 1700)).toBeLessThanOrEqual(1);
      expect(Math.abs(left - (2000 - width) / 2)).toBeLessThanOrEqual(1);
      expect(Math.abs(top - (2000 - height) / 2)).toBeLessThanOrEqual(1);
      const output = await worked.call('GET', `/v1/jobs/${job.id}/output`, { key });
      const { data, info } = await sharp(output.raw).raw().toBuffer({ resolveWithObject: true });
      expect(info).toMatchObject({ format: 'raw', width: 2000, height: 2000, channels: 3 });
      expect((await sharp(output.raw).metadata()).format).toBe('jpeg');
      // The product where the result says, on white: its darker-than-half pixels span the box (JPEG: 4 px slack).
      let [minX, minY, maxX, maxY] = [2000, 2000, -1, -1];
      let white = 0;
      for (let y = 0; y < 2000; y++) {
        for (let x = 0; x < 2000; x++) {
          const p = (y * 2000 + x) * 3;
          const darkest = Math.min(data[p], data[p + 1], data[p + 2]);
          if (darkest >= 250) white++;
          if (darkest > 190) continue;
          [minX, minY, maxX, maxY] = [Math.min(minX, x), Math.min(minY, y), Math.max(maxX, x), Math.max(maxY, y)];
        }
      }
      expect(white / (2000 * 2000)).toBeGreaterThan(0.4);
      expect(Math.abs(minX - left)).toBeLessThanOrEqual(4);
      expect(Math.abs(minY - top)).toBeLessThanOrEqual(4);
      expect(Math.abs(maxX + 1 - (left + width))).toBeLessThanOrEqual(4);
      expect(Math.abs(maxY + 1 - (top + height))).toBeLessThanOrEqual(4);
    }, 600_000);

    it('@pixq/client: lists, creates, changes and deletes templates, and submits by template', async () => {
      const { key } = await worked.vendor();
      const client = new PixqClient({ baseUrl: worked.base, apiKey: key });
      expect((await client.templates()).templates.map((t) => t.name)).toEqual(BUILT_IN_NAMES);
      expect(await client.template('id-photo-35x45')).toMatchObject({
        type: 'face-crop',
        options: { aspect: '35:45' },
        builtIn: true,
      });
      const made = await client.createTemplate({ name: 'tiny', type: 'transform', options: { resize: { width: 20 } } });
      expect(made).toMatchObject({ name: 'tiny', builtIn: false });
      expect(await client.updateTemplate('tiny', { options: { resize: { width: 10 }, format: 'png' } })).toMatchObject({
        options: { resize: { width: 10 }, format: 'png' },
      });

      const one = await client.submit({
        template: 'tiny',
        file: { bytes: await jpeg(), name: 'a.jpg', type: 'image/jpeg' },
      });
      expect((await client.wait(one.id, { timeoutMs: 20_000 })).outputs[0]).toMatchObject({
        width: 10,
        contentType: 'image/png',
      });
      const bulk = await client.submitBulk({
        template: 'tiny',
        options: { format: 'webp' },
        files: [{ bytes: await jpeg(), name: 'b.jpg', type: 'image/jpeg' }],
      });
      const [job] = await Promise.all(bulk.jobIds.map((id) => client.wait(id, { timeoutMs: 20_000 })));
      expect(job.outputs[0]).toMatchObject({ width: 10, contentType: 'image/webp' });

      await client.deleteTemplate('tiny');
      const missing = await client.template('tiny').catch((err: unknown) => err);
      expect(missing).toBeInstanceOf(PixqApiError);
      expect((missing as PixqApiError).status).toBe(404);
    });
  });
});
