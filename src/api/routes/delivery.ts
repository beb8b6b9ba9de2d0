import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { checkPreset, DELIVERY_LIMITS, invalidOption } from '../../delivery/options.js';
import type { DeliverySettings } from '../../engine/index.js';
import { deliveryEndpoint } from '../../delivery/urls.js';
import { deliveryBase } from '../asset-links.js';
import { vendorOf } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { DeliveryPresets, DeliverySettingsBody, DeliveryView, problemResponses } from '../schemas.js';

const problems = problemResponses(400, 401, 429);

/**
 * Delivery: `GET /i/<vendor>/<signature>/<options>/<source>` serves a vendor's assets (src/delivery), and the
 * vendor's own routes read and change how its URLs are signed and what they may ask for.
 *
 * Delivery requests carry no key: a valid signature is their authorisation, so they spend no per-address
 * budget (a CDN in front sends everything from a few addresses). A request refused before its signature is
 * known to be good (a malformed URL, a bad signature) is an anonymous request and spends that budget.
 */
export const deliveryRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const config = { access: 'vendor' as const };
    const tags = ['delivery'];

    api.get(
      '/i/*',
      {
        config: { access: 'public', meterAnonymous: false },
        schema: {
          tags,
          summary: "An asset or a variant of it, by an imgproxy-format URL signed with the vendor's delivery key",
          description:
            '/i/<vendor>/<signature>/<options separated by />/plain/<asset path>[@<ext>] or /<base64url of the path>[.<ext>]; see the README.',
        },
      },
      async (request, reply) => {
        let authenticated;
        try {
          authenticated = await deps.delivery.authenticate(rawDeliveryPath(request.raw.url ?? ''));
        } catch (err) {
          await deps.limiter.chargeAnonymous(request, reply);
          throw err;
        }
        const answer = await deps.delivery.answer(authenticated, {
          accept: request.headers.accept,
          ifNoneMatch: request.headers['if-none-match'],
        });
        reply.code(answer.status).headers(answer.headers);
        return answer.body === undefined ? reply.send() : reply.send(answer.body);
      },
    );

    const view = (request: Parameters<typeof deliveryBase>[1], vendorName: string, s: DeliverySettings) => ({
      endpoint: deliveryEndpoint(deliveryBase(deps, request), vendorName),
      key: s.current.key,
      salt: s.current.salt,
      public: s.public,
      presetsOnly: s.presetsOnly,
      previousValidUntil: s.previous && s.previous.until > Date.now() ? new Date(s.previous.until).toISOString() : null,
    });

    api.get(
      '/v1/delivery',
      {
        config,
        schema: {
          tags,
          summary: "Your delivery endpoint, key and salt (hex), for imgproxy's URL builders",
          response: { 200: DeliveryView, ...problems },
        },
      },
      async (request) => {
        const vendor = vendorOf(request);
        return view(request, vendor.name, await deps.engine.delivery.get(vendor.id));
      },
    );

    api.patch(
      '/v1/delivery',
      {
        config,
        schema: {
          tags,
          summary: 'Turn public delivery (unsigned `insecure` URLs) or presets-only URLs on or off',
          body: DeliverySettingsBody,
          response: { 200: DeliveryView, ...problems },
        },
      },
      async (request) => {
        const vendor = vendorOf(request);
        const settings = await deps.engine.delivery.update(vendor.id, request.body);
        deps.delivery.forget(vendor.name);
        return view(request, vendor.name, settings);
      },
    );

    api.post(
      '/v1/delivery/rotate',
      {
        config,
        schema: {
          tags,
          summary: 'A new key and salt; URLs signed with the old pair keep working for 24 hours',
          response: { 200: DeliveryView, ...problems },
        },
      },
      async (request) => {
        const vendor = vendorOf(request);
        const settings = await deps.engine.delivery.rotate(vendor.id);
        deps.delivery.forget(vendor.name);
        return view(request, vendor.name, settings);
      },
    );

    api.get(
      '/v1/delivery/presets',
      { config, schema: { tags, summary: 'Your named option sets', response: { 200: DeliveryPresets, ...problems } } },
      async (request) => ({ presets: (await deps.engine.delivery.get(vendorOf(request).id)).presets }),
    );

    api.put(
      '/v1/delivery/presets',
      {
        config,
        schema: {
          tags,
          summary: 'Replace your named option sets (`pr:<name>` in a URL; `default` applies to every URL)',
          body: DeliveryPresets,
          response: { 200: DeliveryPresets, ...problems },
        },
      },
      async (request) => {
        const { presets } = request.body;
        if (Object.keys(presets).length > DELIVERY_LIMITS.maxPresets) {
          throw invalidOption(`at most ${DELIVERY_LIMITS.maxPresets} presets`);
        }
        for (const [name, options] of Object.entries(presets)) checkPreset(name, options);
        const vendor = vendorOf(request);
        const settings = await deps.engine.delivery.setPresets(vendor.id, presets);
        deps.delivery.forget(vendor.name);
        return { presets: settings.presets };
      },
    );
  };

/** The request's path after `/i/`, as sent (no query string): the signature covers exactly this. */
function rawDeliveryPath(url: string): string {
  const path = url.split('?')[0];
  return path.startsWith('/i/') ? path.slice(3) : path;
}
