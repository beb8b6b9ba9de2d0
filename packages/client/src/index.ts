/** @pixq/client: the API client. Filled in by the SDK work; this placeholder keeps the workspace buildable. */
export const CLIENT_VERSION = '0.1.0';
