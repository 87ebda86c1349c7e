-- 0010: the change version (changes.go). One row holding the number of
-- the last committed transaction that sent change notifications. Each such
-- transaction increments it, under the row's lock, just before it commits
-- and puts the number in its notifications, so numbers are given in
-- commit order with no gap (a transaction that rolls back gives its number
-- back). A replica whose change feed has received every number up to v
-- has missed no change; one that has not, after a grace, lost one.
--
-- Replicas still running a version that does not know this table notify
-- without numbers; their notifications are applied as before.

CREATE TABLE change_version (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    v  bigint  NOT NULL
);
INSERT INTO change_version (id, v) VALUES (true, 0);
