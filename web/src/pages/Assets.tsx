import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { Asset } from '@pixq/client';
import { useSession } from '../session';
import { errorText } from '../errors';

const PAGE_SIZE = 48;

/**
 * The vendor's assets as a grid of thumbnails (through their delivery URLs): search by path prefix, open the
 * original, copy its permanent URL, delete. The admin key holds no assets of its own.
 */
export function AssetsPage() {
  const { client, who } = useSession();
  const [prefix, setPrefix] = useState('');
  const [draft, setDraft] = useState('');
  const [assets, setAssets] = useState<Asset[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [error, setError] = useState<string>();
  const [notice, setNotice] = useState<string>();

  const load = useCallback(
    async (cursor?: string) => {
      try {
        const page = await client.assets.page({ prefix: prefix || undefined, cursor, limit: PAGE_SIZE });
        setAssets((shown) => (cursor ? [...shown, ...page.assets] : page.assets));
        setNextCursor(page.nextCursor);
        setError(undefined);
      } catch (e) {
        setError(errorText(e));
      }
    },
    [client, prefix],
  );
  useEffect(() => {
    if (who.kind === 'vendor') void load();
  }, [load, who.kind]);

  if (who.kind !== 'vendor') {
    return (
      <section className="assets-page">
        <h1>Assets</h1>
        <p className="empty">Assets belong to vendors: sign in with a vendor&apos;s API key to see its assets.</p>
      </section>
    );
  }

  const search = (event: FormEvent) => {
    event.preventDefault();
    setPrefix(draft.trim());
  };
  const copy = async (asset: Asset) => {
    try {
      await navigator.clipboard.writeText(asset.url);
      setNotice(`Copied the URL of ${asset.path}.`);
    } catch {
      // Clipboard access needs a secure context or a permission; the URL is in the link all the same.
      setNotice(asset.url);
    }
  };
  const remove = async (asset: Asset) => {
    if (!window.confirm(`Delete ${asset.path}? Its URLs stop working.`)) return;
    try {
      await client.assets.delete(asset.path);
      setAssets((shown) => shown.filter((a) => a.path !== asset.path));
      setNotice(`Deleted ${asset.path}.`);
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <section className="assets-page">
      <h1>Assets</h1>
      <form className="form-row filters" onSubmit={search}>
        <label>
          Path prefix <input value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="products/" />
        </label>
        <button type="submit">Search</button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <ul className="asset-grid" aria-label="Assets">
        {assets.map((asset) => (
          <li key={asset.path} className="asset-tile" data-asset={asset.path}>
            <a href={asset.url} target="_blank" rel="noreferrer" title="Open the original">
              <img src={asset.thumbnailUrl} alt={asset.path} loading="lazy" />
            </a>
            <span className="asset-path">{asset.path}</span>
            <span className="asset-facts">
              {asset.width}×{asset.height}, {Math.ceil(asset.bytes / 1024)} KB
            </span>
            <span className="row-actions">
              <button type="button" className="secondary" onClick={() => void copy(asset)}>
                Copy URL
              </button>
              <button type="button" className="danger" onClick={() => void remove(asset)}>
                Delete
              </button>
            </span>
          </li>
        ))}
      </ul>
      {assets.length === 0 && !error && <p className="empty">No assets{prefix ? ` under ${prefix}` : ''}.</p>}
      {nextCursor && (
        <nav className="pager">
          <button type="button" className="secondary" onClick={() => void load(nextCursor)}>
            More
          </button>
        </nav>
      )}
    </section>
  );
}
