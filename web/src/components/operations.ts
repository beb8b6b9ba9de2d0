import type { Template } from '@pixq/client';

/** What a submission names: a job type, or a template (built-in or the vendor's) that stands for one with options. */
export function submissionOf(
  operation: string,
  templates: readonly Template[],
): { type: string } | { template: string } {
  return templates.some((t) => t.name === operation) ? { template: operation } : { type: operation };
}

/** Options typed by hand: a JSON object, or nothing. Throws a message fit to show. */
export function parseOptionsJson(text: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`Options are not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error('Options must be a JSON object, e.g. {"format": "png"}');
  return value as Record<string, unknown>;
}
