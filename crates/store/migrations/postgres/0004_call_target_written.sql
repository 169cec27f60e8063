-- A call's attempt count and reported target are written with the call's row: its record holds
-- every attempt, so the writer knows both. The triggers that recomputed them from the attempt
-- rows rewrote the call's row once more for every attempt inserted or answered.
DROP TRIGGER call_attempts_report_on_insert ON call_attempts;
DROP TRIGGER call_attempts_report_on_answer ON call_attempts;
DROP FUNCTION call_attempts_report_on_insert();
DROP FUNCTION call_attempts_report_on_answer();
