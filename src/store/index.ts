/** The store: schema, migrations and one function per SQL operation. The engine is its only user. */
export { openStore, type Store, type StoreOptions, type Dialect } from './connect.js';
export { migrate, isMigrated, LATEST_MIGRATION } from './migrate.js';
export { transaction, type Tx } from './transaction.js';
export * from './schema.js';
