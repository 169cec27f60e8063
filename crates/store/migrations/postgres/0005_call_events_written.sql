-- A call's `call.started`, `call.routed` and `call.finished` events are queued by the call
-- writer, which knows in memory which accounts have a webhook for them. The row triggers that
-- did it ran for every call and attempt row written, with or without a webhook. A call
-- interrupted by a restart gets its `call.finished` from the same transaction that interrupts
-- it.
DROP TRIGGER call_started ON calls;
DROP TRIGGER call_routed ON call_attempts;
DROP TRIGGER call_finished_at_once ON calls;
DROP TRIGGER call_finished ON calls;
DROP FUNCTION call_started();
DROP FUNCTION call_routed();
DROP FUNCTION call_finished();
