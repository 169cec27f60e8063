-- A call's `call.started`, `call.routed` and `call.finished` events are queued by the call
-- writer, which knows in memory which accounts have a webhook for them. The row triggers that
-- did it ran a trigger program for every call and attempt row written, with or without a
-- webhook: four per answered call, most of the call path's cost in the database after the
-- rows themselves. A call interrupted by a restart gets its `call.finished` from the same
-- transaction that interrupts it.
DROP TRIGGER call_started;
DROP TRIGGER call_routed;
DROP TRIGGER call_finished_at_once;
DROP TRIGGER call_finished;
