-- 013: room for the outcome on the reminder's own page. A reminder is created with its text (about
-- 500 bytes in French) and recorded once sent without it (about 170): for that update to stay HOT
-- (heap-only, no index touched) while one statement records a whole page's reminders, the page must
-- keep about a third of what its reminders take. fillfactor 80 kept a fifth: enough while French
-- and English texts alternated, 90% HOT once the claim took a region (all French) at a time.
ALTER TABLE payremind.reminders SET (fillfactor = 70);
