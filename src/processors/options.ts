import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import type { Static, TSchema } from '@sinclair/typebox';
import { validationFailed } from '../errors.js';
import type { Processor } from './types.js';

/**
 * Validates raw options against a processor's schema and returns them with defaults applied. Defaults are
 * filled into `raw` itself: every caller passes JSON it just parsed and owns, and a copy per job showed in
 * the queue's profile. Messages name the offending option, e.g. `options.aspect: Expected string to match '^\d+:\d+$'`.
 */
export function parseOptions<S extends TSchema>(processor: Processor<S>, raw: unknown): Static<S> {
  const input = raw === undefined || raw === null ? {} : raw;
  const withDefaults = Value.Default(processor.optionsSchema, input);
  const check = compiled(processor.optionsSchema);
  // The compiled check is the fast path every submission and every job takes; errors are listed only on failure.
  const problems = check.Check(withDefaults) ? [] : [...check.Errors(withDefaults)].slice(0, 5);
  if (problems.length > 0) {
    const message = problems.map((p) => `options${p.path.replaceAll('/', '.')}: ${p.message}`).join('; ');
    throw validationFailed(`invalid options for ${processor.type}: ${message}`, {
      errors: problems.map((p) => ({ path: `options${p.path.replaceAll('/', '.')}`, message: p.message })),
    });
  }
  const options = withDefaults as Static<S>;
  processor.validate?.(options);
  return options;
}

const checks = new WeakMap<TSchema, TypeCheck<TSchema>>();

function compiled(schema: TSchema): TypeCheck<TSchema> {
  let check = checks.get(schema);
  if (!check) {
    check = TypeCompiler.Compile(schema);
    checks.set(schema, check);
  }
  return check;
}
