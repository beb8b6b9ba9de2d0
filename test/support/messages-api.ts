import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for Anthropic's Messages API on loopback: `POST /v1/messages` answers from a script, one
 * answer per request (the last one repeats), and every request body is recorded for the test to inspect.
 */
export interface ScriptedAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface MessagesApi {
  url: string;
  requests: { headers: http.IncomingHttpHeaders; body: any }[];
  script(...answers: ScriptedAnswer[]): void;
  close(): Promise<void>;
}

export async function messagesApi(): Promise<MessagesApi> {
  let answers: ScriptedAnswer[] = [];
  const requests: MessagesApi['requests'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/messages') {
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end(JSON.stringify(apiError('not_found_error', 'no such route')));
        return;
      }
      requests.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      const answer = answers.length > 1 ? answers.shift()! : answers[0];
      res
        .writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers })
        .end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script: (...next) => void (answers = next),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export function apiError(type: string, message: string) {
  return { type: 'error', error: { type, message } };
}

/** A Messages API answer whose content is one tool_use block with `input`. */
export function toolUse(name: string, input: unknown, model = 'claude-test-1'): ScriptedAnswer {
  return {
    status: 200,
    body: {
      id: 'msg_test',
      type: 'message',
      role: 'assistant',
      model,
      content: [{ type: 'tool_use', id: 'toolu_test', name, input }],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: 1234, output_tokens: 56 },
    },
  };
}
