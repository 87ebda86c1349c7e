-- 0003: an application may introspect the tokens of the audiences it
-- names in introspect_audiences (API identifiers) instead of every token
-- (can_introspect). Applications that could introspect every token get
-- every API there is now but the system (management) API, in the order of
-- their creation.
--
-- can_introspect stays, written as "introspect_audiences is not empty",
-- for replicas still running a version that reads it. The default lets
-- their inserts, which do not name the new column, go on.

ALTER TABLE applications ADD COLUMN introspect_audiences text[] COLLATE "C" NOT NULL DEFAULT '{}';
UPDATE applications
   SET introspect_audiences = ARRAY(SELECT identifier FROM apis WHERE NOT system ORDER BY created_at, id)
 WHERE can_introspect;
