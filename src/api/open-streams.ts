import type { ServerResponse } from 'node:http';
import { PixqError } from '../errors.js';

/** The final comment of a stream the server ends; clients reconnect (behind a balancer, to another process). */
const SHUTDOWN_COMMENT = ': server shutting down; reconnect with Last-Event-ID\n\n';

/**
 * The event streams this process has open, per vendor. Each holds a connection and a bus listener, so a
 * vendor may open only so many at once. An SSE response never ends by itself, so `close()` of the server
 * would wait for its clients to leave: at shutdown every stream is ended here with a final comment.
 */
export class OpenStreams {
  private readonly byVendor = new Map<string, Set<ServerResponse>>();

  constructor(private readonly maxPerVendor: number) {}

  /** Tracks `res` until it closes; throws 429 `too_many_streams` when the vendor has its limit open. */
  add(vendorId: string, res: ServerResponse) {
    const mine = this.byVendor.get(vendorId) ?? new Set<ServerResponse>();
    if (mine.size >= this.maxPerVendor) {
      throw new PixqError(
        'too_many_streams',
        `at most ${this.maxPerVendor} event streams of one vendor may be open at once; close one, or filter one stream by batchId`,
        { status: 429, details: { limit: this.maxPerVendor } },
      );
    }
    mine.add(res);
    this.byVendor.set(vendorId, mine);
    res.on('close', () => {
      mine.delete(res);
      if (mine.size === 0 && this.byVendor.get(vendorId) === mine) this.byVendor.delete(vendorId);
    });
  }

  endAll() {
    for (const streams of this.byVendor.values()) for (const res of streams) res.end(SHUTDOWN_COMMENT);
  }
}
