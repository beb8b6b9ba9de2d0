import { sql, type Kysely } from 'kysely';

/**
 * Pending webhook deliveries by vendor, in due order: the delivery workers' fair claim steps through the vendors
 * that have pending deliveries on it (one probe per vendor) and takes each one's oldest due delivery, so one
 * vendor's backlog cannot hold back another's. Partial, like `webhook_deliveries_due`: finished deliveries,
 * kept for the retention period, are not in it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index webhook_deliveries_pending_by_vendor on webhook_deliveries (vendor_id, next_attempt_at)
    where state = 'pending'`.execute(db);
}
