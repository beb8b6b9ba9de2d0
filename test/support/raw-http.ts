import net from 'node:net';

/** An HTTP answer read off a raw socket: status, lower-cased headers, body text. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses what a server wrote on a socket (one answer without chunked encoding). */
export function parseRawAnswer(text: string): RawAnswer {
  const end = text.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = text.slice(0, end < 0 ? text.length : end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return {
    status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0),
    headers,
    body: end < 0 ? '' : text.slice(end + 4),
  };
}

/** A raw connection: write bytes when you like; `answer` resolves with what the server wrote once it closes. */
export interface RawConnection {
  socket: net.Socket;
  closed: boolean;
  answer: Promise<RawAnswer>;
}

export function rawConnection(base: string): RawConnection {
  const { hostname, port } = new URL(base);
  const socket = net.connect(Number(port), hostname);
  const chunks: Buffer[] = [];
  const connection: RawConnection = {
    socket,
    closed: false,
    answer: new Promise((resolve) => {
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('error', () => undefined); // the server may reset it; what it wrote before still counts
      socket.on('close', () => {
        connection.closed = true;
        resolve(parseRawAnswer(Buffer.concat(chunks).toString('latin1')));
      });
    }),
  };
  return connection;
}

/**
 * Sends `request` as bytes on a fresh connection (for requests fetch refuses to send: NUL or CR in a header)
 * and resolves with what the server wrote once it closes the connection.
 */
export async function rawRequest(base: string, request: Buffer | string, timeoutMs = 15_000): Promise<RawAnswer> {
  const connection = rawConnection(base);
  connection.socket.setTimeout(timeoutMs, () => connection.socket.destroy());
  connection.socket.end(request);
  return connection.answer;
}
