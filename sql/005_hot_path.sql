-- 005: cheaper hot path. The send-record trigger's condition calls no function (a SQL function in a
-- trigger's WHEN runs through the function manager for every row recorded), and the partial index on
-- leases goes: the rescue finds 'sending' rows through reminders_open_idx.
DROP TRIGGER reminders_dlr_settle ON payremind.reminders;
CREATE TRIGGER reminders_dlr_settle BEFORE UPDATE OF state ON payremind.reminders FOR EACH ROW
	WHEN (NEW.dlr_status IN ('delivered', 'undelivered', 'failed', 'smsc_reject')
	      AND OLD.state = 'sending' AND NEW.state IN ('sent', 'unknown', 'queued'))
	EXECUTE FUNCTION payremind.dlr_settle();

DROP TRIGGER replies_dlr_settle ON payremind.replies;
CREATE TRIGGER replies_dlr_settle BEFORE UPDATE OF state ON payremind.replies FOR EACH ROW
	WHEN (NEW.dlr_status IN ('delivered', 'undelivered', 'failed', 'smsc_reject')
	      AND OLD.state = 'sending' AND NEW.state IN ('sent', 'unknown', 'queued'))
	EXECUTE FUNCTION payremind.dlr_settle();

DROP INDEX payremind.reminders_sending_idx;
