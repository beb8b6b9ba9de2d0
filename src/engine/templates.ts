import { notFound, PixqError, validationFailed } from '../errors.js';
import type { TemplateRow } from '../store/index.js';
import {
  countTemplates,
  deleteTemplate,
  insertTemplate,
  selectTemplate,
  selectTemplates,
  updateTemplate,
} from '../store/sql/templates.js';
import { lockVendorById } from '../store/sql/vendors.js';
import { BUILT_IN_TEMPLATES } from './builtin-templates.js';
import type { EngineContext } from './context.js';

export const MAX_TEMPLATES_PER_VENDOR = 100;
export const MAX_TEMPLATE_OPTIONS_BYTES = 16_384;

export interface Template {
  name: string;
  type: string;
  options: Record<string, unknown>;
  builtIn: boolean;
  /** Null for the built-in templates, which are not stored. */
  createdAt: number | null;
  updatedAt: number | null;
}

/** What a vendor sets; the API checks that the type exists and the options are valid for it before storing. */
export interface TemplateSettings {
  type: string;
  options: Record<string, unknown>;
}

const builtIns = new Map(BUILT_IN_TEMPLATES.map((t) => [t.name, t]));

/** A fresh copy each time: callers apply defaults into the options they get (see parseOptions). */
function builtIn(name: string): Template | undefined {
  const t = builtIns.get(name);
  return (
    t && {
      name: t.name,
      type: t.type,
      options: structuredClone(t.options),
      builtIn: true,
      createdAt: null,
      updatedAt: null,
    }
  );
}

function toTemplate(row: TemplateRow): Template {
  return {
    name: row.name,
    type: row.type,
    options: JSON.parse(row.options) as Record<string, unknown>,
    builtIn: false,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function optionsText(options: Record<string, unknown>): string {
  const text = JSON.stringify(options);
  if (Buffer.byteLength(text, 'utf8') > MAX_TEMPLATE_OPTIONS_BYTES) {
    throw validationFailed(`a template's options must be at most ${MAX_TEMPLATE_OPTIONS_BYTES} bytes of JSON`);
  }
  return text;
}

const builtInRefused = (name: string) =>
  new PixqError(
    'built_in_template',
    `"${name}" is a built-in template and cannot be changed or deleted; create your own under another name`,
    { status: 409 },
  );

/** Vendors' job templates, and the built-in ones every vendor sees. Another vendor's template is not found. */
export class TemplateService {
  constructor(private readonly ctx: EngineContext) {}

  /** The built-in templates first, then the vendor's own by name. */
  async list(vendorId: string): Promise<Template[]> {
    const rows = await this.ctx.read((db) => selectTemplates(db, vendorId));
    return [...BUILT_IN_TEMPLATES.map((t) => builtIn(t.name)!), ...rows.map(toTemplate)];
  }

  /** A built-in template or the vendor's own of that name, or undefined. */
  async find(vendorId: string, name: string): Promise<Template | undefined> {
    const found = builtIn(name);
    if (found) return found;
    const row = await this.ctx.read((db) => selectTemplate(db, vendorId, name));
    return row && toTemplate(row);
  }

  async get(vendorId: string, name: string): Promise<Template> {
    const template = await this.find(vendorId, name);
    if (!template) throw notFound(`template ${name}`);
    return template;
  }

  /** One of the vendor's own templates, to change: a built-in one is refused. */
  async editable(vendorId: string, name: string): Promise<Template> {
    if (builtIns.has(name)) throw builtInRefused(name);
    return this.get(vendorId, name);
  }

  async create(vendorId: string, name: string, settings: TemplateSettings): Promise<Template> {
    if (builtIns.has(name))
      throw new PixqError('conflict', `"${name}" is the name of a built-in template`, { status: 409 });
    const options = optionsText(settings.options);
    const now = this.ctx.now();
    return this.ctx.write(async (tx) => {
      // Under the vendor's lock (PostgreSQL), so that creations at once cannot together pass the limit.
      if (!(await lockVendorById(tx, this.ctx.store.dialect, vendorId))) throw notFound('vendor');
      if ((await countTemplates(tx, vendorId)) >= MAX_TEMPLATES_PER_VENDOR) {
        throw new PixqError(
          'too_many_templates',
          `a vendor may keep at most ${MAX_TEMPLATES_PER_VENDOR} templates; delete one first`,
          {
            status: 409,
            details: { limit: MAX_TEMPLATES_PER_VENDOR },
          },
        );
      }
      const row = await insertTemplate(tx, {
        vendor_id: vendorId,
        name,
        type: settings.type,
        options,
        created_at: now,
        updated_at: now,
      });
      if (!row) throw new PixqError('conflict', `you already have a template named "${name}"`, { status: 409 });
      return toTemplate(row);
    });
  }

  /** Replaces the type and options of one of the vendor's own templates. */
  async update(vendorId: string, name: string, settings: TemplateSettings): Promise<Template> {
    if (builtIns.has(name)) throw builtInRefused(name);
    const options = optionsText(settings.options);
    const row = await this.ctx.write((tx) =>
      updateTemplate(tx, vendorId, name, { type: settings.type, options, updated_at: this.ctx.now() }),
    );
    if (!row) throw notFound(`template ${name}`);
    return toTemplate(row);
  }

  async delete(vendorId: string, name: string): Promise<void> {
    if (builtIns.has(name)) throw builtInRefused(name);
    if (!(await this.ctx.write((tx) => deleteTemplate(tx, vendorId, name)))) throw notFound(`template ${name}`);
  }
}
