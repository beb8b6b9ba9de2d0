import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  port: number;
  /** Paths requested so far, in order. */
  hits: string[];
  url(path: string, host?: string): string;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 that records every request it receives. */
export async function startServer(handler: http.RequestListener): Promise<TestServer> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    hits,
    url: (path, host = '127.0.0.1') => `http://${host}:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
