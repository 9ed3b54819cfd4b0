-- The same CHECK on `_changes.op`, written as comparisons. SQLite evaluates `op IN (four
-- constants)` by building a temporary b-tree of the four values (open, four inserts, a
-- lookup, free) for every change-log row, that is, inside every record write; three or four
-- comparisons do the same job.
--
-- SQLite cannot alter a CHECK, and rebuilding the table would copy the whole change log. Its
-- documented shortcut for constraint-only changes is used instead: the stored CREATE TABLE
-- text is edited in place (the file format does not depend on CHECK constraints; every stored
-- row satisfies both forms) and the schema version is bumped by this migration's hook.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(
    sql,
    'CHECK (op IN (''insert'', ''update'', ''delete'', ''schema''))',
    'CHECK (op = ''insert'' OR op = ''update'' OR op = ''delete'' OR op = ''schema'')'
)
WHERE type = 'table' AND name = '_changes';
PRAGMA writable_schema = OFF;
