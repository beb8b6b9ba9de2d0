/** One Server-Sent Events message, as the WHATWG parsing rules produce it. */
export interface SseMessage {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * Parses an event stream as it arrives (any chunking, CRLF/CR/LF line ends, comments, multi-line data).
 * Hand-written because it is twenty lines and every SSE library either needs Node's streams or is an
 * EventSource polyfill; this runs on any fetch body in browsers and Node.
 */
export async function* readSse(body: ReadableStream<Uint8Array>, onChunk: () => void): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  let event = '';
  let id: string | undefined;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onChunk();
      buffer += decoder.decode(value, { stream: true });
      // A trailing CR may be the first half of a CRLF still in flight: keep it for the next chunk.
      const carry = buffer.endsWith('\r') ? '\r' : '';
      const lines = buffer.slice(0, buffer.length - carry.length).split(/\r\n|\r|\n/);
      buffer = (lines.pop() ?? '') + carry;
      for (const line of lines) {
        if (line === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id };
          data = [];
          event = '';
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') data.push(text);
        else if (field === 'event') event = text;
        else if (field === 'id' && !text.includes('\0')) id = text;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
