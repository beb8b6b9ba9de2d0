import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  WEBHOOK_EVENT_TYPES,
  type CallbackSecret,
  type WebhookDelivery,
  type WebhookEndpoint,
} from '../../engine/index.js';
import {
  CallbackSecretView,
  Identifier,
  problemResponses,
  WebhookDeliveryList,
  WebhookDeliveryView,
  WebhookUrl,
} from '../schemas.js';
import { vendorOf } from '../auth.js';
import { checkWebhookTarget } from '../intake.js';
import type { ApiDeps } from '../deps.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const EventTypes = Type.Array(Type.Union(WEBHOOK_EVENT_TYPES.map((t) => Type.Literal(t))), {
  minItems: 1,
  uniqueItems: true,
  description: 'What the endpoint receives; all but job.progress when omitted.',
});
const Description = Type.String({ maxLength: 500 });

const EndpointCreateBody = Type.Object(
  { url: WebhookUrl, events: Type.Optional(EventTypes), description: Type.Optional(Description) },
  { additionalProperties: false },
);
const EndpointUpdateBody = Type.Object(
  {
    url: Type.Optional(WebhookUrl),
    events: Type.Optional(EventTypes),
    description: Type.Optional(Type.Union([Description, Type.Null()])),
    status: Type.Optional(Type.Union([Type.Literal('enabled'), Type.Literal('disabled')])),
  },
  { additionalProperties: false },
);
const EndpointView = Type.Object({
  id: Type.String(),
  url: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  events: Type.Array(Type.String()),
  status: Type.String(),
  disabledReason: Type.Union([Type.String(), Type.Null()]),
  failingSince: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
const WithSecret = Type.Object({
  endpoint: EndpointView,
  secret: Type.String({ description: 'whsec_… signing secret, shown only here.' }),
});
const IdParams = Type.Object({ id: Identifier });
const DeliveryParams = Type.Object({ id: Identifier, deliveryId: Identifier });
const DeliveriesQuery = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })) },
  { additionalProperties: false },
);

function endpointView(e: WebhookEndpoint) {
  return {
    id: e.id,
    url: e.url,
    description: e.description,
    events: e.events,
    status: e.status,
    disabledReason: e.disabledReason,
    failingSince: iso(e.failingSince),
    createdAt: iso(e.createdAt)!,
    updatedAt: iso(e.updatedAt)!,
  };
}

function deliveryView(d: WebhookDelivery) {
  return {
    id: d.id,
    endpointId: d.endpointId,
    eventType: d.eventType,
    jobId: d.jobId,
    batchId: d.batchId,
    status: d.state,
    attempts: d.attempts,
    nextAttemptAt: d.state === 'pending' ? iso(d.nextAttemptAt) : null,
    lastResponseStatus: d.lastStatus,
    lastError: d.lastError,
    lastAttemptAt: iso(d.lastAttemptAt),
    createdAt: iso(d.createdAt)!,
  };
}

function callbackSecretView(c: CallbackSecret) {
  return {
    secret: c.secret,
    previousSecretUntil: iso(c.previousSecretUntil),
    createdAt: iso(c.createdAt)!,
    updatedAt: iso(c.updatedAt)!,
  };
}

/**
 * A vendor's webhook endpoints and their deliveries; the callback secret that signs its jobs' own
 * `webhookUrl` callbacks, and each job's deliveries. Targets obey the same SSRF rules as image URLs, here at
 * registration and again by the delivery worker at every attempt. Another vendor's endpoint is a 404.
 */
export const webhookRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const config = { access: 'vendor' as const };
    const { engine } = deps;
    const tags = ['webhooks'];
    const checkTarget = (url: string) => checkWebhookTarget(deps.config, url);

    api.post(
      '/v1/webhooks',
      {
        config,
        schema: {
          tags,
          summary: 'Register a webhook endpoint (its secret is shown once)',
          body: EndpointCreateBody,
          response: { 201: WithSecret, ...problemResponses(400, 401, 403, 409) },
        },
      },
      async (request, reply) => {
        const body = request.body;
        const { endpoint, secret } = await engine.webhooks.create(vendorOf(request).id, {
          ...body,
          url: await checkTarget(body.url),
        });
        return reply.code(201).send({ endpoint: endpointView(endpoint), secret });
      },
    );

    api.get(
      '/v1/webhooks',
      {
        config,
        schema: {
          tags,
          summary: 'List your webhook endpoints',
          response: { 200: Type.Object({ webhooks: Type.Array(EndpointView) }) },
        },
      },
      async (request) => ({ webhooks: (await engine.webhooks.list(vendorOf(request).id)).map(endpointView) }),
    );

    api.get(
      '/v1/webhooks/:id',
      {
        config,
        schema: {
          tags,
          summary: 'Get a webhook endpoint',
          params: IdParams,
          response: { 200: EndpointView, ...problemResponses(404) },
        },
      },
      async (request) => endpointView(await engine.webhooks.get(request.params.id, vendorOf(request).id)),
    );

    api.patch(
      '/v1/webhooks/:id',
      {
        config,
        schema: {
          tags,
          summary: 'Change the URL, events or description; enable or disable',
          params: IdParams,
          body: EndpointUpdateBody,
          response: { 200: EndpointView, ...problemResponses(400, 404) },
        },
      },
      async (request) => {
        const { url, ...rest } = request.body;
        const changes = url === undefined ? rest : { ...rest, url: await checkTarget(url) };
        return endpointView(await engine.webhooks.update(request.params.id, vendorOf(request).id, changes));
      },
    );

    api.delete(
      '/v1/webhooks/:id',
      {
        config,
        schema: {
          tags,
          summary: 'Delete a webhook endpoint and its deliveries',
          params: IdParams,
          response: { 204: Type.Null(), ...problemResponses(404) },
        },
      },
      async (request, reply) => {
        await engine.webhooks.delete(request.params.id, vendorOf(request).id);
        return reply.code(204).send(null);
      },
    );

    api.post(
      '/v1/webhooks/:id/rotate-secret',
      {
        config,
        schema: {
          tags,
          summary: 'A new signing secret; the old one keeps signing alongside it for 24 h',
          params: IdParams,
          response: { 200: WithSecret, ...problemResponses(404) },
        },
      },
      async (request) => {
        const { endpoint, secret } = await engine.webhooks.rotateSecret(request.params.id, vendorOf(request).id);
        return { endpoint: endpointView(endpoint), secret };
      },
    );

    api.get(
      '/v1/webhooks/:id/deliveries',
      {
        config,
        schema: {
          tags,
          summary: 'The latest deliveries: status, attempts, last response',
          params: IdParams,
          querystring: DeliveriesQuery,
          response: { 200: WebhookDeliveryList, ...problemResponses(404) },
        },
      },
      async (request) => ({
        deliveries: (
          await engine.webhooks.deliveries(request.params.id, vendorOf(request).id, request.query.limit ?? 50)
        ).map(deliveryView),
      }),
    );

    api.post(
      '/v1/webhooks/:id/deliveries/:deliveryId/replay',
      {
        config,
        schema: {
          tags,
          summary: 'Send a delivery again',
          params: DeliveryParams,
          response: { 202: WebhookDeliveryView, ...problemResponses(404) },
        },
      },
      async (request, reply) => {
        const delivery = await engine.webhooks.replay(
          request.params.id,
          request.params.deliveryId,
          vendorOf(request).id,
        );
        return reply.code(202).send(deliveryView(delivery));
      },
    );

    // Static paths: they take precedence over /v1/webhooks/:id, whose ids are never these words.
    api.get(
      '/v1/webhooks/callback-secret',
      {
        config,
        schema: {
          tags,
          summary: "The secret that signs your jobs' own webhookUrl callbacks (created on first read)",
          response: { 200: CallbackSecretView },
        },
      },
      async (request) => callbackSecretView(await engine.webhooks.callbackSecret(vendorOf(request).id)),
    );

    api.post(
      '/v1/webhooks/callback-secret/rotate',
      {
        config,
        schema: {
          tags,
          summary: 'A new callback secret; the old one keeps signing alongside it for 24 h',
          response: { 200: CallbackSecretView },
        },
      },
      async (request) => callbackSecretView(await engine.webhooks.rotateCallbackSecret(vendorOf(request).id)),
    );

    api.get(
      '/v1/jobs/:id/deliveries',
      {
        config,
        schema: {
          tags,
          summary: "The latest deliveries of a job's events: to your endpoints and to its own webhookUrl",
          params: IdParams,
          querystring: DeliveriesQuery,
          response: { 200: WebhookDeliveryList, ...problemResponses(404) },
        },
      },
      async (request) => ({
        deliveries: (
          await engine.webhooks.jobDeliveries(request.params.id, vendorOf(request).id, request.query.limit ?? 50)
        ).map(deliveryView),
      }),
    );
  };
