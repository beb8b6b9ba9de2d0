import { PixqError, notFound, validationFailed } from '../errors.js';
import { newId } from '../ids.js';
import { insertVendor, selectVendor, selectVendors, updateVendor } from '../store/sql/vendors.js';
import type { EngineContext } from './context.js';
import { toVendor } from './rows.js';
import type { Vendor } from './types.js';

export interface VendorSettings {
  weight?: number;
  maxRunning?: number | null;
  maxQueued?: number | null;
  status?: 'active' | 'suspended';
  rateLimits?: Vendor['rateLimits'];
  /** The vendor's storage quota in bytes; null: the configured default (PIXQ_MAX_STORAGE_BYTES). */
  maxStorageBytes?: number | null;
}

function checkSettings(s: VendorSettings) {
  if (s.weight !== undefined && !(s.weight > 0 && s.weight <= 1000)) {
    throw validationFailed('weight must be greater than 0 and at most 1000');
  }
  if (
    s.maxStorageBytes !== undefined &&
    s.maxStorageBytes !== null &&
    !(Number.isSafeInteger(s.maxStorageBytes) && s.maxStorageBytes >= 0)
  ) {
    throw validationFailed('maxStorageBytes must be a whole number of bytes (0 or more), or null for the default');
  }
  for (const [name, value] of [
    ['maxRunning', s.maxRunning],
    ['maxQueued', s.maxQueued],
  ] as const) {
    if (value !== undefined && value !== null && !(Number.isInteger(value) && value >= 1)) {
      throw validationFailed(`${name} must be a whole number of at least 1, or null for no limit`);
    }
  }
}

/** A suspended vendor may read what it has but add nothing: no jobs, retries or uploads. */
export function checkActive(vendor: { status: string }) {
  if (vendor.status !== 'active') {
    throw new PixqError('vendor_suspended', 'this vendor is suspended and cannot submit jobs or uploads', {
      status: 403,
    });
  }
}

export class VendorService {
  constructor(private readonly ctx: EngineContext) {}

  async create(name: string, settings: VendorSettings = {}): Promise<Vendor> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
      throw validationFailed('vendor name must be 1-64 letters, digits, dots, dashes or underscores');
    }
    checkSettings(settings);
    const now = this.ctx.now();
    return this.ctx.write(async (tx) => {
      if (await selectVendor(tx, name)) {
        throw new PixqError('conflict', `a vendor named ${name} already exists`, { status: 409 });
      }
      const row = await insertVendor(tx, {
        id: newId(),
        name,
        weight: settings.weight ?? 1,
        max_running: settings.maxRunning ?? null,
        max_queued: settings.maxQueued ?? null,
        status: settings.status ?? 'active',
        rate_limits: settings.rateLimits ? JSON.stringify(settings.rateLimits) : null,
        virtual_time: 0,
        max_storage_bytes: settings.maxStorageBytes ?? null,
        created_at: now,
        updated_at: now,
      });
      return toVendor(row);
    });
  }

  async update(id: string, settings: VendorSettings): Promise<Vendor> {
    checkSettings(settings);
    const row = await this.ctx.write((tx) =>
      updateVendor(tx, id, {
        ...(settings.weight !== undefined && { weight: settings.weight }),
        ...(settings.maxRunning !== undefined && { max_running: settings.maxRunning }),
        ...(settings.maxQueued !== undefined && { max_queued: settings.maxQueued }),
        ...(settings.status !== undefined && { status: settings.status }),
        ...(settings.maxStorageBytes !== undefined && { max_storage_bytes: settings.maxStorageBytes }),
        ...(settings.rateLimits !== undefined && {
          rate_limits: settings.rateLimits ? JSON.stringify(settings.rateLimits) : null,
        }),
        updated_at: this.ctx.now(),
      }),
    );
    if (!row) throw notFound('vendor');
    return toVendor(row);
  }

  /** By id or by name. */
  async get(idOrName: string): Promise<Vendor> {
    const row = await this.ctx.read((db) => selectVendor(db, idOrName));
    if (!row) throw notFound('vendor');
    return toVendor(row);
  }

  async list(): Promise<Vendor[]> {
    return (await this.ctx.read(selectVendors)).map(toVendor);
  }
}
