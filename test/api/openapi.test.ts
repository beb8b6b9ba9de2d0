import { expect, it } from 'vitest';
import { sqliteTarget } from '../support/stores.js';
import { useApi } from '../support/api.js';

const api = useApi(sqliteTarget);

it("documents each job type's own options schema, discriminated by type, for single and bulk submissions", async () => {
  const doc = (await api().call('GET', '/openapi.json')).body;
  const single = doc.paths['/v1/jobs'].post.requestBody.content['application/json'].schema;
  const bulk = doc.paths['/v1/jobs/bulk'].post.requestBody.content['application/json'].schema.properties.jobs.items;
  const processors = [...api().services.processors.values()];
  expect(processors.map((p) => p.type)).toContain('remove-background');
  for (const submission of [single, bulk]) {
    expect(submission.discriminator).toEqual({ propertyName: 'type' });
    const byType = Object.fromEntries(submission.oneOf.map((v: any) => [v.properties.type.enum?.[0] ?? v.properties.type.const, v]));
    expect(Object.keys(byType).sort()).toEqual(processors.map((p) => p.type).sort());
    for (const p of processors) {
      const options = byType[p.type].properties.options;
      expect(Object.keys(options.properties ?? {}).sort(), p.type).toEqual(Object.keys((p.optionsSchema as any).properties ?? {}).sort());
      expect(options.additionalProperties, p.type).toBe(false);
    }
  }
  // A concrete option is there with its documented default.
  const removal = single.oneOf.find((v: any) => v.title === 'remove-background job');
  expect(removal.properties.options.properties.format.default).toBe('png');
});
