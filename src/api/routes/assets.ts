import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { checkActive, checkAssetPath } from '../../engine/index.js';
import { PixqError, validationFailed } from '../../errors.js';
import { assetUrls } from '../asset-links.js';
import { vendorOf } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { asMultipartProblem, storeImageFile } from '../intake.js';
import { AssetList, AssetListQuery, AssetView, IdParams, problemResponses, PublishRequest } from '../schemas.js';
import { assetView } from '../views.js';

const problems = problemResponses(400, 401, 404, 429);
const Wildcard = Type.Object({ '*': Type.String() });

/** The asset path in `/v1/assets/<path>`: checked like any path a client names. */
function pathOf(request: FastifyRequest): string {
  return checkAssetPath((request.params as { '*': string })['*']);
}

/**
 * A vendor's assets: named, durable images with permanent delivery URLs. Written by publishing a job's output
 * (at submission with `publish`, or later here) or by storing an image directly; listed by prefix; deleted.
 * Every route acts on the key's own vendor: another vendor's asset is a 404.
 */
export const assetRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const config = { access: 'vendor' as const };
    const tags = ['assets'];

    api.get(
      '/v1/assets',
      {
        config,
        schema: {
          tags,
          summary: 'List your assets by path, a page at a time, optionally under a prefix',
          querystring: AssetListQuery,
          response: { 200: AssetList, ...problems },
        },
      },
      async (request) => {
        const vendor = vendorOf(request);
        const { prefix, cursor, limit = 50 } = request.query;
        const page = await deps.engine.assets.list(vendor.id, { prefix, cursor, limit });
        const urls = await assetUrls(deps, request, vendor);
        return { assets: page.assets.map((a) => assetView(a, urls(a))), nextCursor: page.nextCursor };
      },
    );

    api.get(
      '/v1/assets/*',
      {
        config,
        schema: {
          tags,
          summary: 'One asset, with its delivery URLs',
          params: Wildcard,
          response: { 200: AssetView, ...problems },
        },
      },
      async (request) => {
        const vendor = vendorOf(request);
        const asset = await deps.engine.assets.get(vendor.id, pathOf(request));
        return assetView(asset, (await assetUrls(deps, request, vendor))(asset));
      },
    );

    api.put(
      '/v1/assets/*',
      {
        config: { ...config, budgets: ['image'] },
        schema: {
          tags,
          summary: 'Store an image (multipart field "image") at a path, replacing what was there',
          params: Wildcard,
          response: { 200: AssetView, ...problems, ...problemResponses(403, 413, 415, 422) },
        },
      },
      async (request) => {
        const vendor = vendorOf(request);
        const path = pathOf(request);
        // Refused before a byte is stored: a suspended vendor adds nothing.
        checkActive(vendor);
        if (!request.isMultipart()) {
          throw new PixqError('unsupported_media_type', 'send the image as multipart/form-data in the field "image"', {
            status: 415,
          });
        }
        const file = await request.file().catch((err: unknown) => {
          throw asMultipartProblem(err);
        });
        if (!file || file.fieldname !== 'image')
          throw validationFailed('send the image in the multipart field "image"');
        const asset = await deps.engine.assets.put(vendor.id, path, await storeImageFile(deps, file));
        return assetView(asset, (await assetUrls(deps, request, vendor))(asset));
      },
    );

    api.delete(
      '/v1/assets/*',
      {
        config,
        schema: {
          tags,
          summary: 'Delete an asset (its bytes go with the next sweep)',
          params: Wildcard,
          response: { ...problems },
        },
      },
      async (request, reply) => {
        await deps.engine.assets.delete(vendorOf(request).id, pathOf(request));
        return reply.code(204).send();
      },
    );

    api.post(
      '/v1/jobs/:id/publish',
      {
        config,
        schema: {
          tags,
          summary: "Publish a succeeded job's first output as an asset",
          params: IdParams,
          body: PublishRequest,
          response: { 200: AssetView, ...problems, ...problemResponses(403, 409) },
        },
        // The body is optional: none means the default path.
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request) => {
        const vendor = vendorOf(request);
        const asset = await deps.engine.assets.publishJob(vendor.id, request.params.id, request.body.path);
        return assetView(asset, (await assetUrls(deps, request, vendor))(asset));
      },
    );
  };
