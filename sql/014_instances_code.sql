-- 014: each daemon's short code, so that the daemons on one code share that code's rate and no other
-- (SPEC §11: gateway.rate_per_second is the rate of sender.short_code). NULL: a daemon of before this
-- migration, counted on every code (the safe side: a smaller share).
ALTER TABLE payremind.instances ADD COLUMN short_code text;
