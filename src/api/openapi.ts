import type { FastifySchema } from 'fastify';
import { Type, type TSchema } from '@sinclair/typebox';
import type { Processor } from '../processors/index.js';
import { BulkSubmission, JobSubmission, TemplateName } from './schemas.js';

/**
 * What /openapi.json says a submission is: by type, one variant per job type, discriminated by `type`, each
 * with that processor's own options schema; or by template, naming `template` instead of `type`, its options
 * free (what they may be depends on the template). Built from the processor registry, so a new job type
 * documents itself. Only the document changes: requests are still checked against the free `options` object
 * and then by the processor's compiled schema (parseOptions), whose messages name the offending option.
 */
export function documentedSubmission(processors: Map<string, Processor>): TSchema {
  const { type: _type, template: _template, ...common } = JobSubmission.properties;
  const byType = [...processors.values()].map((p) =>
    Type.Object(
      { ...common, type: Type.Literal(p.type), options: Type.Optional(p.optionsSchema) },
      { additionalProperties: false, title: `${p.type} job` },
    ),
  );
  const byTemplate = Type.Object(
    { ...common, template: TemplateName },
    { additionalProperties: false, title: 'job by template' },
  );
  return { oneOf: [{ oneOf: byType, discriminator: { propertyName: 'type' } }, byTemplate] } as unknown as TSchema;
}

/** @fastify/swagger's `transform`: routes taking JobSubmission or BulkSubmission bodies get the documented variants. */
export function jobOptionsTransform(processors: Map<string, Processor>) {
  const submission = documentedSubmission(processors);
  const bulk = Type.Object({ jobs: Type.Array(submission, { minItems: 1 }) }, { additionalProperties: false });
  return ({ schema, url }: { schema: FastifySchema; url: string }) => {
    if (url.endsWith('/*')) return documentedWildcard(schema, url);
    if (schema?.body === JobSubmission) return { schema: { ...schema, body: submission }, url };
    if (schema?.body === BulkSubmission) return { schema: { ...schema, body: bulk }, url };
    return { schema, url };
  };
}

/**
 * A route whose path ends in a wildcard (`/v1/assets/*`: an asset path holds slashes) is documented with a
 * parameter named `path`, since Fastify's `*` is no name a client generator can use.
 */
function documentedWildcard(schema: FastifySchema | undefined, url: string) {
  const path = Type.String({ description: 'The rest of the path, slashes included (not encoded).' });
  return { schema: { ...schema, params: Type.Object({ path }) }, url: `${url.slice(0, -1)}:path` };
}
