-- 012: the claim walks the due rows group by group, a group being one (region, time zone) pair, the
-- group whose contact window closes first before the others (SPEC §11), instead of in one next_at
-- order. Each group is a range of due_accounts_claim_idx, in the claim's order (next_at, the oldest
-- due date, the lowest id), which replaces the next_at index one for one: moving a row on still writes
-- one index entry, of 40 bytes (the group as a number, not its two texts: the entry would be 64 bytes,
-- and every claim and every move pays for width).
CREATE TABLE payremind.claim_groups (
	id        integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	region    text NOT NULL,
	time_zone text NOT NULL,
	CONSTRAINT claim_groups_region_time_zone_key UNIQUE (region, time_zone)
);

ALTER TABLE payremind.due_accounts ADD COLUMN claim_group integer;

-- Set by this trigger from region and time_zone, never by billing: a pair seen for the first time gets
-- its number here (SECURITY DEFINER: billing's role needs no right on claim_groups).
CREATE FUNCTION payremind.due_accounts_claim_group() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, payremind AS $$
BEGIN
	SELECT id INTO NEW.claim_group FROM payremind.claim_groups
	 WHERE region = NEW.region AND time_zone = NEW.time_zone;
	IF NOT FOUND THEN
		INSERT INTO payremind.claim_groups (region, time_zone) VALUES (NEW.region, NEW.time_zone)
		ON CONFLICT (region, time_zone) DO NOTHING;
		SELECT id INTO STRICT NEW.claim_group FROM payremind.claim_groups
		 WHERE region = NEW.region AND time_zone = NEW.time_zone;
	END IF;
	RETURN NEW;
END $$;

CREATE TRIGGER due_accounts_claim_group
	BEFORE INSERT OR UPDATE OF region, time_zone, claim_group ON payremind.due_accounts
	FOR EACH ROW EXECUTE FUNCTION payremind.due_accounts_claim_group();

INSERT INTO payremind.claim_groups (region, time_zone)
SELECT DISTINCT region, time_zone FROM payremind.due_accounts ORDER BY 1, 2;
UPDATE payremind.due_accounts d SET claim_group = g.id
  FROM payremind.claim_groups g WHERE g.region = d.region AND g.time_zone = d.time_zone;
ALTER TABLE payremind.due_accounts ALTER COLUMN claim_group SET NOT NULL;

CREATE INDEX due_accounts_claim_idx ON payremind.due_accounts (claim_group, next_at, due_date, id)
	WHERE next_at IS NOT NULL;
DROP INDEX payremind.due_accounts_next_at_idx;
