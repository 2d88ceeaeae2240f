-- 015: each daemon's gateway.rate_per_second (segments per second for its short code; 0 unpaced), so
-- that `payremindctl plan` paces the day at the rates of the codes actually sending (SPEC §11), not
-- only at the rate of the configuration it reads. NULL: a daemon of before this migration.
ALTER TABLE payremind.instances ADD COLUMN rate_per_second double precision;
