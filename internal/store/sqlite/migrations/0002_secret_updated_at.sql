-- 0002: client secrets get updated_at, the last change of their own
-- settings (their expiry; a use moves last_used_at only). No earlier change
-- is known, so existing secrets take their created_at.
--
-- SQLite adds a NOT NULL column only with a default, and a default would
-- hide an insert that leaves the column out; so the table is rebuilt
-- instead (https://sqlite.org/lang_altertable.html#otheralter). No table
-- references client_secrets, so foreign keys can stay on.

CREATE TABLE client_secrets_new (
    id           TEXT    NOT NULL PRIMARY KEY,
    client_id    TEXT    NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    hash         BLOB    NOT NULL,
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER
);
INSERT INTO client_secrets_new (id, client_id, hash, prefix, created_at, updated_at, expires_at, last_used_at)
    SELECT id, client_id, hash, prefix, created_at, created_at, expires_at, last_used_at FROM client_secrets;
DROP TABLE client_secrets; -- and its index
ALTER TABLE client_secrets_new RENAME TO client_secrets;
CREATE INDEX client_secrets_client ON client_secrets (client_id, created_at, id);
