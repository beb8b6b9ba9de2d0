import { expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { waitUntil, workerCluster } from '../support/processes.js';
import { webhookReceiver } from '../support/webhook-receiver.js';

describeEachStore('crash: SIGKILL a worker mid-delivery', (target) => {
  // To an endpoint, and to a job's own webhookUrl (signed with the vendor's callback secret).
  it.each(['endpoint', 'callback'] as const)(
    'the delivery (%s) is sent again by another worker, with the same webhook-id',
    { timeout: 120_000 },
    async (kind) => {
      const receiver = await webhookReceiver();
      const cluster = await workerCluster(target, {
        PIXQ_WORKER_CONCURRENCY: 'noop=2',
        PIXQ_POLL_MS: '100',
        PIXQ_URL_ALLOWLIST: '127.0.0.1',
        // The lease of a delivery is twice this: a dead worker's delivery comes back after 2 s.
        PIXQ_WEBHOOK_TIMEOUT_MS: '1000',
        PIXQ_WEBHOOK_RETRY_SCHEDULE: '0,50ms,100ms,200ms,400ms',
        PIXQ_LOG_LEVEL: 'debug',
      });
      const { engine, workers } = cluster;
      try {
        const vendor = await engine.vendors.create('hooked');
        const { secret } =
          kind === 'endpoint'
            ? await engine.webhooks.create(vendor.id, { url: receiver.url, events: ['job.succeeded'] })
            : await engine.webhooks.callbackSecret(vendor.id);
        receiver.trust(secret);
        // The first request is held open: the worker sending it is killed while it waits for the answer.
        let first = true;
        receiver.respondWith(() => (first ? ((first = false), 'hang') : { status: 200 }));
        const [job] = (
          await engine.jobs.enqueue(vendor.id, [
            { type: 'noop', options: { ms: 0 }, ...(kind === 'callback' && { webhookUrl: receiver.url }) },
          ])
        ).jobs;
        await waitUntil(() => receiver.received.length === 1, 30_000, 'the first delivery attempt');
        const [delivery] = await engine.store.db.selectFrom('webhook_deliveries').selectAll().execute();
        const sender = workers.find((w) => delivery.lease_owner?.includes(`:${w.pid}:`));
        expect(sender, `lease owner ${delivery.lease_owner}`).toBeDefined();
        sender!.child.kill('SIGKILL');
        await sender!.exited;

        await waitUntil(() => receiver.delivered().length === 1, 60_000, 'the delivery after the crash');
        const [held, resent] = receiver.received;
        expect(resent.id).toBe(held.id);
        expect(resent.verifiedWith).toEqual([secret]);
        expect(resent.payload.data).toMatchObject({ jobId: job.id, state: 'succeeded' });
        // The receiver answered; the worker records that after the answer arrives.
        const row = async () => (await engine.store.db.selectFrom('webhook_deliveries').selectAll().execute())[0];
        await waitUntil(async () => (await row()).state !== 'pending', 30_000, 'the delivery to be recorded');
        const after = await row();
        expect(after).toMatchObject({ state: 'succeeded', attempts: 2, last_status: 200 });
        expect(after.lease_owner).toBeNull();
      } finally {
        await cluster.close();
        await receiver.close();
      }
    },
  );
});
