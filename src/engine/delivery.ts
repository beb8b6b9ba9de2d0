import { randomBytes } from 'node:crypto';
import { notFound } from '../errors.js';
import {
  insertDeliverySettings,
  rotateDeliveryKey,
  selectDeliverySettings,
  selectDeliverySettingsByName,
  updateDeliverySettings,
} from '../store/sql/vendor-delivery.js';
import type { VendorDeliveryRow } from '../store/index.js';
import type { EngineContext } from './context.js';

/** A delivery URL signing pair, hex, in imgproxy's form (src/delivery/signature.ts signs with it). */
export interface SigningPair {
  key: string;
  salt: string;
}

/** A new pair: 32 random bytes of key, 16 of salt, as imgproxy's documentation suggests. */
export function newSigningPair(): SigningPair {
  return { key: randomBytes(32).toString('hex'), salt: randomBytes(16).toString('hex') };
}

/** A vendor's delivery settings: how its URLs are signed and what they may ask for. */
export interface DeliverySettings {
  vendorId: string;
  /** The pair URLs are signed with now. */
  current: SigningPair;
  /** After a rotation: the pair it replaced, and until when that still verifies. */
  previous: (SigningPair & { until: number }) | null;
  /** `insecure` in place of a signature is accepted. */
  public: boolean;
  /** URLs may name presets only (and a cache buster and a format). */
  presetsOnly: boolean;
  presets: Record<string, string>;
  updatedAt: number;
}

function toSettings(row: VendorDeliveryRow): DeliverySettings {
  return {
    vendorId: row.vendor_id,
    current: { key: row.key, salt: row.salt },
    previous:
      row.previous_key && row.previous_salt && row.previous_until !== null
        ? { key: row.previous_key, salt: row.previous_salt, until: Number(row.previous_until) }
        : null,
    public: row.public === 1,
    presetsOnly: row.presets_only === 1,
    presets: JSON.parse(row.presets) as Record<string, string>,
    updatedAt: Number(row.updated_at),
  };
}

/** The pairs that verify a URL at `now`: the current one, and the replaced one during its grace. */
export function verifyingPairs(settings: DeliverySettings, now: number): SigningPair[] {
  return settings.previous && now < settings.previous.until
    ? [settings.current, settings.previous]
    : [settings.current];
}

/**
 * Each vendor's delivery settings, made on first use: a random key and salt, private, no presets. A rotation
 * keeps the old pair verifying for `rotationOverlapMs`, so URLs already handed out keep working meanwhile.
 */
export class DeliverySettingsService {
  constructor(
    private readonly ctx: EngineContext,
    private readonly rotationOverlapMs: number,
  ) {}

  async get(vendorId: string): Promise<DeliverySettings> {
    const existing = await this.ctx.read((db) => selectDeliverySettings(db, vendorId));
    if (existing) return toSettings(existing);
    const now = this.ctx.now();
    const pair = newSigningPair();
    return this.ctx.write(async (tx) => {
      await insertDeliverySettings(tx, {
        vendor_id: vendorId,
        key: pair.key,
        salt: pair.salt,
        previous_key: null,
        previous_salt: null,
        previous_until: null,
        public: 0,
        presets_only: 0,
        presets: '{}',
        created_at: now,
        updated_at: now,
      });
      // Another process may have made them first: what is stored is what counts.
      return toSettings((await selectDeliverySettings(tx, vendorId))!);
    });
  }

  /** The settings of the vendor named in a delivery URL, with its status; undefined when it has none. */
  async forVendorName(name: string): Promise<(DeliverySettings & { active: boolean }) | undefined> {
    const row = await this.ctx.read((db) => selectDeliverySettingsByName(db, name));
    return row && { ...toSettings(row), active: row.status === 'active' };
  }

  async update(vendorId: string, changes: { public?: boolean; presetsOnly?: boolean }): Promise<DeliverySettings> {
    await this.get(vendorId);
    const row = await this.ctx.write((tx) =>
      updateDeliverySettings(tx, vendorId, {
        ...(changes.public !== undefined && { public: changes.public ? 1 : 0 }),
        ...(changes.presetsOnly !== undefined && { presets_only: changes.presetsOnly ? 1 : 0 }),
        updated_at: this.ctx.now(),
      }),
    );
    if (!row) throw notFound('vendor');
    return toSettings(row);
  }

  async setPresets(vendorId: string, presets: Record<string, string>): Promise<DeliverySettings> {
    await this.get(vendorId);
    const row = await this.ctx.write((tx) =>
      updateDeliverySettings(tx, vendorId, { presets: JSON.stringify(presets), updated_at: this.ctx.now() }),
    );
    if (!row) throw notFound('vendor');
    return toSettings(row);
  }

  /** A new key and salt; the old pair verifies for the overlap still. */
  async rotate(vendorId: string): Promise<DeliverySettings> {
    await this.get(vendorId);
    const now = this.ctx.now();
    const row = await this.ctx.write((tx) =>
      rotateDeliveryKey(tx, vendorId, newSigningPair(), now + this.rotationOverlapMs, now),
    );
    if (!row) throw notFound('vendor');
    return toSettings(row);
  }
}
