import { expect, it } from 'vitest';
import { loadSigningSecret, signBlobUrl } from '../../src/blobs/index.js';
import { describeEachStore } from '../support/stores.js';
import { png, startApi, type ApiHarness } from '../support/api.js';

/**
 * Signed output downloads are authorised by their signature, not by a key: behind a load balancer every
 * client shares one address, so they must not spend that address's anonymous budget. A bad signature is an
 * anonymous request like any other and still does.
 */
describeEachStore('signed downloads', (target) => {
  // Each test has its own API, so each starts with the address's whole anonymous budget.
  async function withApi(fn: (api: ApiHarness, url: string) => Promise<void>) {
    const api = await startApi(target, { PIXQ_RATE_ANONYMOUS: '100/1h' });
    try {
      const { key } = await api.services.blobs.put(await png(), 'image/png');
      const secret = await loadSigningSecret(api.config);
      await fn(api, signBlobUrl({ key, contentType: 'image/png', expiresAt: Date.now() + 600_000 }, secret));
    } finally {
      await api.close();
    }
  }

  it('serves 150 downloads of one signed URL from one address, all 200, past the anonymous budget of 100', () =>
    withApi(async (api, url) => {
      const statuses: number[] = [];
      for (let i = 0; i < 150; i++) statuses.push((await api.call('GET', url)).status);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
    }));

  it('still meters a download with a bad signature as an anonymous request', () =>
    withApi(async (api, url) => {
      const forged = url.replace(/sig=[^&]+/, 'sig=AAAA');
      const statuses: number[] = [];
      // 100 of them fit in the budget; one window boundary during the run can at most start it over once.
      for (let i = 0; i < 202 && !statuses.includes(429); i++) statuses.push((await api.call('GET', forged)).status);
      expect(statuses[0]).toBe(403);
      expect(statuses).toContain(429);
    }));
});
