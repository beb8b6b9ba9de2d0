import crypto from 'node:crypto';
import { notFound } from '../errors.js';
import { newId } from '../ids.js';
import { insertApiKey, revokeApiKey, selectApiKeys } from '../store/sql/api-keys.js';
import { selectVendorById, selectVendorByKeyHash } from '../store/sql/vendors.js';
import type { EngineContext } from './context.js';
import { toVendor } from './rows.js';
import type { Vendor } from './types.js';

export interface ApiKeyInfo {
  id: string;
  vendorId: string;
  prefix: string;
  createdAt: number;
  revokedAt: number | null;
}

/**
 * Vendor API keys: 256 random bits, shown once, stored only as a SHA-256 hash. A slow password hash is not
 * needed: the keys are random, not chosen by people, so the hash cannot be brute-forced.
 */
export function hashKey(key: string): string {
  return crypto.createHash('sha256').update(key).digest('hex');
}

export class ApiKeyService {
  constructor(private readonly ctx: EngineContext) {}

  /** Issues a new key for a vendor; the returned `key` is the only time it is visible. */
  async issue(vendorId: string): Promise<ApiKeyInfo & { key: string }> {
    const key = `pixq_${crypto.randomBytes(32).toString('base64url')}`;
    const row = {
      id: newId(),
      vendor_id: vendorId,
      key_hash: hashKey(key),
      prefix: key.slice(0, 12),
      created_at: this.ctx.now(),
      revoked_at: null,
    };
    await this.ctx.write(async (tx) => {
      if (!(await selectVendorById(tx, vendorId))) throw notFound('vendor');
      await insertApiKey(tx, row);
    });
    return { key, ...toInfo(row) };
  }

  /** The vendor a key belongs to, or undefined for an unknown or revoked key. */
  async authenticate(key: string): Promise<Vendor | undefined> {
    const row = await this.ctx.read((db) => selectVendorByKeyHash(db, hashKey(key)));
    return row && toVendor(row);
  }

  async revoke(vendorId: string, keyId: string): Promise<ApiKeyInfo> {
    const row = await this.ctx.write((tx) => revokeApiKey(tx, vendorId, keyId, this.ctx.now()));
    if (!row) throw notFound('API key');
    return toInfo(row);
  }

  async list(vendorId: string): Promise<ApiKeyInfo[]> {
    const rows = await this.ctx.read((db) => selectApiKeys(db, vendorId));
    return rows.map(toInfo);
  }
}

function toInfo(row: {
  id: string;
  vendor_id: string;
  prefix: string;
  created_at: number;
  revoked_at: number | null;
}): ApiKeyInfo {
  return {
    id: row.id,
    vendorId: row.vendor_id,
    prefix: row.prefix,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}
