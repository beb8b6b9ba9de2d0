import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { ADMIN_KEY, answer, expectProblem, imageServer, useApi, type ApiHarness } from '../support/api.js';
import { syntheticScene } from '../support/synthetic.js';

/** rembg's HTTP server API, called as `rembg s` clients call it; the answer is the PNG itself. */
function fileForm(bytes: Buffer, fields: Record<string, string> = {}) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append('file', new Blob([bytes], { type: 'image/jpeg' }), 'photo.jpg');
  return form;
}

/** The answer waits for a real inference: longer than the harness's own request deadline on a loaded machine. */
async function waitingCall(api: ApiHarness, method: string, path: string, key: string, form?: FormData) {
  const res = await fetch(api.base + path, {
    method,
    headers: { authorization: `Bearer ${key}` },
    body: form,
    signal: AbortSignal.timeout(900_000),
  });
  return answer(res);
}

describeEachStore('compat: rembg /api/remove', (target) => {
  // Long enough for a real inference on a loaded machine; the 504 test below has its own, short wait.
  const api = useApi(target, { PIXQ_URL_ALLOWLIST: '127.0.0.1', PIXQ_SYNC_WAIT_MS: '900000' });
  let scene: Buffer;
  let images: Awaited<ReturnType<typeof imageServer>>;
  let acme: { id: string; key: string };
  let stopWorker: () => Promise<void>;

  beforeAll(async () => {
    scene = (await syntheticScene(0, 320, 240)).image;
    images = await imageServer(scene);
    acme = await api().vendor();
    stopWorker = await api().startWorker();
  });
  afterAll(async () => {
    await stopWorker?.();
    await images?.close();
  });

  it('GET ?url= answers the mask PNG with om=true, as a normal job marked via rembg', async () => {
    const res = await waitingCall(
      api(),
      'GET',
      `/api/remove?url=${encodeURIComponent(images.url())}&model=u2net&om=true&ppm=true`,
      acme.key,
    );
    expect([res.status, res.contentType], res.raw.toString('utf8').slice(0, 300)).toEqual([200, 'image/png']);
    const meta = await sharp(res.raw).metadata();
    expect({ width: meta.width, height: meta.height, channels: meta.channels }).toEqual({
      width: 320,
      height: 240,
      channels: 1,
    });
    // ppm: the mask is cut to 0 and 255 only.
    const levels = new Set(await sharp(res.raw).extractChannel(0).raw().toBuffer());
    expect([...levels].sort((a, b) => a - b)).toEqual([0, 255]);
    const job = await api().call('GET', `/v1/jobs/${res.headers.get('x-pixq-job-id')}`, { key: acme.key });
    expect(job.body).toMatchObject({
      type: 'remove-background',
      state: 'succeeded',
      metadata: { via: 'rembg', model: 'u2net' },
      result: { model: 'isnet-int8' },
    });
  }, 900_000);

  it('POST takes the file and a/af/ab/ae/model from the form, bgc and extras from the query string', async () => {
    const form = fileForm(scene, { a: 'true', af: '230', ab: '15', ae: '5', model: 'u2netp' });
    const res = await waitingCall(
      api(),
      'POST',
      `/api/remove?bgc=255,255,255,255&extras=${encodeURIComponent('{"sam_prompt":[]}')}`,
      acme.key,
      form,
    );
    expect([res.status, res.contentType], res.raw.toString('utf8').slice(0, 300)).toEqual([200, 'image/png']);
    const meta = await sharp(res.raw).metadata();
    // Flattened onto opaque white: no alpha channel left.
    expect({ width: meta.width, height: meta.height, hasAlpha: meta.hasAlpha }).toEqual({
      width: 320,
      height: 240,
      hasAlpha: false,
    });
    const corner = await sharp(res.raw).extract({ left: 0, top: 0, width: 4, height: 4 }).raw().toBuffer();
    expect(Math.min(...corner)).toBeGreaterThan(240);
    const job = await api().call('GET', `/v1/jobs/${res.headers.get('x-pixq-job-id')}`, { key: acme.key });
    expect(job.body).toMatchObject({
      state: 'succeeded',
      metadata: { via: 'rembg', model: 'u2netp', extras: { sam_prompt: [] } },
      result: { model: 'isnet-small' },
    });
  }, 900_000);

  it('refuses bgc in the form (it belongs in the query), bad parameters, private URLs and keyless calls', async () => {
    expectProblem(
      await api().call('POST', '/api/remove', { key: acme.key, form: fileForm(scene, { bgc: '0,0,0,255' }) }),
      400,
      'validation_failed',
    );
    expectProblem(
      await api().call('POST', '/api/remove', { key: acme.key, form: fileForm(scene, { af: '300' }) }),
      400,
      'validation_failed',
    );
    expectProblem(
      await api().call('POST', '/api/remove?bgc=1,2,3', { key: acme.key, form: fileForm(scene) }),
      400,
      'validation_failed',
    );
    expectProblem(
      await api().call('POST', '/api/remove?extras=%5B1%5D', { key: acme.key, form: fileForm(scene) }),
      400,
      'validation_failed',
    );
    expectProblem(
      await api().call('GET', '/api/remove?url=http%3A%2F%2F10.0.0.1%2Fa.jpg', { key: acme.key }),
      400,
      'url_not_allowed',
    );
    expectProblem(
      await api().call('GET', `/api/remove?url=${encodeURIComponent(images.url())}&model=sam`, { key: acme.key }),
      400,
      'validation_failed',
    );
    expectProblem(await api().call('GET', `/api/remove?url=${encodeURIComponent(images.url())}`), 401, 'unauthorized');
    expectProblem(
      await api().call('POST', '/api/remove', { key: acme.key, json: { url: images.url() } }),
      415,
      'unsupported_media_type',
    );
  });
});

describeEachStore('compat: rembg /api/remove past PIXQ_SYNC_WAIT_MS', (target) => {
  const api = useApi(target, { PIXQ_SYNC_WAIT_MS: '300' });

  it('answers 504 problem+json with the job id while the job stays queued (its type is paused)', async () => {
    const vendor = await api().vendor();
    // A paused type never starts, so the wait surely runs out: no race against the job.
    expect((await api().call('POST', '/v1/job-types/remove-background/pause', { key: ADMIN_KEY })).status).toBe(200);
    await api().startWorker();
    const res = await api().call('POST', '/api/remove', {
      key: vendor.key,
      form: fileForm((await syntheticScene(1, 64, 48)).image),
    });
    expectProblem(res, 504, 'sync_wait_exceeded');
    const jobId = res.body.details.jobId;
    expect(res.headers.get('location')).toBe(`/v1/jobs/${jobId}`);
    const job = await api().call('GET', `/v1/jobs/${jobId}`, { key: vendor.key });
    expect(job.body).toMatchObject({ state: 'queued', type: 'remove-background', metadata: { via: 'rembg' } });
  });
});
