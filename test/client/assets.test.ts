import { PixqApiError, PixqClient } from '@pixq/client';
import { deliveryUrl } from '@pixq/client/delivery';
import sharp from 'sharp';
import { expect, it } from 'vitest';
import { AssetView } from '../../src/api/schemas.js';
import { expectShape, jpeg, png, useApi } from '../support/api.js';
import { imgproxyUrl } from '../support/delivery.js';
import { describeEachStore } from '../support/stores.js';

/** The SDK's assets and delivery calls against a real pixq on loopback, and its Node-side URL builder. */
describeEachStore('PixqClient: assets and delivery URLs', (target) => {
  const api = useApi(target);

  it('publishes, puts, lists (an async iterator over pages), reads and deletes assets', async () => {
    const { key } = await api().vendor();
    const pixq = new PixqClient({ baseUrl: api().base, apiKey: key });
    const stop = await api().startWorker();
    try {
      const job = await pixq.submit({
        type: 'transform',
        file: new Blob([await jpeg(80, 60)], { type: 'image/jpeg' }),
        options: { format: 'png' },
      });
      await pixq.wait(job.id, { timeoutMs: 30_000 });
      const published = await pixq.assets.publish(job.id, 'sdk/from-job');
      expectShape(AssetView, published);
      expect(published).toMatchObject({ path: 'sdk/from-job', jobId: job.id, width: 80 });
      for (const n of [1, 2, 3])
        await pixq.assets.put(`sdk/put/${n}`, { bytes: await png(8, 8), name: 'p.png', type: 'image/png' });
      expect((await pixq.assets.get('sdk/put/2')).width).toBe(8);
      const paths: string[] = [];
      for await (const asset of pixq.assets.list({ prefix: 'sdk/', limit: 2 })) paths.push(asset.path);
      expect(paths).toEqual(['sdk/from-job', 'sdk/put/1', 'sdk/put/2', 'sdk/put/3']);
      await pixq.assets.delete('sdk/put/1');
      await expect(pixq.assets.get('sdk/put/1')).rejects.toMatchObject({ status: 404, code: 'not_found' });
      await expect(pixq.assets.delete('sdk/put/1')).rejects.toBeInstanceOf(PixqApiError);
    } finally {
      await stop();
    }
  });

  it('builds delivery URLs on the Node side that pixq serves, the same ones imgproxy-node builds', async () => {
    const { key } = await api().vendor();
    const pixq = new PixqClient({ baseUrl: api().base, apiKey: key });
    const asset = await pixq.assets.put('shop/a', { bytes: await jpeg(200, 100), name: 'a.jpg', type: 'image/jpeg' });
    const credentials = await pixq.delivery();
    const options = { resizingType: 'fill', width: 50, height: 50, format: 'png', cachebuster: asset.version } as const;
    const url = deliveryUrl('shop/a', options, credentials);
    const same = imgproxyUrl(credentials, 'shop/a', {
      resizing_type: 'fill',
      width: 50,
      height: 50,
      format: 'png',
      cachebuster: asset.version,
    });
    // The same options spelt differently (f:png against @png): both signed, one variant, the same bytes.
    expect(same).not.toBe(url);
    const [mine, theirs] = await Promise.all([fetch(url), fetch(same)]);
    expect([mine.status, theirs.status]).toEqual([200, 200]);
    const [a, b] = [Buffer.from(await mine.arrayBuffer()), Buffer.from(await theirs.arrayBuffer())];
    expect(a.equals(b)).toBe(true);
    expect(await sharp(a).metadata()).toMatchObject({ format: 'png', width: 50, height: 50 });
    expect(mine.headers.get('cache-control')).toContain('immutable');

    const rotated = await pixq.rotateDeliveryKey();
    expect(rotated.key).not.toBe(credentials.key);
    expect((await fetch(url)).status).toBe(200); // the old key still verifies for a day
    expect((await pixq.updateDelivery({ public: true })).public).toBe(true);
    await pixq.setDeliveryPresets({ small: 'w:10' });
    expect((await pixq.deliveryPresets()).presets).toEqual({ small: 'w:10' });
  });
});
