import type { ApiKey, JobTypeList, Vendor } from '@pixq/client';
import { useCallback, useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { errorText } from '../errors';
import { formatRate, parseRate, type Rate } from '../rates';
import { useSession } from '../session';
import { Table } from '../table';

/** The per-vendor rate limits an operator may override (VendorSettings.rateLimits), with their labels. */
const RATE_KINDS = [
  ['requests', 'Requests rate'],
  ['image', 'Image rate'],
  ['removeBackground', 'Background removal rate'],
  ['bulk', 'Bulk rate'],
] as const;

/** The heading of a column of buttons. */
const ACTIONS = { label: 'Actions', hidden: true };

/** Runs an admin action, turning its refusal into the message shown next to it. */
function useAction() {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const run = useCallback(async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  }, []);
  const message = error && (
    <p role="alert" className="error">
      {error}
    </p>
  );
  return { run, busy, message };
}

/** A secret the server shows only in this answer. */
function ShownOnce({ label, secret }: { label: string; secret: string }) {
  return (
    <div className="notice" role="status">
      <p>{label} (shown once: copy it now)</p>
      <code className="secret" aria-label={label}>
        {secret}
      </code>
    </div>
  );
}

/** Admin: vendors, their settings and keys; job types paused or limited for everyone. */
export function VendorsPage() {
  const { client } = useSession();
  const [vendors, setVendors] = useState<Vendor[]>();
  const [selected, setSelected] = useState<string>();
  const { run, message } = useAction();
  const reload = useCallback(() => run(async () => setVendors((await client.vendors()).vendors)), [client, run]);
  useEffect(() => void reload(), [reload]);

  const vendor = vendors?.find((v) => v.id === selected);
  return (
    <>
      <h1>Vendors</h1>
      {message}
      <CreateVendor
        onCreated={(v) => {
          setSelected(v.id);
          void reload();
        }}
      />
      <section>
        <h2>All vendors</h2>
        {vendors && (
          <Table
            label="Vendors"
            columns={[
              'Name',
              'Status',
              ...['Weight', 'Running cap', 'Backlog quota'].map((label) => ({ label, numeric: true })),
              ACTIONS,
            ]}
          >
            {vendors.map((v) => (
              <tr key={v.id}>
                <th scope="row">{v.name}</th>
                <td className={`state-${v.status}`}>{v.status}</td>
                <td className="num">{v.weight}</td>
                <td className="num">{v.maxRunning ?? '–'}</td>
                <td className="num">{v.maxQueued ?? '–'}</td>
                <td>
                  <button
                    type="button"
                    className="secondary"
                    aria-label={`Edit ${v.name}`}
                    onClick={() => setSelected(v.id)}
                  >
                    Edit
                  </button>
                </td>
              </tr>
            ))}
          </Table>
        )}
      </section>
      {vendor && <VendorEditor key={vendor.id} vendor={vendor} onSaved={reload} />}
      <JobTypes />
    </>
  );
}

function CreateVendor({ onCreated }: { onCreated(vendor: Vendor): void }) {
  const { client } = useSession();
  const [name, setName] = useState('');
  const [created, setCreated] = useState<{ name: string; apiKey: string }>();
  const { run, busy, message } = useAction();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      const answer = await client.createVendor({ name: name.trim() });
      setCreated({ name: answer.vendor.name, apiKey: answer.apiKey });
      setName('');
      onCreated(answer.vendor);
    });
  };
  return (
    <section className="card">
      <h2>New vendor</h2>
      <form className="form-row" onSubmit={submit}>
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={64} />
        </label>
        <button type="submit" disabled={busy}>
          Create vendor
        </button>
      </form>
      {message}
      {created && <ShownOnce label={`API key for ${created.name}`} secret={created.apiKey} />}
    </section>
  );
}

/** A number field's value: empty is null (no cap of its own). */
const optionalInt = (text: string) => (text.trim() === '' ? null : Number(text));

function VendorEditor({ vendor, onSaved }: { vendor: Vendor; onSaved(): void }) {
  const { client } = useSession();
  const rates = (vendor.rateLimits ?? {}) as Partial<Record<string, Rate>>;
  const [weight, setWeight] = useState(String(vendor.weight));
  const [maxRunning, setMaxRunning] = useState(vendor.maxRunning?.toString() ?? '');
  const [maxQueued, setMaxQueued] = useState(vendor.maxQueued?.toString() ?? '');
  const [suspended, setSuspended] = useState(vendor.status === 'suspended');
  const [rateText, setRateText] = useState<Record<string, string>>(() =>
    Object.fromEntries(RATE_KINDS.map(([k]) => [k, formatRate(rates[k])])),
  );
  const { run, busy, message } = useAction();
  const [saved, setSaved] = useState(false);

  const save = (event: FormEvent) => {
    event.preventDefault();
    setSaved(false);
    void run(async () => {
      const rateLimits = Object.fromEntries(
        RATE_KINDS.flatMap(([k]) => {
          const rate = parseRate(rateText[k]);
          return rate ? [[k, rate]] : [];
        }),
      );
      await client.updateVendor(vendor.id, {
        weight: Number(weight),
        maxRunning: optionalInt(maxRunning),
        maxQueued: optionalInt(maxQueued),
        status: suspended ? 'suspended' : 'active',
        rateLimits: Object.keys(rateLimits).length > 0 ? rateLimits : null,
      });
      setSaved(true);
      onSaved();
    });
  };

  return (
    <section className="card" aria-labelledby="vendor-heading">
      <h2 id="vendor-heading">Vendor {vendor.name}</h2>
      <form onSubmit={save}>
        <div className="form-row">
          <Field label="Weight">
            <input
              type="number"
              min="0.01"
              max="1000"
              step="any"
              required
              value={weight}
              onChange={(e) => setWeight(e.target.value)}
            />
          </Field>
          <Field label="Running cap">
            <input
              type="number"
              min="1"
              step="1"
              placeholder="none"
              value={maxRunning}
              onChange={(e) => setMaxRunning(e.target.value)}
            />
          </Field>
          <Field label="Backlog quota">
            <input
              type="number"
              min="1"
              step="1"
              placeholder="none"
              value={maxQueued}
              onChange={(e) => setMaxQueued(e.target.value)}
            />
          </Field>
        </div>
        <div className="form-row">
          {RATE_KINDS.map(([kind, label]) => (
            <Field key={kind} label={label}>
              <input
                placeholder="default"
                size={9}
                value={rateText[kind]}
                onChange={(e) => setRateText({ ...rateText, [kind]: e.target.value })}
              />
            </Field>
          ))}
        </div>
        <div className="form-row">
          <label className="check">
            <input type="checkbox" checked={suspended} onChange={(e) => setSuspended(e.target.checked)} />
            Suspended
          </label>
          <button type="submit" disabled={busy}>
            Save vendor
          </button>
          {saved && <span role="status">Saved.</span>}
        </div>
        <p className="hint">
          Rates are a count per window (100/15m); empty means the server's default. Empty caps mean none.
        </p>
      </form>
      {message}
      <Keys vendor={vendor} />
    </section>
  );
}

function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <label>
      {label}
      {children}
    </label>
  );
}

function Keys({ vendor }: { vendor: Vendor }) {
  const { client } = useSession();
  const [keys, setKeys] = useState<ApiKey[]>();
  const [issued, setIssued] = useState<string>();
  const { run, busy, message } = useAction();
  const reload = useCallback(
    () => run(async () => setKeys((await client.vendorKeys(vendor.id)).keys)),
    [client, run, vendor.id],
  );
  useEffect(() => void reload(), [reload]);

  return (
    <>
      <h3>API keys</h3>
      {keys && (
        <Table label={`API keys of ${vendor.name}`} columns={['Key', 'Created', 'Revoked', ACTIONS]}>
          {keys.map((k) => (
            <tr key={k.id}>
              <th scope="row">
                <code>{k.prefix}…</code>
              </th>
              <td>{new Date(k.createdAt).toLocaleString()}</td>
              <td>{k.revokedAt ? new Date(k.revokedAt).toLocaleString() : '–'}</td>
              <td>
                {!k.revokedAt && (
                  <button
                    type="button"
                    className="danger"
                    disabled={busy}
                    aria-label={`Revoke key ${k.prefix}`}
                    onClick={() =>
                      run(async () => {
                        await client.revokeKey(vendor.id, k.id);
                        await reload();
                      })
                    }
                  >
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}
      <p>
        <button
          type="button"
          className="secondary"
          disabled={busy}
          onClick={() =>
            run(async () => {
              setIssued((await client.issueKey(vendor.id)).apiKey);
              await reload();
            })
          }
        >
          Issue key
        </button>
      </p>
      {message}
      {issued && <ShownOnce label={`New API key for ${vendor.name}`} secret={issued} />}
    </>
  );
}

function JobTypes() {
  const { client } = useSession();
  const [list, setList] = useState<JobTypeList>();
  const { run, busy, message } = useAction();
  const reload = useCallback(() => run(async () => setList(await client.jobTypes())), [client, run]);
  useEffect(() => void reload(), [reload]);
  if (!list) return message ?? null;
  // The admin key always gets the settings; only a vendor key has none.
  const settings = new Map((list.types ?? []).map((t) => [t.type, t]));
  const types = [...new Set([...list.available, ...settings.keys()])].sort();

  return (
    <section>
      <h2>Job types</h2>
      {message}
      <Table label="Job types" columns={['Type', 'State', 'Global running cap', 'Global rate limit', ACTIONS]}>
        {types.map((type) => (
          <JobTypeRow
            key={type}
            type={type}
            paused={settings.get(type)?.paused ?? false}
            maxRunning={settings.get(type)?.maxRunning ?? null}
            rateLimit={settings.get(type)?.rateLimit ?? null}
            busy={busy}
            run={(action) =>
              run(async () => {
                await action();
                await reload();
              })
            }
          />
        ))}
      </Table>
      <p className="hint">
        A paused type's jobs stay queued until it is resumed. Limits apply to all vendors together.
      </p>
    </section>
  );
}

function JobTypeRow({
  type,
  paused,
  maxRunning,
  rateLimit,
  busy,
  run,
}: {
  type: string;
  paused: boolean;
  maxRunning: number | null;
  rateLimit: Rate | null;
  busy: boolean;
  run(action: () => Promise<unknown>): void;
}) {
  const { client } = useSession();
  const [cap, setCap] = useState(maxRunning?.toString() ?? '');
  const [rate, setRate] = useState(formatRate(rateLimit));
  return (
    <tr>
      <th scope="row">{type}</th>
      <td className={paused ? 'state-paused' : undefined}>{paused ? 'paused' : 'running'}</td>
      <td>
        <input
          type="number"
          min="1"
          step="1"
          placeholder="none"
          aria-label={`Global running cap for ${type}`}
          value={cap}
          onChange={(e) => setCap(e.target.value)}
        />
      </td>
      <td>
        <input
          size={9}
          placeholder="none"
          aria-label={`Global rate limit for ${type}`}
          value={rate}
          onChange={(e) => setRate(e.target.value)}
        />
      </td>
      <td className="actions">
        <button
          type="button"
          className="secondary"
          disabled={busy}
          aria-label={`Save limits for ${type}`}
          onClick={() =>
            run(() => client.configureJobType(type, { maxRunning: optionalInt(cap), rateLimit: parseRate(rate) }))
          }
        >
          Save
        </button>
        {paused ? (
          <button
            type="button"
            disabled={busy}
            aria-label={`Resume ${type}`}
            onClick={() => run(() => client.resumeType(type))}
          >
            Resume
          </button>
        ) : (
          <button
            type="button"
            className="danger"
            disabled={busy}
            aria-label={`Pause ${type}`}
            onClick={() => run(() => client.pauseType(type))}
          >
            Pause
          </button>
        )}
      </td>
    </tr>
  );
}
