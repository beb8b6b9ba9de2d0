/**
 * Modes of the files pixq creates (the umask may only narrow them). The database and the signing key are the
 * owner's alone: they hold every vendor's jobs, key digests and webhook secrets. Blobs and model files may be
 * read by the owner's group (a backup agent, a sidecar serving the bytes), and written by no one else.
 */
export const OWNER_ONLY = 0o600;
export const GROUP_READABLE = 0o640;
