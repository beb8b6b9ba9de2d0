import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkActive } from '../engine/index.js';
import { PixqError, validationFailed } from '../errors.js';
import { asMultipartProblem, storeUpload, type IntakeDeps } from './intake.js';
import { checkJsonDepth } from './json-body.js';
import { vendorOf } from './auth.js';

const JSON_FIELDS = new Set(['options', 'metadata', 'publish']);
const INTEGER_FIELDS = new Set(['priority', 'maxAttempts', 'timeoutMs']);

/** Uploads stored while reading each multipart submission; they go again if the submission fails. */
const submittedUploads = new WeakMap<FastifyRequest, { vendorId: string; ids: string[] }>();

/**
 * Reads a multipart submission: text fields (`options`, `metadata` and `publish` as JSON text) and files in the field
 * `fileField` (`image` in /v1; the old APIs name theirs), each stored as an upload as it streams in. Returns
 * the fields and the uploads in order, with the file names the client gave.
 */
export async function readMultipart(request: FastifyRequest, deps: IntakeDeps, maxFiles: number, fileField = 'image') {
  const vendor = vendorOf(request);
  checkActive(vendor); // before any file is stored as an upload
  const fields: Record<string, unknown> = {};
  const uploadIds: string[] = [];
  const filenames: string[] = [];
  trackSubmittedUploads(request, vendor.id, uploadIds);
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== fileField) {
          part.file.resume();
          throw validationFailed(`unexpected file field "${part.fieldname}"; send images in the field "${fileField}"`);
        }
        if (uploadIds.length >= maxFiles) {
          part.file.resume();
          throw new PixqError('payload_too_large', `at most ${maxFiles} files per request`, { status: 413 });
        }
        uploadIds.push((await storeUpload(deps, vendor.id, part)).id);
        filenames.push(part.filename.slice(0, 255));
      } else {
        fields[part.fieldname] = fieldValue(part.fieldname, String(part.value));
      }
    }
  } catch (err) {
    throw asMultipartProblem(err);
  }
  return { fields, uploadIds, filenames };
}

/** Remembers the uploads a submission stored as it read its body (files, inline base64), to drop if it fails. */
export function trackSubmittedUploads(request: FastifyRequest, vendorId: string, ids: string[]) {
  submittedUploads.set(request, { vendorId, ids });
}

/**
 * A multipart submission that fails (a later file refused, invalid options, a quota) would otherwise leave its
 * stored files behind as uploads nobody can name, until retention removes them days later. Their blobs go
 * with the ledger's next sweep after the grace period, unless something refers to them by then.
 */
export function registerFailedSubmissionCleanup(app: FastifyInstance, deps: IntakeDeps) {
  app.addHook('onResponse', async (request, reply) => {
    const stored = submittedUploads.get(request);
    if (!stored || stored.ids.length === 0 || reply.statusCode < 400) return;
    try {
      await deps.engine.uploads.discard(stored.vendorId, stored.ids);
    } catch (err) {
      request.log.error({ err }, 'could not remove the uploads of a failed submission; retention will');
    }
  });
}

function fieldValue(name: string, raw: string): unknown {
  if (JSON_FIELDS.has(name)) {
    checkJsonDepth(raw);
    try {
      return JSON.parse(raw);
    } catch {
      throw validationFailed(`field "${name}" must be JSON text`);
    }
  }
  if (INTEGER_FIELDS.has(name) && /^-?\d+$/.test(raw)) return Number(raw);
  return raw;
}
