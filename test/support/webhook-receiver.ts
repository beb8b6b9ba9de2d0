import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

// Short delays so retries happen within a test; the schedule's shape (at once, then longer) is the real one's.
export const FAST_WEBHOOK_SCHEDULE = '0,50ms,100ms,200ms,400ms,800ms,1600ms,3200ms';
/** What webhook tests run with: receivers on loopback allowed, fast retries. */
export const WEBHOOK_TEST_ENV = {
  PIXQ_URL_ALLOWLIST: '127.0.0.1',
  PIXQ_WEBHOOK_RETRY_SCHEDULE: FAST_WEBHOOK_SCHEDULE,
  PIXQ_WEBHOOK_TIMEOUT_MS: '2000',
};

/** One request the receiver got, with the outcome of verifying its signature against each known secret. */
export interface ReceivedWebhook {
  id: string;
  timestamp: number;
  signature: string;
  body: string;
  payload: any;
  /** Which of the receiver's secrets verified it (standardwebhooks' own verify). */
  verifiedWith: string[];
  answered: number;
  at: number;
}

export type Responder = (req: ReceivedWebhook) => { status: number; headers?: Record<string, string> } | 'hang';

/**
 * A webhook receiver on loopback, as a vendor would run one: verifies every request with the
 * `standardwebhooks` package and answers as `respond` says (200 by default; `'hang'` never answers).
 */
export async function webhookReceiver() {
  const received: ReceivedWebhook[] = [];
  const secrets: string[] = [];
  let respond: Responder = () => ({ status: 200 });
  const hanging: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = {
        'webhook-id': String(req.headers['webhook-id'] ?? ''),
        'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
        'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
      };
      const verifiedWith = secrets.filter((secret) => {
        try {
          new Webhook(secret).verify(body, headers);
          return true;
        } catch {
          return false;
        }
      });
      const hit: ReceivedWebhook = {
        id: headers['webhook-id'],
        timestamp: Number(headers['webhook-timestamp']),
        signature: headers['webhook-signature'],
        body,
        payload: JSON.parse(body),
        verifiedWith,
        answered: 0,
        at: Date.now(),
      };
      const answer = respond(hit);
      received.push(hit);
      if (answer === 'hang') {
        hanging.push(res);
        return;
      }
      hit.answered = answer.status;
      res.writeHead(answer.status, answer.headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    /** Requests answered 2xx, by webhook-id. */
    delivered: () => received.filter((r) => r.answered >= 200 && r.answered < 300),
    trust(secret: string) {
      secrets.push(secret);
    },
    respondWith(next: Responder) {
      respond = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
