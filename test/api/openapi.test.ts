import SwaggerParser from '@apidevtools/swagger-parser';
import openapiTS, { astToString } from 'openapi-typescript';
import { expect, it } from 'vitest';
import { sqliteTarget } from '../support/stores.js';
import { useApi } from '../support/api.js';

const api = useApi(sqliteTarget);

it("documents each job type's own options schema, discriminated by type, or a template's name, for single and bulk submissions", async () => {
  const doc = (await api().call('GET', '/openapi.json')).body;
  const documented = (schema: any) => {
    expect(schema.oneOf).toHaveLength(2);
    const [byType, byTemplate] = schema.oneOf;
    // By template: `template` instead of `type`, the options free (they depend on the template).
    expect(byTemplate.required).toContain('template');
    expect(byTemplate.properties.type).toBeUndefined();
    expect(byTemplate.additionalProperties).toBe(false);
    expect(byType.oneOf.every((v: any) => v.properties.template === undefined && v.required.includes('type'))).toBe(
      true,
    );
    return byType;
  };
  const single = documented(doc.paths['/v1/jobs'].post.requestBody.content['application/json'].schema);
  const bulk = documented(
    doc.paths['/v1/jobs/bulk'].post.requestBody.content['application/json'].schema.properties.jobs.items,
  );
  const processors = [...api().services.processors.values()];
  expect(processors.map((p) => p.type)).toContain('remove-background');
  for (const submission of [single, bulk]) {
    expect(submission.discriminator).toEqual({ propertyName: 'type' });
    const byType = Object.fromEntries(
      submission.oneOf.map((v: any) => [v.properties.type.enum?.[0] ?? v.properties.type.const, v]),
    );
    expect(Object.keys(byType).sort()).toEqual(processors.map((p) => p.type).sort());
    for (const p of processors) {
      const options = byType[p.type].properties.options;
      expect(Object.keys(options.properties ?? {}).sort(), p.type).toEqual(
        Object.keys((p.optionsSchema as any).properties ?? {}).sort(),
      );
      expect(options.additionalProperties, p.type).toBe(false);
    }
  }
  // A concrete option is there with its documented default.
  const removal = single.oneOf.find((v: any) => v.title === 'remove-background job');
  expect(removal.properties.options.properties.format.default).toBe('png');
});

it('is a valid OpenAPI document that a standard validator accepts and openapi-typescript generates types from', async () => {
  const doc = (await api().call('GET', '/openapi.json')).body;
  expect(doc.openapi).toMatch(/^3\.1\./);
  // validate() dereferences in place: give it a copy.
  await SwaggerParser.validate(structuredClone(doc));
  const ast = await openapiTS(structuredClone(doc));
  const types = astToString(ast);
  expect(types).toMatch(/"\/v1\/jobs\/\{id\}": \{/);
  expect(types).toMatch(/"\/v1\/blobs\/\{key\}": \{/);
});
