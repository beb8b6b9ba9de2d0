import type { FastifyRequest } from 'fastify';
import { PixqError, validationFailed } from '../errors.js';
import { asMultipartProblem, storeUpload, type IntakeDeps } from './intake.js';
import { vendorOf } from './auth.js';

const JSON_FIELDS = new Set(['options', 'metadata']);
const INTEGER_FIELDS = new Set(['priority', 'maxAttempts', 'timeoutMs']);

/**
 * Reads a multipart submission: text fields (`options` and `metadata` as JSON text) and files in the field
 * `image`, each stored as an upload as it streams in. Returns the fields and the uploads in order.
 */
export async function readMultipart(request: FastifyRequest, deps: IntakeDeps, maxFiles: number) {
  const vendor = vendorOf(request);
  const fields: Record<string, unknown> = {};
  const uploadIds: string[] = [];
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'image') {
          part.file.resume();
          throw validationFailed(`unexpected file field "${part.fieldname}"; send images in the field "image"`);
        }
        if (uploadIds.length >= maxFiles) {
          part.file.resume();
          throw new PixqError('payload_too_large', `at most ${maxFiles} files per request`, { status: 413 });
        }
        uploadIds.push((await storeUpload(deps, vendor.id, part)).id);
      } else {
        fields[part.fieldname] = fieldValue(part.fieldname, String(part.value));
      }
    }
  } catch (err) {
    throw asMultipartProblem(err);
  }
  return { fields, uploadIds };
}

function fieldValue(name: string, raw: string): unknown {
  if (JSON_FIELDS.has(name)) {
    try {
      return JSON.parse(raw);
    } catch {
      throw validationFailed(`field "${name}" must be JSON text`);
    }
  }
  if (INTEGER_FIELDS.has(name) && /^-?\d+$/.test(raw)) return Number(raw);
  return raw;
}
