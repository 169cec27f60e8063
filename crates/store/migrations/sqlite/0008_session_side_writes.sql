-- A new visitor session's `session.created` event and its page's scan are written by the session
-- batch itself, which knows in memory which accounts hook the event and which pages are queued
-- already. The row triggers did the same work for every session, and that per-row work was most
-- of the DNI path's cost in the database.

DROP TRIGGER session_created;
DROP TRIGGER page_scan_queued;
