import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { expectProblem, jpeg, openSse, startApi, useApi, type ApiHarness } from '../support/api.js';
import { waitUntil } from '../support/processes.js';
import { rawConnection } from '../support/raw-http.js';

/** Limits on what one client can hold open: event streams per vendor, slow or stalled requests. */
describeEachStore('resource caps', (target) => {
  describe('event streams', () => {
    const api = useApi(target, { PIXQ_MAX_STREAMS_PER_VENDOR: '3' });

    it('refuses a vendor’s stream past PIXQ_MAX_STREAMS_PER_VENDOR with 429 too_many_streams, and frees the slot on close', async () => {
      const { key } = await api().vendor();
      const other = await api().vendor();
      const streams = await Promise.all([1, 2, 3].map(() => openSse(api(), '/v1/events', key)));
      try {
        expect(streams.map((s) => s.status)).toEqual([200, 200, 200]);
        const refused = await api().call('GET', '/v1/events', { key });
        expectProblem(refused, 429, 'too_many_streams');
        expect(refused.body.details).toEqual({ limit: 3 });
        const others = await openSse(api(), '/v1/events', other.key); // another vendor has its own limit
        expect(others.status).toBe(200);
        others.close();

        streams.shift()!.close();
        // The server learns of the close when the connection ends; then a new stream fits.
        let reopened: Awaited<ReturnType<typeof openSse>> | undefined;
        await waitUntil(
          async () => {
            const attempt = await openSse(api(), '/v1/events', key);
            if (attempt.status === 200) reopened = attempt;
            return reopened !== undefined;
          },
          20_000,
          'a stream slot to be freed',
        );
        streams.push(reopened!);
      } finally {
        for (const s of streams) s.close();
      }
    });
  });

  /** The upload's temp files under the blob store: none may be left behind by a request that was cut off. */
  const tempFiles = (api: ApiHarness) => {
    const dir = path.join(api.dataDir, 'blobs', 'tmp');
    return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  };

  /** Starts a multipart upload on a raw connection: headers and the first bytes of the image, no end. */
  async function startUpload(api: ApiHarness, key: string) {
    const image = await jpeg(256, 256);
    const boundary = 'pixqboundary';
    const head = `--${boundary}\r\ncontent-disposition: form-data; name="image"; filename="a.jpg"\r\ncontent-type: image/jpeg\r\n\r\n`;
    const connection = rawConnection(api.base);
    connection.socket.write(
      `POST /v1/uploads HTTP/1.1\r\nHost: pixq\r\nAuthorization: Bearer ${key}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${head.length + image.length + 100}\r\n\r\n${head}`,
    );
    connection.socket.write(image.subarray(0, 64));
    return { connection, rest: image.subarray(64) };
  }

  it('answers an upload that stalls mid-body with 408 request_timeout after PIXQ_BODY_IDLE_TIMEOUT_MS and keeps no temp file', async () => {
    const api = await startApi(target, { PIXQ_BODY_IDLE_TIMEOUT_MS: '300' });
    try {
      const { key } = await api.vendor();
      const { connection } = await startUpload(api, key);
      await waitUntil(() => connection.closed, 20_000, 'the server to close the stalled upload');
      const answer = await connection.answer;
      expect(answer.status).toBe(408);
      expect(JSON.parse(answer.body)).toMatchObject({ status: 408, code: 'request_timeout' });
      await waitUntil(() => tempFiles(api).length === 0, 20_000, 'the temp file to be removed');
      // Still serving.
      expect((await api.call('GET', '/healthz')).status).toBe(200);
    } finally {
      await api.close();
    }
  });

  it('answers an upload trickling a byte at a time with 408 once PIXQ_REQUEST_TIMEOUT_MS has passed', async () => {
    const api = await startApi(target, { PIXQ_REQUEST_TIMEOUT_MS: '1000' });
    try {
      const { key } = await api.vendor();
      const { connection, rest } = await startUpload(api, key);
      // One byte every 50 ms keeps the connection from ever being idle; only the whole-request deadline ends it.
      const deadline = Date.now() + 30_000;
      for (let i = 0; !connection.closed && i < rest.length && Date.now() < deadline; i++) {
        connection.socket.write(rest.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, 50));
      }
      await waitUntil(() => connection.closed, 20_000, 'the server to close the trickling upload');
      const answer = await connection.answer;
      expect(answer.status).toBe(408);
      expect(JSON.parse(answer.body)).toMatchObject({ status: 408, code: 'request_timeout' });
      await waitUntil(() => tempFiles(api).length === 0, 20_000, 'the temp file to be removed');
    } finally {
      await api.close();
    }
  });
});
