import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  ApiKeyList,
  ApiKeyView,
  IdParams,
  Identifier,
  JobTypeList,
  JobTypeSettingsBody,
  JobTypeView,
  KeyIssued,
  problemResponses,
  VendorCreateBody,
  VendorCreated,
  VendorList,
  VendorSettingsBody,
  VendorView,
  WorkerList,
} from '../schemas.js';
import { apiKeyView, vendorView } from '../views.js';
import type { ApiDeps } from '../deps.js';
import { processorFor } from '../intake.js';

const problems = problemResponses(400, 401, 403, 404);
const TypeParams = Type.Object({ type: Identifier });
const KeyParams = Type.Object({ id: Identifier, keyId: Identifier });

/** Operator routes (admin key): vendors, their keys and limits, job types, worker health. */
export const adminRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const config = { access: 'admin' as const };
    const { engine } = deps;

    api.post(
      '/v1/vendors',
      {
        config,
        schema: {
          tags: ['admin'],
          summary: 'Create a vendor and its first API key (shown once)',
          body: VendorCreateBody,
          response: { 201: VendorCreated, ...problems },
        },
      },
      async (request, reply) => {
        const { name, ...settings } = request.body;
        const vendor = await engine.vendors.create(name, settings);
        const { key } = await engine.apiKeys.issue(vendor.id);
        return reply.code(201).send({ vendor: vendorView(vendor), apiKey: key });
      },
    );

    api.get(
      '/v1/vendors',
      { config, schema: { tags: ['admin'], summary: 'List vendors', response: { 200: VendorList } } },
      async () => ({ vendors: (await engine.vendors.list()).map(vendorView) }),
    );

    api.get(
      '/v1/vendors/:id',
      {
        config,
        schema: {
          tags: ['admin'],
          summary: 'Get a vendor',
          params: IdParams,
          response: { 200: VendorView, ...problems },
        },
      },
      async (request) => vendorView(await engine.vendors.get(request.params.id)),
    );

    api.patch(
      '/v1/vendors/:id',
      {
        config,
        schema: {
          tags: ['admin'],
          summary: 'Change weight, caps, quotas, rate limits, or suspend',
          params: IdParams,
          body: VendorSettingsBody,
          response: { 200: VendorView, ...problems },
        },
      },
      async (request) => vendorView(await engine.vendors.update(request.params.id, request.body)),
    );

    api.post(
      '/v1/vendors/:id/keys',
      {
        config,
        schema: {
          tags: ['admin'],
          summary: 'Issue another API key (shown once)',
          params: IdParams,
          response: { 201: KeyIssued, ...problems },
        },
      },
      async (request, reply) => {
        const issued = await engine.apiKeys.issue(request.params.id);
        return reply.code(201).send({ id: issued.id, apiKey: issued.key });
      },
    );

    api.get(
      '/v1/vendors/:id/keys',
      {
        config,
        schema: { tags: ['admin'], summary: 'List a vendor’s keys', params: IdParams, response: { 200: ApiKeyList } },
      },
      async (request) => ({ keys: (await engine.apiKeys.list(request.params.id)).map(apiKeyView) }),
    );

    api.delete(
      '/v1/vendors/:id/keys/:keyId',
      {
        config,
        schema: {
          tags: ['admin'],
          summary: 'Revoke a key',
          params: KeyParams,
          response: { 200: ApiKeyView, ...problems },
        },
      },
      async (request) => apiKeyView(await engine.apiKeys.revoke(request.params.id, request.params.keyId)),
    );

    // Any key (so tagged `jobs`, not `admin`): a vendor learns what it may submit (the dashboard's operation list);
    // only the admin sees the settings.
    api.get(
      '/v1/job-types',
      {
        config: { access: 'any' },
        schema: {
          tags: ['jobs'],
          summary: 'Job types this server offers; for the admin key also their pause flag and global limits',
          response: { 200: JobTypeList },
        },
      },
      async (request) => ({
        available: [...deps.processors.keys()],
        ...(request.caller.kind === 'admin' && { types: await engine.registry.types() }),
      }),
    );

    // A type this build does not offer is refused: a typo ("transfrom") would otherwise store settings that
    // never apply while the operator believes the real type is paused.
    api.put(
      '/v1/job-types/:type',
      {
        config,
        schema: {
          tags: ['admin'],
          summary: 'Pause/resume a job type, set its global cap or rate limit',
          params: TypeParams,
          body: JobTypeSettingsBody,
          response: { 200: JobTypeView, ...problems },
        },
      },
      async (request) => engine.registry.configureType(processorFor(deps, request.params.type).type, request.body),
    );

    for (const action of ['pause', 'resume'] as const) {
      api.post(
        `/v1/job-types/:type/${action}`,
        {
          config,
          schema: {
            tags: ['admin'],
            summary: `${action} a job type`,
            params: TypeParams,
            response: { 200: JobTypeView, ...problems },
          },
        },
        async (request) =>
          engine.registry.configureType(processorFor(deps, request.params.type).type, { paused: action === 'pause' }),
      );
    }

    api.get(
      '/v1/workers',
      { config, schema: { tags: ['admin'], summary: 'Worker health', response: { 200: WorkerList } } },
      async () => ({
        workers: (await engine.registry.workers()).map((w) => ({
          ...w,
          startedAt: new Date(w.startedAt).toISOString(),
          heartbeatAt: new Date(w.heartbeatAt).toISOString(),
        })),
      }),
    );
  };
