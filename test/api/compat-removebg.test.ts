import sharp from 'sharp';
import { Agent } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { boundingBox } from '../../src/processors/models/mask.js';
import { SUBJECT_THRESHOLD } from '../../src/processors/cutout/framing.js';
import {
  ADMIN_KEY,
  answer,
  awayFromWindowEdge,
  imageServer,
  useApi,
  type Answer,
  type ApiHarness,
} from '../support/api.js';
import { describeEachStore } from '../support/stores.js';
import { syntheticScene } from '../support/synthetic.js';

/** remove.bg's API called as its clients call it: X-Api-Key, multipart, JSON or form-urlencoded. */
const HOUR = 3_600_000;

/**
 * A call that may wait for a real inference: longer than the harness's own request deadline on a loaded machine,
 * and than fetch's own 300 s wait for the answer's headers, which the server's PIXQ_SYNC_WAIT_MS bounds instead.
 */
const patient = new Agent({ headersTimeout: 0, bodyTimeout: 0 });
afterAll(async () => {
  await patient.close();
});
async function removeBg(
  api: ApiHarness,
  key: string | undefined,
  body: FormData | Record<string, unknown> | URLSearchParams,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const sent: Record<string, string> = { ...(key !== undefined && { 'x-api-key': key }), ...headers };
  let payload: RequestInit['body'];
  if (body instanceof FormData || body instanceof URLSearchParams) payload = body;
  else {
    sent['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(`${api.base}/v1.0/removebg`, {
    method: 'POST',
    headers: sent,
    body: payload,
    signal: AbortSignal.timeout(900_000),
    // Node's fetch takes undici's Agent; its types come from a second copy of undici's (undici-types).
    dispatcher: patient as unknown as RequestInit['dispatcher'],
  });
  return answer(res);
}

function fileForm(bytes: Buffer, fields: Record<string, string> = {}) {
  const form = new FormData();
  form.append('image_file', new Blob([bytes], { type: 'image/jpeg' }), 'photo.jpg');
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return form;
}

/** remove.bg's error shape: `{errors: [{title, code, detail}]}` with this status and code. */
function expectRemoveBgError(res: Answer, status: number, code: string, detailMentions?: string) {
  expect({ status: res.status, code: res.body?.errors?.[0]?.code }, res.raw.toString('utf8').slice(0, 400)).toEqual({
    status,
    code,
  });
  expect(res.contentType).toMatch(/^application\/json/);
  expect(res.body.errors).toHaveLength(1);
  expect(res.body.errors[0]).toEqual({ title: expect.any(String), code, detail: expect.any(String) });
  if (detailMentions) expect(res.body.errors[0].detail).toContain(detailMentions);
}

/** The answer's foreground headers as a box. */
function foregroundHeaders(res: Answer) {
  const read = (side: string) => Number(res.headers.get(`x-foreground-${side}`));
  return { left: read('left'), top: read('top'), width: read('width'), height: read('height') };
}

async function alphaBox(encoded: Buffer) {
  const meta = await sharp(encoded).metadata();
  const band = meta.channels === 1 || meta.channels === 3 ? 0 : 3;
  const plane = await sharp(encoded).extractChannel(band).raw().toBuffer();
  return boundingBox(plane, meta.width!, meta.height!, SUBJECT_THRESHOLD)!;
}

describeEachStore('compat: remove.bg /v1.0', (target) => {
  const api = useApi(target, { PIXQ_URL_ALLOWLIST: '127.0.0.1', PIXQ_SYNC_WAIT_MS: '900000' });
  let product: Buffer;
  let images: Awaited<ReturnType<typeof imageServer>>;
  let acme: { id: string; key: string };

  beforeAll(async () => {
    product = (await syntheticScene(2, 320, 240)).image;
    images = await imageServer(product);
    acme = await api().vendor();
    await api().startWorker();
  });
  afterAll(async () => {
    await images?.close();
  });

  it("multipart image_file with size=auto (remove.bg's own example): the PNG and every answer header", async () => {
    const res = await removeBg(api(), acme.key, fileForm(product, { size: 'auto' }));
    expect([res.status, res.contentType], res.raw.toString('utf8').slice(0, 300)).toEqual([200, 'image/png']);
    const meta = await sharp(res.raw).metadata();
    expect({ width: meta.width, height: meta.height, hasAlpha: meta.hasAlpha }).toEqual({
      width: 320,
      height: 240,
      hasAlpha: true,
    });
    expect([res.headers.get('x-width'), res.headers.get('x-height'), res.headers.get('x-type')]).toEqual([
      '320',
      '240',
      'other',
    ]);
    const box = await alphaBox(res.raw);
    const headers = foregroundHeaders(res);
    for (const side of ['left', 'top', 'width', 'height'] as const)
      expect(Math.abs(headers[side] - box[side]), side).toBeLessThanOrEqual(1);
    const job = await api().call('GET', `/v1/jobs/${res.headers.get('x-pixq-job-id')}`, { key: acme.key });
    expect(job.body).toMatchObject({
      type: 'remove-background',
      state: 'succeeded',
      metadata: { via: 'removebg' },
      options: { format: 'png', crop: false, onlyMask: false },
    });
  }, 900_000);

  it('JSON with image_url and Accept: application/json: result_b64 and the foreground, cropped, centred at 80 %, on white', async () => {
    const res = await removeBg(
      api(),
      acme.key,
      {
        image_url: images.url(),
        size: 'full',
        crop: true,
        scale: '80%',
        bg_color: 'ffffff',
        format: 'jpg',
        type: 'product',
      },
      { accept: 'application/json' },
    );
    expect(res.status, res.raw.toString('utf8').slice(0, 300)).toBe(200);
    expect(res.contentType).toMatch(/^application\/json/);
    const { result_b64, ...foreground } = res.body.data;
    const image = Buffer.from(result_b64, 'base64');
    const meta = await sharp(image).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: Number(res.headers.get('x-width')) });
    expect(res.headers.get('x-type')).toBe('product');
    // Cropped to the subject's box (no margin), then the subject at 80 % of that canvas, centred.
    const larger = Math.max(foreground.foreground_width, foreground.foreground_height);
    expect(Math.abs(larger - 0.8 * Math.max(meta.width!, meta.height!))).toBeLessThanOrEqual(1);
    expect(Math.abs(foreground.foreground_left - (meta.width! - foreground.foreground_width) / 2)).toBeLessThanOrEqual(
      1,
    );
    expect(foreground).toEqual({
      foreground_top: Number(res.headers.get('x-foreground-top')),
      foreground_left: Number(res.headers.get('x-foreground-left')),
      foreground_width: Number(res.headers.get('x-foreground-width')),
      foreground_height: Number(res.headers.get('x-foreground-height')),
    });
    const corner = await sharp(image).extract({ left: 0, top: 0, width: 3, height: 3 }).raw().toBuffer();
    expect(Math.min(...corner)).toBeGreaterThan(245);
  }, 900_000);

  it('form-urlencoded image_file_b64 with channels=alpha and size=preview: a one-channel mask within 0.25 MP', async () => {
    const big = (await syntheticScene(4, 800, 600)).image;
    const form = new URLSearchParams({ image_file_b64: big.toString('base64'), channels: 'alpha' });
    const res = await removeBg(api(), acme.key, form);
    expect([res.status, res.contentType], res.raw.toString('utf8').slice(0, 300)).toEqual([200, 'image/png']);
    const meta = await sharp(res.raw).metadata();
    expect(meta).toMatchObject({ channels: 1, hasAlpha: false });
    expect(meta.width! * meta.height!).toBeLessThanOrEqual(250_000);
    expect(meta.width! / meta.height!).toBeCloseTo(800 / 600, 1);
    const box = await alphaBox(res.raw);
    expect(Math.abs(Number(res.headers.get('x-foreground-width')) - box.width)).toBeLessThanOrEqual(1);
  }, 900_000);

  it('answers 400 unknown_foreground when the photo has no subject', async () => {
    const blank = await sharp({ create: { width: 96, height: 72, channels: 3, background: '#ffffff' } })
      .jpeg()
      .toBuffer();
    expectRemoveBgError(await removeBg(api(), acme.key, fileForm(blank)), 400, 'unknown_foreground');
  }, 900_000);

  it('refuses a parameter or value pixq does not support, naming it, and bad sources, in remove.bg’s shape', async () => {
    const key = acme.key;
    const url = images.url();
    const cases: [Record<string, unknown>, string, string][] = [
      [{ image_url: url, bg_image_url: url }, 'unsupported_parameter', 'bg_image_url'],
      [{ image_url: url, sharpen: 'true' }, 'unsupported_parameter', 'sharpen'],
      [{ image_url: url, roi: '10% 10% 90% 90%' }, 'unsupported_parameter', 'roi'],
      [{ image_url: url, shadow_type: 'car' }, 'unsupported_parameter', 'shadow_type'],
      [{ image_url: url, add_shadow: true, shadow_type: 'drop' }, 'multiple_shadow_params', 'add_shadow'],
      [{ image_url: url, shadow_opacity: '40' }, 'invalid_shadow_opacity', 'shadow_opacity'],
      [{ image_url: url, format: 'zip' }, 'invalid_format', 'zip'],
      [{ image_url: url, size: 'huge' }, 'invalid_size', 'huge'],
      [{ image_url: url, type: 'plant' }, 'invalid_type', 'plant'],
      [{ image_url: url, channels: 'rgb' }, 'invalid_channels', 'rgb'],
      [{ image_url: url, scale: '5%' }, 'invalid_scale', '5%'],
      [{ image_url: url, crop_margin: '10em' }, 'invalid_crop_margin', '10em'],
      [{ image_url: url, bg_color: 'notacolour' }, 'invalid_bg_color', 'notacolour'],
      [{ image_url: url, crop: 'maybe' }, 'invalid_crop', 'maybe'],
      [{ image_url: url, position: 'left' }, 'validation_failed', 'position'],
      [{ size: 'auto' }, 'missing_source', 'image_url'],
      [{ image_url: url, image_file_b64: 'aGk=' }, 'multiple_sources', 'image_file_b64'],
      [{ image_file_b64: 'not base64!' }, 'invalid_file_type', 'base64'],
      [{ image_file: 'photo.jpg' }, 'invalid_file_type', 'image_file_b64'],
      [{ image_file_b64: Buffer.from('just text, no image').toString('base64') }, 'invalid_file_type', ''],
    ];
    for (const [body, code, mentions] of cases)
      expectRemoveBgError(await removeBg(api(), key, body), 400, code, mentions);
    expectRemoveBgError(
      await removeBg(api(), key, fileForm(product, { bg_color: 'fff', format: 'zip' })),
      400,
      'invalid_format',
    );
    const textFile = new FormData();
    textFile.append('image_file', 'photo.jpg');
    expectRemoveBgError(await removeBg(api(), key, textFile), 400, 'invalid_file_type', 'multipart');
    const withBackgroundFile = fileForm(product);
    withBackgroundFile.append('bg_image_file', new Blob([product]), 'bg.jpg');
    expectRemoveBgError(await removeBg(api(), key, withBackgroundFile), 400, 'validation_failed', 'bg_image_file');
  });

  it('obeys the SSRF rules for image_url: private and metadata addresses, and a redirect to one, are refused', async () => {
    for (const url of ['http://10.0.0.1/a.jpg', 'http://169.254.169.254/latest/meta-data', 'file:///etc/passwd']) {
      expectRemoveBgError(await removeBg(api(), acme.key, { image_url: url }), 400, 'invalid_image_url');
    }
    // An allowed host that redirects to a private one: the worker's download refuses the hop.
    const redirecting = await imageServer(product, { redirectTo: 'http://10.0.0.1/a.jpg' });
    try {
      expectRemoveBgError(await removeBg(api(), acme.key, { image_url: redirecting.url() }), 400, 'invalid_image_url');
    } finally {
      await redirecting.close();
    }
  }, 120_000);

  it('answers a missing or wrong key, and the admin key, with 403 in remove.bg’s shape', async () => {
    expectRemoveBgError(await removeBg(api(), undefined, { image_url: images.url() }), 403, 'auth_failed');
    expectRemoveBgError(await removeBg(api(), 'pixq_wrong', { image_url: images.url() }), 403, 'auth_failed');
    expectRemoveBgError(await removeBg(api(), ADMIN_KEY, { image_url: images.url() }), 403, 'forbidden');
    const account = await fetch(`${api().base}/v1.0/account`);
    expectRemoveBgError(await answer(account), 403, 'auth_failed');
  });

  it('answers 429 with Retry-After and X-RateLimit-Limit, -Remaining and -Reset once the budget is spent', async () => {
    await awayFromWindowEdge(HOUR);
    const { key } = await api().vendor(undefined, { rateLimits: { image: { limit: 1, windowMs: HOUR } } });
    expectRemoveBgError(await removeBg(api(), key, { size: 'auto' }), 400, 'missing_source');
    const refused = await removeBg(api(), key, { image_url: images.url() });
    expectRemoveBgError(refused, 429, 'rate_limit_exceeded');
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(refused.headers.get('x-ratelimit-limit')).toBe('1');
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    const reset = Number(refused.headers.get('x-ratelimit-reset'));
    expect(Math.abs(reset - (Date.now() / 1000 + retryAfter))).toBeLessThanOrEqual(5);
  });

  it("GET /v1.0/account reports the key's own background-removal budget; another vendor reads nothing of acme's", async () => {
    const account = async (key: string) => {
      const res = await fetch(`${api().base}/v1.0/account`, { headers: { 'x-api-key': key } });
      return answer(res);
    };
    await awayFromWindowEdge(HOUR);
    const limit = 5;
    const owner = await api().vendor(undefined, { rateLimits: { removeBackground: { limit, windowMs: HOUR } } });
    const other = await api().vendor(undefined, { rateLimits: { removeBackground: { limit, windowMs: HOUR } } });
    const before = await account(owner.key);
    expect(before.status).toBe(200);
    expect(before.body).toEqual({
      data: {
        attributes: {
          credits: { total: limit, subscription: limit, payg: 0, enterprise: 0 },
          api: { free_calls: limit, sizes: 'all' },
        },
      },
    });
    // A removal that the download step fails still spent one unit; reading the account spends none.
    const redirecting = await imageServer(product, { redirectTo: 'http://10.0.0.1/a.jpg' });
    let jobId: string | null;
    try {
      const refused = await removeBg(api(), owner.key, { image_url: redirecting.url() });
      expectRemoveBgError(refused, 400, 'invalid_image_url');
      jobId = refused.body.errors[0].detail.match(/job (\S+)/)?.[1] ?? null;
    } finally {
      await redirecting.close();
    }
    expect((await account(owner.key)).body.data.attributes.api.free_calls).toBe(limit - 1);
    expect((await account(owner.key)).body.data.attributes.api.free_calls).toBe(limit - 1);
    expect((await account(other.key)).body.data.attributes.api.free_calls).toBe(limit);
    expect(jobId).toBeTruthy();
    expect((await api().call('GET', `/v1/jobs/${jobId}`, { key: owner.key })).status).toBe(200);
    expect((await api().call('GET', `/v1/jobs/${jobId}`, { key: other.key })).status).toBe(404);
  }, 120_000);
});

describeEachStore('compat: remove.bg past PIXQ_SYNC_WAIT_MS', (target) => {
  // A wait three times the connection's idle timeout: the quiet connection must last the whole wait. (The idle
  // timeout still applies while the request arrives and is checked, so it is not set tighter than that takes.)
  const api = useApi(target, { PIXQ_SYNC_WAIT_MS: '6000', PIXQ_BODY_IDLE_TIMEOUT_MS: '2000' });

  it('answers 504 in remove.bg’s shape with the job to follow (not 408 at the idle timeout) while the job stays queued', async () => {
    const vendor = await api().vendor();
    expect((await api().call('POST', '/v1/job-types/remove-background/pause', { key: ADMIN_KEY })).status).toBe(200);
    await api().startWorker();
    const res = await removeBg(api(), vendor.key, fileForm((await syntheticScene(1, 64, 48)).image));
    expectRemoveBgError(res, 504, 'sync_wait_exceeded');
    const location = res.headers.get('location');
    expect(location).toMatch(/^\/v1\/jobs\//);
    const job = await api().call('GET', location!, { key: vendor.key });
    expect(job.body).toMatchObject({ state: 'queued', metadata: { via: 'removebg' } });
  });
});
