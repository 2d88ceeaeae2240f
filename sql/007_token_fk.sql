-- 007: payment_tokens.reminder_id loses its foreign key. Tokens are only ever inserted by the statement
-- that inserts their reminder, so the per-row check (a query of its own, locking the reminder) bought
-- nothing on the hottest statement; the retention purge deletes a reminder's tokens with it.
ALTER TABLE payremind.payment_tokens DROP CONSTRAINT payment_tokens_reminder_id_fkey;
