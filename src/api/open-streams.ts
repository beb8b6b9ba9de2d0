import type { ServerResponse } from 'node:http';

/** The final comment of a stream the server ends; clients reconnect (behind a balancer, to another process). */
const SHUTDOWN_COMMENT = ': server shutting down; reconnect with Last-Event-ID\n\n';

/**
 * The event streams this process has open. An SSE response never ends by itself, so `close()` of the server
 * would wait for its clients to leave: at shutdown every stream is ended here with a final comment.
 */
export class OpenStreams {
  private readonly streams = new Set<ServerResponse>();

  /** Tracks `res` until it closes. */
  add(res: ServerResponse) {
    this.streams.add(res);
    res.on('close', () => this.streams.delete(res));
  }

  endAll() {
    for (const res of this.streams) res.end(SHUTDOWN_COMMENT);
  }
}
