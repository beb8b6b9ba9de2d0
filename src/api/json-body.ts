import type { FastifyInstance } from 'fastify';
import { PixqError } from '../errors.js';

/** Deeper JSON is refused: no submission needs more, and JSON.stringify of 100,000 levels overflows the stack. */
export const MAX_JSON_DEPTH = 32;

/**
 * Throws 400 `invalid_json` when `text` nests objects and arrays deeper than MAX_JSON_DEPTH. One pass without
 * recursion, skipping strings; run before JSON.parse so no later step (validation, stringify) sees the depth.
 */
export function checkJsonDepth(text: string) {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_JSON_DEPTH) {
        throw new PixqError('invalid_json', `JSON may nest objects and arrays at most ${MAX_JSON_DEPTH} levels deep`, {
          status: 400,
        });
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}

/**
 * Replaces Fastify's application/json parser by the same parser (prototype-poisoning checks included)
 * behind the depth check.
 */
export function registerJsonParser(app: FastifyInstance) {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body: string, done) => {
    try {
      checkJsonDepth(body);
    } catch (err) {
      done(err as Error, undefined);
      return;
    }
    parse(request, body, done);
  });
}
