-- 006: the hot path writes fewer index entries. An update that changes no indexed column, and finds
-- room on its page, is HOT (heap-only): no index is touched. So:
-- - a claim leases a due row in columns no index covers (lease_owner, lease_until), and leaves next_at
--   alone; the statement that creates the reminder moves next_at on, once;
-- - recording an outcome changes no indexed column of reminders: no index involves state (a partial
--   index's condition counts), sent_at or gateway_message_id. Twilio's status callbacks name our
--   reminder (?ref=) rather than being looked up by message sid;
-- - pages keep room for those updates.
ALTER TABLE payremind.due_accounts ADD COLUMN lease_until timestamptz;
ALTER TABLE payremind.due_accounts SET (fillfactor = 90);
ALTER TABLE payremind.reminders SET (fillfactor = 80);
DROP INDEX payremind.reminders_open_idx;
DROP INDEX payremind.reminders_gateway_message_id_idx;
-- Only opting back in looked due rows up by number (a rare, operator-paced event): a scan will do.
DROP INDEX payremind.due_accounts_msisdn_idx;
