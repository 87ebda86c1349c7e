-- 0003: an application may introspect the tokens of the audiences it
-- names in introspect_audiences (a JSON array of API identifiers) instead
-- of every token (can_introspect). Applications that could introspect
-- every token get every API there is now but the system (management) API,
-- in the order of their creation.
--
-- can_introspect stays, written as "introspect_audiences is not empty",
-- for replicas still running a version that reads it. The default lets
-- their inserts, which do not name the new column, go on.

ALTER TABLE applications ADD COLUMN introspect_audiences TEXT NOT NULL DEFAULT '[]';
UPDATE applications
   SET introspect_audiences = (SELECT json_group_array(identifier ORDER BY created_at, id)
                                 FROM apis WHERE system = 0)
 WHERE can_introspect <> 0;
