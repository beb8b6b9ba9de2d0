import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BLOB_GRACE_MS } from '../../src/engine/index.js';
import { ADMIN_KEY, expectProblem, imageForm, jpeg, png, type ApiHarness } from '../support/api.js';
import { waitUntil } from '../support/processes.js';
import { rawConnection } from '../support/raw-http.js';
import { credentials, describeEachSetup, imgproxyUrl, pathOf, rawUrl, type Credentials } from '../support/delivery.js';

/**
 * Delivery through imgproxy-format URLs, built by imgproxy's own Node library: every option of the documented
 * subset, the signature rules (another vendor's key, a tampered URL, a rotated key during and after its grace,
 * public mode), format negotiation, revalidation, cache headers, and what bad URLs answer.
 */
describeEachSetup('delivery', (setup) => {
  let api: ApiHarness;
  let key: string;
  let creds: Credentials;
  let photo: Buffer;

  beforeAll(async () => {
    api = await setup.start({ PIXQ_RATE_ANONYMOUS: '1000/1h' });
    ({ key } = await api.vendor());
    creds = await credentials(api, key);
    photo = await jpeg(400, 300);
    const put = await api.call('PUT', '/v1/assets/products/1/main', { key, form: imageForm([{ bytes: photo }]) });
    expect(put.status, put.raw.toString()).toBe(200);
  });
  afterAll(async () => {
    await api?.close();
  });

  async function get(url: string, headers: Record<string, string> = {}) {
    return api.call('GET', pathOf(url), { headers });
  }

  async function imageOf(res: { status: number; raw: Buffer }) {
    expect(res.status, res.raw.toString().slice(0, 300)).toBe(200);
    return sharp(res.raw).metadata();
  }

  it('serves URLs that imgproxy-node builds, with a plain and with a base64 source', async () => {
    for (const displayAs of ['plain', 'base64'] as const) {
      const url = imgproxyUrl(creds, 'products/1/main', { width: 100, format: 'png' }, displayAs);
      const meta = await imageOf(await get(url));
      expect({ displayAs, format: meta.format, width: meta.width, height: meta.height }).toEqual({
        displayAs,
        format: 'png',
        width: 100,
        height: 75,
      });
    }
  });

  it("serves the original bytes for a URL without options in the asset's own format", async () => {
    const res = await get(imgproxyUrl(creds, 'products/1/main', { format: 'jpg' }));
    expect(res.status).toBe(200);
    expect(res.raw.equals(photo)).toBe(true);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
  });

  it('resizes as imgproxy does: fit, fill, fill-down, force, auto, enlarge, extend, dpr', async () => {
    const cases: [Record<string, unknown>, [number, number]][] = [
      [{ resize: { resizing_type: 'fit', width: 100, height: 100 } }, [100, 75]],
      [{ resizing_type: 'fill', width: 100, height: 100 }, [100, 100]],
      [{ resizing_type: 'fill-down', width: 600, height: 600 }, [300, 300]],
      [{ resizing_type: 'force', width: 50, height: 80 }, [50, 80]],
      [{ resizing_type: 'auto', width: 100, height: 50 }, [100, 50]],
      [{ resizing_type: 'auto', width: 50, height: 100 }, [50, 38]],
      [{ width: 800 }, [400, 300]],
      [{ width: 800, enlarge: 1 }, [800, 600]],
      [{ width: 500, height: 500, extend: { extend: 1 } }, [500, 500]],
      [{ width: 100, dpr: 2 }, [200, 150]],
      [{ width: 300, dpr: 3 }, [400, 300]],
      [{ size: { width: 40, height: 40, enlarge: 0 }, resizing_type: 'fill' }, [40, 40]],
    ];
    for (const [options, [width, height]] of cases) {
      const meta = await imageOf(await get(imgproxyUrl(creds, 'products/1/main', { ...options, format: 'png' })));
      expect({ options, size: [meta.width, meta.height] }).toEqual({ options, size: [width, height] });
    }
  });

  it('places a crop by gravity and fills extended space and transparency with the background', async () => {
    // A 400x300 image whose left half is red and right half blue.
    const halves = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#ff0000' } })
      .composite([
        { input: { create: { width: 200, height: 300, channels: 3, background: '#0000ff' } }, left: 200, top: 0 },
      ])
      .png()
      .toBuffer();
    await api.call('PUT', '/v1/assets/halves', { key, form: imageForm([{ bytes: halves, type: 'image/png' }]) });
    const pixel = async (options: Record<string, unknown>, x: number, y: number) => {
      const res = await get(imgproxyUrl(creds, 'halves', { ...options, format: 'png' }));
      const { data, info } = await sharp(res.raw).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const i = (y * info.width + x) * 3;
      return [data[i], data[i + 1], data[i + 2]];
    };
    expect(await pixel({ resizing_type: 'fill', width: 100, height: 300, gravity: { type: 'we' } }, 50, 150)).toEqual([
      255, 0, 0,
    ]);
    expect(await pixel({ resizing_type: 'fill', width: 100, height: 300, gravity: { type: 'ea' } }, 50, 150)).toEqual([
      0, 0, 255,
    ]);
    expect(
      await pixel({ resizing_type: 'fill', width: 100, height: 300, gravity: { type: 'fp', x: 0.9, y: 0.5 } }, 50, 150),
    ).toEqual([0, 0, 255]);
    const extended = { width: 400, height: 500, extend: { extend: 1, gravity: { type: 'no' } }, background: '00ff00' };
    expect(await pixel(extended, 10, 10)).toEqual([255, 0, 0]);
    expect(await pixel(extended, 10, 450)).toEqual([0, 255, 0]);
  });

  it('encodes in the format and quality asked for', async () => {
    const q10 = await get(imgproxyUrl(creds, 'products/1/main', { width: 200, quality: 10, format: 'webp' }));
    const q90 = await get(imgproxyUrl(creds, 'products/1/main', { width: 200, quality: 90, format: 'webp' }));
    expect((await imageOf(q10)).format).toBe('webp');
    expect(q10.raw.length).toBeLessThan(q90.raw.length);
    const avif = await get(imgproxyUrl(creds, 'products/1/main', { width: 120, format: 'avif' }));
    expect(avif.headers.get('content-type')).toBe('image/avif');
    expect((await imageOf(avif)).format).toBe('heif');
    // The source's extension (@ in plain form, . in base64 form) sets the format as well.
    const ext = await api.call('GET', pathOf(imgproxyUrl(creds, 'products/1/main@webp', { width: 120 })));
    expect(ext.headers.get('content-type')).toBe('image/webp');
  });

  it('follows Accept when the URL names no format, and says so with Vary', async () => {
    const url = imgproxyUrl(creds, 'products/1/main', { width: 150 });
    const avif = await get(url, { accept: 'image/avif,image/webp,*/*' });
    const webp = await get(url, { accept: 'image/webp,*/*' });
    const plain = await get(url, { accept: '*/*' });
    const refused = await get(url, { accept: 'image/avif;q=0, image/webp' });
    expect([avif, webp, plain, refused].map((r) => r.headers.get('content-type'))).toEqual([
      'image/avif',
      'image/webp',
      'image/jpeg',
      'image/webp',
    ]);
    expect(avif.headers.get('vary')).toBe('Accept');
    expect(
      (await get(imgproxyUrl(creds, 'products/1/main', { width: 150, format: 'png' }))).headers.get('vary'),
    ).toBeNull();
    expect(avif.headers.get('etag')).not.toBe(webp.headers.get('etag'));
  });

  it('answers If-None-Match with 304, and caches a year only URLs that carry the current version', async () => {
    const asset = (await api.call('GET', '/v1/assets/products/1/main', { key })).body;
    const current = await get(
      imgproxyUrl(creds, 'products/1/main', { width: 90, format: 'png', cachebuster: asset.version }),
    );
    expect(current.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const stale = await get(imgproxyUrl(creds, 'products/1/main', { width: 90, format: 'png', cachebuster: 'old' }));
    expect(stale.headers.get('cache-control')).toBe('public, max-age=300');
    const none = await get(imgproxyUrl(creds, 'products/1/main', { width: 90, format: 'png' }));
    expect(none.headers.get('cache-control')).toBe('public, max-age=300');
    // The cache buster does not change the image: one ETag for all three.
    const etag = current.headers.get('etag')!;
    expect([stale.headers.get('etag'), none.headers.get('etag')]).toEqual([etag, etag]);
    const revalidated = await get(imgproxyUrl(creds, 'products/1/main', { width: 90, format: 'png' }), {
      'if-none-match': etag,
    });
    expect(revalidated.status).toBe(304);
    expect(revalidated.raw.length).toBe(0);
    expect(revalidated.headers.get('etag')).toBe(etag);
    expect(
      (await get(imgproxyUrl(creds, 'products/1/main', { width: 90, format: 'png' }), { 'if-none-match': '"other"' }))
        .status,
    ).toBe(200);
  });

  it('applies named presets, the default preset to every URL, and presets-only mode', async () => {
    const saved = await api.call('PUT', '/v1/delivery/presets', {
      key,
      json: { presets: { thumb: 'rs:fill:64:64/f:png', wide: 'w:200' } },
    });
    expect(saved.status, saved.raw.toString()).toBe(200);
    const thumb = await imageOf(await get(imgproxyUrl(creds, 'products/1/main', { preset: ['thumb'] })));
    expect([thumb.width, thumb.height, thumb.format]).toEqual([64, 64, 'png']);
    const both = await imageOf(
      await get(imgproxyUrl(creds, 'products/1/main', { preset: ['thumb', 'wide'], format: 'png' })),
    );
    expect([both.width, both.height]).toEqual([200, 64]);
    expectProblem(await get(imgproxyUrl(creds, 'products/1/main', { preset: ['nope'] })), 400, 'invalid_option');

    expect((await api.call('PATCH', '/v1/delivery', { key, json: { presetsOnly: true } })).body.presetsOnly).toBe(true);
    expect(
      (await imageOf(await get(imgproxyUrl(creds, 'products/1/main', { preset: ['thumb'], cachebuster: 'x' })))).width,
    ).toBe(64);
    expectProblem(await get(imgproxyUrl(creds, 'products/1/main', { width: 10 })), 400, 'invalid_option');
    await api.call('PATCH', '/v1/delivery', { key, json: { presetsOnly: false } });

    await api.call('PUT', '/v1/delivery/presets', { key, json: { presets: { default: 'w:50/f:png' } } });
    expect((await imageOf(await get(imgproxyUrl(creds, 'products/1/main', {})))).width).toBe(50);
    expect((await imageOf(await get(imgproxyUrl(creds, 'products/1/main', { width: 70 })))).width).toBe(70);
    await api.call('PUT', '/v1/delivery/presets', { key, json: { presets: {} } });

    expectProblem(
      await api.call('PUT', '/v1/delivery/presets', { key, json: { presets: { bad: 'w:abc' } } }),
      400,
      'invalid_option',
    );
    expectProblem(
      await api.call('PUT', '/v1/delivery/presets', { key, json: { presets: { loop: 'pr:thumb' } } }),
      400,
      'invalid_option',
    );
  });

  it('refuses unknown options, bad values and bad paths with 400, never a 500', async () => {
    const bad = [
      'w:-1',
      'w:abc',
      'w:99999',
      'w:1:2',
      'dpr:0',
      'dpr:9',
      'q:101',
      'q:0',
      'f:bmp',
      'g:up',
      'g:fp:2:0',
      'g:sm:1',
      'rt:stretch',
      'rs:fill:a',
      'bg:zzzzzz',
      'bg:1:2',
      'el:yes',
      'ex:1:sm',
      'cb:a%2Fb',
      'blur:3',
      'wm:1',
      'pr:',
    ];
    for (const option of bad) {
      const res = await get(rawUrl(creds, [option], 'plain/products/1/main'));
      expect({ option, status: res.status, code: res.body?.code }).toEqual({
        option,
        status: 400,
        code: 'invalid_option',
      });
    }
    // Sent as raw bytes: fetch would resolve the dot segments before sending, and the signature with them.
    const badSources = [
      'plain/../etc/passwd',
      'plain/a//b',
      'plain/a/./b',
      'plain/with%20space',
      'plain/a@b@c',
      '!!!',
      'YQ.png.png',
    ];
    for (const source of badSources) {
      // Written without half-closing the socket (as browsers do); the server closes it after its answer.
      const connection = rawConnection(api.base);
      connection.socket.write(
        `GET ${rawUrl(creds, ['w:10'], source).replace(/^https?:\/\/[^/]+/, '')} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
      );
      const res = await connection.answer;
      const code = /"code":"([a-z_]+)"/.exec(res.body)?.[1];
      expect({ source, status: res.status, code }, res.body).toEqual({ source, status: 400, code: 'invalid_url' });
    }
    expectProblem(await get(imgproxyUrl(creds, 'products/none', { width: 10 })), 404, 'not_found');
    expectProblem(
      await get(imgproxyUrl(creds, 'products/1/main', { width: 16000, height: 16000, enlarge: 1 })),
      400,
      'output_too_large',
    );
    for (const path of ['/i/', '/i/x', `/i/${creds.endpoint.split('/').pop()}/sig`, '/i/%zz/a/b']) {
      const res = await api.call('GET', path);
      expect({ path, status: res.status }).toMatchObject({ path, status: expect.any(Number) });
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
    }
  });

  it("refuses another vendor's signature, a tampered URL and a rotated key after its grace with 403", async () => {
    const other = await api.vendor();
    const otherCreds = await credentials(api, other.key);
    // The other vendor's key on this vendor's endpoint.
    const foreign = imgproxyUrl({ ...otherCreds, endpoint: creds.endpoint }, 'products/1/main', { width: 10 });
    expectProblem(await get(foreign), 403, 'invalid_signature');
    // This vendor's URL on the other vendor's endpoint: the other vendor has no such asset, and no such key.
    const moved = imgproxyUrl({ ...creds, endpoint: otherCreds.endpoint }, 'products/1/main', { width: 10 });
    expectProblem(await get(moved), 403, 'invalid_signature');
    const url = imgproxyUrl(creds, 'products/1/main', { width: 10, format: 'png' });
    expect((await get(url)).status).toBe(200);
    expectProblem(await get(url.replace('w:10', 'w:11')), 403, 'invalid_signature');
    expectProblem(await get(url.replace(/\/i\/([^/]+)\/[^/]+\//, '/i/$1/insecure/')), 403, 'invalid_signature');

    const rotated = await api.call('POST', '/v1/delivery/rotate', { key });
    expect(rotated.body.key).not.toBe(creds.key);
    expect(rotated.body.previousValidUntil).not.toBeNull();
    expect((await get(url)).status).toBe(200); // the old pair during its grace
    const fresh = imgproxyUrl(rotated.body, 'products/1/main', { width: 12, format: 'png' });
    expect((await get(fresh)).status).toBe(200);
    // A day later: the grace is over (the store's record of it is what every process reads).
    await api.services.engine.store.db
      .updateTable('vendor_delivery')
      .set({ previous_until: Date.now() - 1 })
      .execute();
    // A process keeps a vendor's settings for a few seconds: the old URL is refused once it has read them again.
    const deadline = Date.now() + 15_000;
    while ((await get(url)).status === 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expectProblem(await get(url), 403, 'invalid_signature');
    expect((await get(fresh)).status).toBe(200);
    creds = await credentials(api, key);
  });

  it('accepts `insecure` in place of a signature only in public mode', async () => {
    const insecure = imgproxyUrl({ ...creds, key: '', salt: '' }, 'products/1/main', { width: 20, format: 'png' });
    expect(insecure).toContain('/insecure/');
    expectProblem(await get(insecure), 403, 'invalid_signature');
    expect((await api.call('PATCH', '/v1/delivery', { key, json: { public: true } })).body.public).toBe(true);
    expect((await imageOf(await get(insecure))).width).toBe(20);
    await api.call('PATCH', '/v1/delivery', { key, json: { public: false } });
  });

  it('renders a new variant once for 100 concurrent requests, and spends the render budget on misses only', async () => {
    const renders = async () => {
      const metrics = await api.call('GET', '/metrics', { key: ADMIN_KEY });
      return Number(/pixq_delivery_requests\{outcome="render"\} (\d+)/.exec(metrics.raw.toString())![1]);
    };
    const before = await renders();
    const url = imgproxyUrl(creds, 'products/1/main', { width: 123, format: 'webp' });
    const answers = await Promise.all(Array.from({ length: 100 }, () => get(url)));
    expect(answers.map((a) => a.status).filter((s) => s !== 200)).toEqual([]);
    expect(new Set(answers.map((a) => a.raw.toString('base64'))).size).toBe(1);
    expect((await renders()) - before).toBe(1);
  });

  it("answers a URL's image to a client without a key, past the per-address budget; a bad signature spends it", async () => {
    const limited = await setup.start({ PIXQ_RATE_ANONYMOUS: '20/1h' });
    try {
      const v = await limited.vendor();
      await limited.call('PUT', '/v1/assets/p', {
        key: v.key,
        form: imageForm([{ bytes: await png(), type: 'image/png' }]),
      });
      const c = await credentials(limited, v.key);
      const url = pathOf(imgproxyUrl(c, 'p', { width: 8, format: 'png' }));
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) statuses.push((await limited.call('GET', url)).status);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      const forged = url.replace(/\/i\/([^/]+)\/[^/]+\//, '/i/$1/AAAA/');
      const refused: number[] = [];
      for (let i = 0; i < 42 && !refused.includes(429); i++) refused.push((await limited.call('GET', forged)).status);
      expect(refused[0]).toBe(403);
      expect(refused).toContain(429);
    } finally {
      await limited.close();
    }
  });

  it('keeps another vendor from listing, reading, replacing or deleting an asset', async () => {
    const other = await api.vendor();
    expect((await api.call('GET', '/v1/assets', { key: other.key })).body.assets).toEqual([]);
    expectProblem(await api.call('GET', '/v1/assets/products/1/main', { key: other.key }), 404, 'not_found');
    expectProblem(await api.call('DELETE', '/v1/assets/products/1/main', { key: other.key }), 404, 'not_found');
    // Its PUT writes its own asset at that path; this vendor's stays as it was.
    const mine = (await api.call('GET', '/v1/assets/products/1/main', { key })).body;
    expect(
      (
        await api.call('PUT', '/v1/assets/products/1/main', {
          key: other.key,
          form: imageForm([{ bytes: await png() }]),
        })
      ).status,
    ).toBe(200);
    expect((await api.call('GET', '/v1/assets/products/1/main', { key })).body.version).toBe(mine.version);
    expectProblem(await api.call('GET', '/v1/assets', {}), 401, 'unauthorized');
    expectProblem(await api.call('GET', '/v1/assets', { key: ADMIN_KEY }), 403, 'forbidden');
  });

  it('keeps the variant cache within its bound, evicting the least recently used variant first', async () => {
    const small = await setup.start({ PIXQ_DELIVERY_CACHE_BYTES: '6000', PIXQ_DELIVERY_MEMORY_BYTES: '0' });
    try {
      const v = await small.vendor();
      await small.call('PUT', '/v1/assets/src', { key: v.key, form: imageForm([{ bytes: await jpeg(400, 300) }]) });
      const c = await credentials(small, v.key);
      const url = (width: number) => pathOf(imgproxyUrl(c, 'src', { width, format: 'png', quality: 50 }));
      const cacheBytes = async () =>
        Number(
          (await small.services.engine.store.db.selectFrom('delivery_cache').select('bytes').executeTakeFirstOrThrow())
            .bytes,
        );
      const rows = async () =>
        small.services.engine.store.db.selectFrom('asset_variants').select(['key', 'blob', 'bytes']).execute();
      const sizes: number[] = [];
      const seen = new Set<string>();
      for (const width of [40, 41, 42, 43, 44, 45, 46, 47]) {
        const res = await small.call('GET', url(width));
        expect(res.status).toBe(200);
        sizes.push(res.raw.length);
        // A variant is stored after its answer: wait for its row (the ETag holds the start of its key).
        const keyStart = res.headers.get('etag')!.slice(1, -1);
        await waitUntil(async () => (await rows()).some((r) => r.key.startsWith(keyStart)), 15_000, 'the variant row');
        for (const r of await rows()) seen.add(r.blob);
        expect(await cacheBytes()).toBeLessThanOrEqual(6000);
        expect(await cacheBytes()).toBe((await rows()).reduce((sum, r) => sum + Number(r.bytes), 0));
      }
      // Far more than fits was rendered: the oldest variants went, the newest stayed.
      expect(sizes.reduce((a, b) => a + b, 0)).toBeGreaterThan(6000);
      const kept = new Set((await rows()).map((r) => r.blob));
      const evicted = [...seen].filter((b) => !kept.has(b));
      expect(evicted.length).toBeGreaterThan(0);
      const renders = async () =>
        Number(
          /outcome="render"\} (\d+)/.exec((await small.call('GET', '/metrics', { key: ADMIN_KEY })).raw.toString())![1],
        );
      const before = await renders();
      await small.call('GET', url(47));
      expect(await renders()).toBe(before);
      // An evicted variant's bytes go with the sweep after the grace, like every blob nothing refers to.
      const blobs = small.services.blobs;
      await small.services.engine.blobs.sweep((k) => blobs.delete(k), Date.now() + BLOB_GRACE_MS + 1);
      for (const blob of evicted) expect(await blobs.exists(blob)).toBe(false);
      for (const blob of kept) expect(await blobs.exists(blob)).toBe(true);
      // Asked for again, an evicted variant is rendered again.
      await small.call('GET', url(40));
      expect(await renders()).toBe(before + 1);
    } finally {
      await small.close();
    }
  });
});
