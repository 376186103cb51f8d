-- An evaluation awards the claims waiting for it in the service (credit::attendance::
-- evaluation_sent, in the rating's transaction), so that each award is in the change log and
-- its webhooks like every other change of a record: the trigger that did it is gone.
DROP TRIGGER attendance_evaluated;
