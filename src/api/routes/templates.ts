import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Template } from '../../engine/index.js';
import { vendorOf } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { checkedWork } from '../intake.js';
import {
  Identifier,
  problemResponses,
  TemplateCreate,
  TemplateList,
  TemplateUpdate,
  TemplateView,
} from '../schemas.js';

const NameParams = Type.Object({ name: Identifier });
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function templateView(t: Template) {
  return {
    name: t.name,
    type: t.type,
    options: t.options,
    builtIn: t.builtIn,
    createdAt: iso(t.createdAt),
    updatedAt: iso(t.updatedAt),
  };
}

/**
 * A vendor's job templates, beside the built-in ones. A template is checked as a submission of its type
 * would be, so one that could never run is refused when it is stored; a job submitted by template is checked
 * again with its own options laid over (src/api/intake.ts). Another vendor's template is a 404.
 */
export const templateRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const config = { access: 'vendor' as const };
    const tags = ['templates'];
    const { templates } = deps.engine;
    // Checked on a copy: the template keeps the options as given, its defaults applied only when a job is submitted.
    const check = (type: string, options: Record<string, unknown>) => checkedWork(deps, type, structuredClone(options));

    api.get(
      '/v1/templates',
      {
        config,
        schema: {
          tags,
          summary: 'List your templates and the built-in ones',
          response: { 200: TemplateList, ...problemResponses(401) },
        },
      },
      async (request) => ({ templates: (await templates.list(vendorOf(request).id)).map(templateView) }),
    );

    api.get(
      '/v1/templates/:name',
      {
        config,
        schema: {
          tags,
          summary: 'Get a template',
          params: NameParams,
          response: { 200: TemplateView, ...problemResponses(401, 404) },
        },
      },
      async (request) => templateView(await templates.get(vendorOf(request).id, request.params.name)),
    );

    api.post(
      '/v1/templates',
      {
        config,
        schema: {
          tags,
          summary: 'Store a template: a name for a job type and options that a submission could use instead of `type`',
          body: TemplateCreate,
          response: { 201: TemplateView, ...problemResponses(400, 401, 409) },
        },
      },
      async (request, reply) => {
        const { name, type, options = {} } = request.body;
        check(type, options);
        const template = await templates.create(vendorOf(request).id, name, { type, options });
        return reply
          .code(201)
          .header('location', `/v1/templates/${encodeURIComponent(name)}`)
          .send(templateView(template));
      },
    );

    api.put(
      '/v1/templates/:name',
      {
        config,
        schema: {
          tags,
          summary:
            "Change a template's type or options (options are replaced whole); built-in templates cannot be changed",
          params: NameParams,
          body: TemplateUpdate,
          response: { 200: TemplateView, ...problemResponses(400, 401, 404, 409) },
        },
      },
      async (request) => {
        const vendorId = vendorOf(request).id;
        const current = await templates.editable(vendorId, request.params.name);
        const settings = { type: request.body.type ?? current.type, options: request.body.options ?? current.options };
        check(settings.type, settings.options);
        return templateView(await templates.update(vendorId, request.params.name, settings));
      },
    );

    api.delete(
      '/v1/templates/:name',
      {
        config,
        schema: {
          tags,
          summary: 'Delete a template; built-in templates cannot be deleted',
          params: NameParams,
          response: { 204: Type.Null(), ...problemResponses(401, 404, 409) },
        },
      },
      async (request, reply) => {
        await templates.delete(vendorOf(request).id, request.params.name);
        return reply.code(204).send(null);
      },
    );
  };
