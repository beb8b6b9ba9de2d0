/** What to tell the user about a failed call: a PixqApiError's message is the problem's detail (or title). */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
