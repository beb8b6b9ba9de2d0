import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageForm, jpeg, startApi, type ApiHarness } from '../support/api.js';
import { credentials, imgproxyUrl, pathOf, type Credentials } from '../support/delivery.js';
import { sqliteTarget } from '../support/stores.js';
import { startVarnish, varnishMissing, type Varnish } from '../support/varnish.js';

/**
 * Delivery behind a real CDN cache: Debian's Varnish with its built-in VCL in front of pixq. What pixq's
 * headers promise (Cache-Control, Vary, ETag) must hold in a cache that obeys them.
 */
const missing = varnishMissing();
if (missing) console.warn(`skipping the CDN tests: ${missing}`);

describe.skipIf(missing !== undefined)('delivery behind Varnish', () => {
  let api: ApiHarness;
  let varnish: Varnish;
  let key: string;
  let creds: Credentials;

  beforeAll(async () => {
    api = await startApi(sqliteTarget);
    varnish = await startVarnish(new URL(api.base).host);
    ({ key } = await api.vendor());
    creds = await credentials(api, key);
    await api.call('PUT', '/v1/assets/shop/item', { key, form: imageForm([{ bytes: await jpeg(300, 200) }]) });
  });
  afterAll(async () => {
    await varnish?.stop();
    await api?.close();
  });

  /** A GET through Varnish; `hit` when X-Varnish carries two ids (this request's and the cached object's). */
  async function viaCdn(url: string, headers: Record<string, string> = {}) {
    const res = await fetch(varnish.base + pathOf(url), { headers });
    const body = Buffer.from(await res.arrayBuffer());
    const ids = (res.headers.get('x-varnish') ?? '').trim().split(/\s+/);
    return { status: res.status, type: res.headers.get('content-type'), body, hit: ids.length === 2 };
  }

  it('serves the second request for a variant from the cache', async () => {
    const asset = (await api.call('GET', '/v1/assets/shop/item', { key })).body;
    const url = imgproxyUrl(creds, 'shop/item', { width: 150, format: 'webp', cachebuster: asset.version });
    const first = await viaCdn(url);
    const second = await viaCdn(url);
    expect([first.status, first.hit, second.status, second.hit]).toEqual([200, false, 200, true]);
    expect(second.body.equals(first.body)).toBe(true);
  });

  it('keeps one cached variant per Accept: AVIF and WebP clients each get their format', async () => {
    const url = imgproxyUrl(creds, 'shop/item', { width: 120 });
    const avif = 'image/avif,image/webp,*/*';
    const webp = 'image/webp,*/*';
    const a1 = await viaCdn(url, { accept: avif });
    const w1 = await viaCdn(url, { accept: webp });
    const a2 = await viaCdn(url, { accept: avif });
    const w2 = await viaCdn(url, { accept: webp });
    expect([a1.type, w1.type, a2.type, w2.type]).toEqual(['image/avif', 'image/webp', 'image/avif', 'image/webp']);
    expect([a1.hit, w1.hit, a2.hit, w2.hit]).toEqual([false, false, true, true]);
    expect((await sharp(w2.body).metadata()).format).toBe('webp');
  });

  it("serves a replaced asset's new bytes at its new URL, while the old URL stays cached as it was", async () => {
    const before = (await api.call('GET', '/v1/assets/shop/item', { key })).body;
    const oldUrl = imgproxyUrl(creds, 'shop/item', { width: 100, format: 'png', cachebuster: before.version });
    const old = await viaCdn(oldUrl);
    expect((await sharp(old.body).metadata()).height).toBe(67);

    const replaced = await api.call('PUT', '/v1/assets/shop/item', {
      key,
      form: imageForm([{ bytes: await jpeg(200, 300) }]),
    });
    expect(replaced.body.version).not.toBe(before.version);
    const newUrl = imgproxyUrl(creds, 'shop/item', { width: 100, format: 'png', cachebuster: replaced.body.version });
    const fresh = await viaCdn(newUrl);
    expect(fresh.hit).toBe(false);
    expect((await sharp(fresh.body).metadata()).height).toBe(150);
    expect((await viaCdn(newUrl)).hit).toBe(true);
    // The asset's own URL, as the API hands it out, is the new bytes too.
    const original = await viaCdn(replaced.body.url);
    expect((await sharp(original.body).metadata()).height).toBe(300);
  });
});
