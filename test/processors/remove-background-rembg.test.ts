import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { PixqError } from '../../src/errors.js';
import { parseOptions } from '../../src/processors/options.js';
import { callRemove, rembgAgent } from '../../src/processors/rembg/client.js';
import { createRemoveBackground, type RemoveBackgroundProcessor } from '../../src/processors/remove-background.js';
import { expectProblem, imageForm, startApi, waitForJob } from '../support/api.js';
import { testContext } from '../support/portraits.js';
import { waitUntil } from '../support/processes.js';
import { startRembgServer, type RembgMode, type RembgTestServer } from '../support/rembg-server.js';
import { describeEachStore, tempDir } from '../support/stores.js';
import { TEST_MODELS_DIR } from '../support/models.js';

// A black 24 x 24 square at (16, 12) on white: the test server's subject.
const WIDTH = 64;
const HEIGHT = 48;
const SUBJECT = { left: 16, top: 12, width: 24, height: 24 };
let input: Buffer;

beforeAll(async () => {
  const square = await sharp({ create: { width: 24, height: 24, channels: 3, background: '#000000' } })
    .png()
    .toBuffer();
  input = await sharp({ create: { width: WIDTH, height: HEIGHT, channels: 3, background: '#ffffff' } })
    .composite([{ input: square, left: SUBJECT.left, top: SUBJECT.top }])
    .png()
    .toBuffer();
});

const servers: RembgTestServer[] = [];
const processors: RemoveBackgroundProcessor[] = [];

async function server(mode: RembgMode = 'ok'): Promise<RembgTestServer> {
  const s = await startRembgServer(mode);
  servers.push(s);
  return s;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(processors.splice(0).map((p) => p.close()));
});

/** A processor on these servers (`#slots` each); health checks run only when a test calls checkHealth. */
function processorFor(pool: { server: RembgTestServer; slots?: number }[], env: Record<string, string> = {}) {
  const config = loadConfig({
    PIXQ_DATA_DIR: tempDir(),
    PIXQ_REMBG_URLS: pool.map((p) => `${p.server.url}#${p.slots ?? 1}`).join(','),
    PIXQ_REMBG_HEALTH_MS: '3600000',
    ...env,
  });
  const proc = createRemoveBackground(config);
  processors.push(proc);
  return proc;
}

async function run(
  proc: RemoveBackgroundProcessor,
  raw: Record<string, unknown>,
  ctx = testContext(input, parseOptions(proc, raw)),
) {
  const result = await proc.run(ctx);
  const data = ctx.blobs.get(result.outputs[0].key);
  return { ...result, data, info: await sharp(data).metadata() };
}

async function failure(work: Promise<unknown>): Promise<PixqError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PixqError);
  return err as PixqError;
}

const url = (s: RembgTestServer) => s.url;
const inService = (proc: RemoveBackgroundProcessor, s: RembgTestServer) =>
  proc.rembg!.servers().find((v) => v.url === s.url)!.inService;

describe('remove-background on rembg servers: options', () => {
  it('maps the options to rembg parameters, bgc in the query and the rest as form fields', async () => {
    const a = await server();
    const proc = processorFor([{ server: a }]);
    // Nothing left to do here afterwards (no framing, no decontamination): rembg flattens itself.
    const out = await run(proc, {
      backend: 'rembg',
      model: 'u2netp',
      background: '#ff000080',
      refineEdges: false,
      decontaminate: false,
    });
    expect(a.calls).toHaveLength(1);
    expect(a.calls[0].query).toEqual({ bgc: '255,0,0,128' });
    expect(a.calls[0].form).toEqual({ model: 'u2netp', om: 'false', ppm: 'false' });
    expect(a.calls[0].fileBytes).toBe(input.length);
    expect(out.result).toMatchObject({ backend: 'rembg', model: 'u2netp', server: a.url });
    expect(out.result).not.toHaveProperty('foreground'); // rembg flattened: its alpha is the colour's
    const { data } = await sharp(out.data).raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number) => [...data.subarray((y * WIDTH + x) * 4, (y * WIDTH + x) * 4 + 4)];
    expect(px(20, 20)).toEqual([0, 0, 0, 255]); // subject
    expect(px(2, 2)).toEqual([255, 0, 0, 128]); // background colour, see-through as asked
  });

  it('uses u2net by default, sends ppm for refineEdges, and returns the mask for onlyMask (om)', async () => {
    const a = await server();
    const proc = processorFor([{ server: a }]);
    const out = await run(proc, { backend: 'rembg', onlyMask: true });
    expect(a.calls[0]).toMatchObject({ query: {}, form: { model: 'u2net', om: 'true', ppm: 'true' } });
    expect(out.info).toMatchObject({ width: WIDTH, height: HEIGHT, channels: 1 });
    const mask = await sharp(out.data).extractChannel(0).raw().toBuffer();
    expect(mask[20 * WIDTH + 20]).toBe(255);
    expect(mask[2 * WIDTH + 2]).toBe(0);
    expect(out.result).toMatchObject({
      subjectFound: true,
      foreground: { left: 16, top: 12, width: 24, height: 24 },
      foregroundShare: Number(((24 * 24) / (WIDTH * HEIGHT)).toFixed(3)),
    });
  });

  it("crops by the answer's mask and then flattens here, so rembg gets no bgc", async () => {
    const a = await server();
    const proc = processorFor([{ server: a }]);
    const out = await run(proc, { backend: 'rembg', crop: true, background: 'white', format: 'webp' });
    expect(a.calls[0].query).toEqual({});
    expect(out.result?.crop).toEqual(SUBJECT);
    expect(out.info).toMatchObject({ format: 'webp', width: 24, height: 24, hasAlpha: false });
  });

  it("frames rembg's cut-out here: the 24 px subject at 50 % of a 100 px square, centred", async () => {
    const a = await server();
    const proc = processorFor([{ server: a }]);
    const out = await run(proc, { backend: 'rembg', scale: 50, canvas: { width: 100, height: 100 } });
    expect(out.result).toMatchObject({ foreground: { left: 25, top: 25, width: 50, height: 50 } });
    expect(out.info).toMatchObject({ width: 100, height: 100, hasAlpha: true });
    const alpha = await sharp(out.data).extractChannel(3).raw().toBuffer();
    expect([alpha[50 * 100 + 50], alpha[50 * 100 + 20], alpha[20 * 100 + 50]]).toEqual([255, 0, 0]);
  });

  it('sends alpha matting as a, af, ab and ae form fields', async () => {
    const a = await server();
    const agent = rembgAgent(10_000);
    try {
      const params = { model: 'u2net', onlyMask: false, postProcessMask: false };
      const matting = { foregroundThreshold: 230, backgroundThreshold: 20, erodeSize: 15 };
      const limits = { timeoutMs: 10_000, maxBytes: 1 << 20, signal: new AbortController().signal };
      await callRemove(
        agent,
        a.url,
        { bytes: input, contentType: 'image/png' },
        { ...params, alphaMatting: matting },
        limits,
      );
      expect(a.calls[0].form).toEqual({
        model: 'u2net',
        om: 'false',
        ppm: 'false',
        a: 'true',
        af: '230',
        ab: '20',
        ae: '15',
      });
    } finally {
      await agent.close();
    }
  });

  it('sends rembg upright pixels when EXIF orientation turns the input', async () => {
    const a = await server();
    const proc = processorFor([{ server: a }]);
    // Stored 48 x 64 with orientation 6 (turn 90° clockwise): upright it is the 64 x 48 scene.
    const stored = await sharp(input).rotate(-90).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const ctx = testContext(stored, parseOptions(proc, { backend: 'rembg', crop: true }));
    const out = await run(proc, {}, ctx);
    expect(a.calls[0].fileBytes).not.toBe(stored.length);
    expect(out.result?.crop).toEqual(SUBJECT);
  });

  it('refuses rembg without servers, and local-only models on rembg, when the job is submitted', async () => {
    const local = createRemoveBackground(loadConfig({ PIXQ_DATA_DIR: tempDir(), PIXQ_MODELS_DIR: TEST_MODELS_DIR }));
    processors.push(local);
    expect(parseOptions(local, {}).backend).toBe('local');
    expect(() => parseOptions(local, { backend: 'rembg' })).toThrow(/options\.backend.*PIXQ_REMBG_URLS/);
    const a = await server();
    const remote = processorFor([{ server: a }], { PIXQ_REMOVE_BACKGROUND_BACKEND: 'rembg' });
    expect(parseOptions(remote, {}).backend).toBe('rembg');
    expect(() => parseOptions(remote, { model: 'isnet-medium' })).toThrow(
      /options\.model: isnet-medium runs only on the local backend/,
    );
    expect(parseOptions(remote, { backend: 'local', model: 'isnet-medium' }).model).toBe('isnet-medium');
  });
});

describe('remove-background on rembg servers: the pool', () => {
  it("spreads calls to the least busy server within each server's concurrency", async () => {
    const [a, b] = [await server('hold'), await server('hold')];
    const proc = processorFor([
      { server: a, slots: 1 },
      { server: b, slots: 3 },
    ]);
    const jobs = [0, 1, 2, 3].map(() => run(proc, { backend: 'rembg' }));
    await waitUntil(() => a.active + b.active === 4, 10_000, 'four calls in flight');
    expect([a.active, b.active]).toEqual([1, 3]);
    const fifth = run(proc, { backend: 'rembg' }); // every slot is taken: it waits for one
    a.release();
    b.release();
    await waitUntil(() => a.calls.length + b.calls.length === 5, 10_000, 'the fifth call');
    a.release();
    b.release();
    await Promise.all([...jobs, fifth]);
    expect([a.maxActive, b.maxActive]).toEqual([1, 3]);
  });

  it('alternates between equal servers by what is in flight', async () => {
    const [a, b] = [await server('hold'), await server('hold')];
    const proc = processorFor([
      { server: a, slots: 2 },
      { server: b, slots: 2 },
    ]);
    const first = [run(proc, { backend: 'rembg' }), run(proc, { backend: 'rembg' })];
    await waitUntil(() => a.active + b.active === 2, 10_000, 'two calls in flight');
    expect([a.active, b.active]).toEqual([1, 1]);
    const second = [run(proc, { backend: 'rembg' }), run(proc, { backend: 'rembg' })];
    await waitUntil(() => a.active + b.active === 4, 10_000, 'four calls in flight');
    expect([a.active, b.active]).toEqual([2, 2]);
    a.release();
    b.release();
    await Promise.all([...first, ...second]);
  });

  it('moves a failed call to another server within the same attempt, takes the failing server out and probes it back in', async () => {
    const [a, b] = [await server('fail'), await server()];
    const proc = processorFor([{ server: a }, { server: b }], { PIXQ_REMBG_BREAKER_FAILURES: '1' });
    const first = await run(proc, { backend: 'rembg' });
    expect(first.result).toMatchObject({ server: url(b), failedServers: [url(a)] });
    expect(inService(proc, a)).toBe(false);

    await run(proc, { backend: 'rembg' });
    expect([a.calls.length, b.calls.length]).toEqual([1, 2]); // out of service: not tried

    await proc.rembg!.checkHealth();
    expect(a.probes).toBe(1);
    expect(inService(proc, a)).toBe(false); // still failing its probe
    a.mode = 'ok';
    await proc.rembg!.checkHealth();
    expect(inService(proc, a)).toBe(true);
    const back = await run(proc, { backend: 'rembg' });
    expect(back.result).toMatchObject({ server: url(a) });
    expect(back.result).not.toHaveProperty('failedServers');
  });

  it('takes a server out when a health check fails, even without calls', async () => {
    const [a, b] = [await server(), await server()];
    const proc = processorFor([{ server: a }, { server: b }]);
    b.mode = 'fail';
    await proc.rembg!.checkHealth();
    expect([inService(proc, a), inService(proc, b)]).toEqual([true, false]);
    expect(proc.rembg!.servers()[1].outReason).toMatch(/health check: answered HTTP 500/);
  });

  it('opens the breaker after N consecutive failures', async () => {
    const [a, b] = [await server('fail'), await server()];
    const proc = processorFor([{ server: a }, { server: b }], { PIXQ_REMBG_BREAKER_FAILURES: '3' });
    for (let i = 1; i <= 2; i++) {
      expect((await run(proc, { backend: 'rembg' })).result).toMatchObject({ server: url(b), failedServers: [url(a)] });
      expect(inService(proc, a)).toBe(true);
    }
    await run(proc, { backend: 'rembg' });
    expect(inService(proc, a)).toBe(false);
    expect(proc.rembg!.servers()[0].outReason).toMatch(/3 consecutive failures.*HTTP 500/);
    expect((await run(proc, { backend: 'rembg' })).result).not.toHaveProperty('failedServers');
    expect(a.calls).toHaveLength(3);
  });

  it('fails with rembg_failed when every server fails, then fast with rembg_unavailable while none is in service', async () => {
    const a = await server('fail');
    const proc = processorFor([{ server: a }], { PIXQ_REMBG_BREAKER_FAILURES: '1' });
    const failed = await failure(run(proc, { backend: 'rembg' }));
    expect(failed).toMatchObject({ code: 'rembg_failed', retryable: true });
    expect(failed.message).toContain(`${a.url} answered HTTP 500`);
    const unavailable = await failure(run(proc, { backend: 'rembg' }));
    expect(unavailable).toMatchObject({ code: 'rembg_unavailable', retryable: true });
    expect(a.calls).toHaveLength(1);
  });

  it('gives up on a hung server after the timeout and answers from another one', async () => {
    const [hung, b] = [await server('hang'), await server()];
    const proc = processorFor([{ server: hung }, { server: b }], { PIXQ_REMBG_TIMEOUT_MS: '300' });
    const out = await run(proc, { backend: 'rembg' });
    expect(out.result).toMatchObject({ server: url(b), failedServers: [url(hung)] });
    await waitUntil(() => hung.abandoned === 1, 10_000, 'the hung call to be dropped');

    b.mode = 'hang';
    const err = await failure(run(proc, { backend: 'rembg' }));
    expect(err.code).toBe('rembg_failed');
    expect(err.message).toMatch(/did not answer within 300 ms/);
  });

  it('fails clearly when the answer is not an image', async () => {
    const a = await server('garbage');
    const proc = processorFor([{ server: a }]);
    const err = await failure(run(proc, { backend: 'rembg' }));
    expect(err.code).toBe('rembg_failed');
    expect(err.message).toMatch(
      /answered something that is not a usable image \(the content is not a supported image type/,
    );
  });

  it("holds answers to the pixel limit and to the input's size", async () => {
    const a = await server('enlarge');
    const limited = processorFor([{ server: a }], { PIXQ_MAX_PIXELS: String(WIDTH * HEIGHT + 1) });
    const tooMany = await failure(run(limited, { backend: 'rembg' }));
    expect(tooMany.message).toMatch(
      /not a usable image \(the image is 128x96 \(12288 pixels\), above the limit of 3073/,
    );
    const unlimited = processorFor([{ server: a }]);
    const wrongSize = await failure(run(unlimited, { backend: 'rembg' }));
    expect(wrongSize.message).toContain('answered a 128x96 image for a 64x48 input');
  });

  it('fails permanently with rembg_rejected when a server refuses the request itself, without blaming the server', async () => {
    const [a, b] = [await server('refuse'), await server()];
    const proc = processorFor([{ server: a }, { server: b }], { PIXQ_REMBG_BREAKER_FAILURES: '1' });
    const err = await failure(run(proc, { backend: 'rembg', model: 'birefnet-general-lite' }));
    expect(err).toMatchObject({
      code: 'rembg_rejected',
      retryable: false,
      details: { server: a.url, upstreamStatus: 422 },
    });
    expect(err.message).toContain('string does not match regex');
    expect(b.calls).toHaveLength(0);
    expect(inService(proc, a)).toBe(true);
  });

  it('cancels the in-flight request when the job is aborted', async () => {
    const a = await server('hold');
    const proc = processorFor([{ server: a }]);
    const ctx = testContext(input, parseOptions(proc, { backend: 'rembg' }));
    const job = run(proc, {}, ctx);
    await waitUntil(() => a.active === 1, 10_000, 'the call to arrive');
    ctx.controller.abort();
    expect((await failure(job)).code).toBe('cancelled');
    await waitUntil(() => a.abandoned === 1, 10_000, 'the server to see the client go');
    expect(proc.rembg!.servers()[0]).toMatchObject({ busy: 0, inService: true, consecutiveFailures: 0 });
  });
});

describeEachStore('remove-background with backend rembg through the API and a worker', (target) => {
  it('runs the job on the rembg server and serves its cut-out', async () => {
    const a = await server();
    const api = await startApi(target, { PIXQ_REMBG_URLS: a.url, PIXQ_REMBG_HEALTH_MS: '3600000' });
    try {
      const { key } = await api.vendor();
      const stop = await api.startWorker();
      const form = imageForm([{ bytes: input, type: 'image/png', name: 'square.png' }], {
        type: 'remove-background',
        options: JSON.stringify({ backend: 'rembg', crop: true, cropMargin: 25 }),
      });
      const submitted = await api.call('POST', '/v1/jobs', { key, form });
      expect(submitted.status).toBe(202);
      const job = await waitForJob(api, key, submitted.body.id, ['succeeded', 'failed']);
      expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
      expect(job.result).toMatchObject({ backend: 'rembg', model: 'u2net', server: a.url, subjectFound: true });
      expect(a.calls).toHaveLength(1);
      const output = await api.call('GET', `/v1/jobs/${job.id}/output`, { key });
      const meta = await sharp(output.raw).metadata();
      expect(meta).toMatchObject({ format: 'png', width: 24 + 2 * 6, height: 24 + 2 * 6, hasAlpha: true });
      const corner = await sharp(output.raw).extractChannel(3).raw().toBuffer();
      expect([corner[0], corner[18 * 36 + 18]]).toEqual([0, 255]);
      await stop();

      const refused = await api.call('POST', '/v1/jobs', {
        key,
        json: {
          type: 'remove-background',
          input: { url: 'https://example.com/a.png' },
          options: { backend: 'rembg', model: 'isnet-small' },
        },
      });
      expectProblem(refused, 400, 'validation_failed');
    } finally {
      await api.close();
    }
  });
});
