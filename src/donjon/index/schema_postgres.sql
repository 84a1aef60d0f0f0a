-- Donjon's PostgreSQL index, schema version 2 (the same model as schema_sqlite.sql).
-- Text compared or sorted by the index uses the "C" collation: byte order, as SQLite's BINARY.
-- Counters are kept by statement-level triggers in 16 shards (one per backend pid modulo 16), so that
-- concurrent writers do not queue on one hot row; a reader sums the shards.

CREATE TABLE donjon_schema (
    version INTEGER NOT NULL
);

CREATE TABLE resources (
    id BIGSERIAL PRIMARY KEY,
    level SMALLINT NOT NULL,
    public_id TEXT COLLATE "C" NOT NULL,
    parent_id BIGINT REFERENCES resources(id) ON DELETE CASCADE,
    tags BYTEA,
    patient_tags BYTEA,
    protected BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX resources_public_id ON resources(public_id);
CREATE INDEX resources_parent ON resources(parent_id);
CREATE INDEX resources_level ON resources(level, id);

-- a study also holds its copy of the patient's identifiers, under the negated tags (index/identifiers.py)
CREATE TABLE identifiers (
    resource_id BIGINT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    tag INTEGER NOT NULL,
    norm TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (resource_id, tag)
);
CREATE INDEX identifiers_lookup ON identifiers(tag, norm);

-- Values are UTF-8 bytes: PostgreSQL text cannot hold NUL, metadata may.
CREATE TABLE metadata (
    resource_id BIGINT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    type INTEGER NOT NULL,
    value BYTEA NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (resource_id, type)
);

CREATE TABLE attachments (
    resource_id BIGINT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    type INTEGER NOT NULL,
    uuid TEXT NOT NULL,
    compressed_size BIGINT NOT NULL,
    uncompressed_size BIGINT NOT NULL,
    compression INTEGER NOT NULL,
    uncompressed_md5 TEXT NOT NULL,
    compressed_md5 TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (resource_id, type)
);

CREATE SEQUENCE changes_seq;
CREATE TABLE changes (
    seq BIGINT PRIMARY KEY DEFAULT nextval('changes_seq'),
    type INTEGER NOT NULL,
    resource_id BIGINT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    level SMALLINT NOT NULL,
    date TEXT NOT NULL
);
CREATE INDEX changes_resource ON changes(resource_id);

CREATE SEQUENCE exports_seq;
CREATE TABLE exports (
    seq BIGINT PRIMARY KEY DEFAULT nextval('exports_seq'),
    level SMALLINT NOT NULL,
    public_id TEXT NOT NULL,
    remote_modality TEXT NOT NULL,
    date TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    sop_uid TEXT NOT NULL
);

CREATE TABLE global_properties (
    key INTEGER PRIMARY KEY,
    value TEXT NOT NULL
);

-- Unprotected patients, oldest first.
CREATE SEQUENCE recycling_seq;
CREATE TABLE recycling (
    patient_id BIGINT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL DEFAULT nextval('recycling_seq')
);
CREATE INDEX recycling_order ON recycling(seq);

CREATE TABLE labels (
    resource_id BIGINT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    label TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (resource_id, label)
);
CREATE INDEX labels_label ON labels(label);

CREATE TABLE counters (
    name TEXT NOT NULL,
    shard SMALLINT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (name, shard)
);
INSERT INTO counters (name, shard, value)
    SELECT n, s, 0 FROM unnest(ARRAY['level1', 'level2', 'level3', 'level4', 'disk', 'uncompressed']) AS n,
                        generate_series(0, 15) AS s;

-- Jobs shared by several Donjon processes: the owner renews its lease; an expired lease is taken over.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL,
    state TEXT NOT NULL,
    completed BOOLEAN NOT NULL DEFAULT FALSE,
    body TEXT NOT NULL,
    updated TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX jobs_lease ON jobs(completed, lease_until);

-- Progress of `donjon migrate-index` (resumable copy from a SQLite index).
CREATE TABLE migration_progress (
    step TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);

CREATE FUNCTION donjon_resources_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counters c SET value = c.value + d.n
      FROM (SELECT 'level' || level AS name, count(*) AS n FROM new_rows GROUP BY level) d
     WHERE c.name = d.name AND c.shard = pg_backend_pid() % 16;
    RETURN NULL;
END $$;

CREATE FUNCTION donjon_resources_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counters c SET value = c.value - d.n
      FROM (SELECT 'level' || level AS name, count(*) AS n FROM old_rows GROUP BY level) d
     WHERE c.name = d.name AND c.shard = pg_backend_pid() % 16;
    RETURN NULL;
END $$;

CREATE FUNCTION donjon_attachments_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counters c SET value = c.value + CASE c.name WHEN 'disk' THEN d.disk ELSE d.unc END
      FROM (SELECT coalesce(sum(compressed_size), 0) AS disk, coalesce(sum(uncompressed_size), 0) AS unc
              FROM new_rows HAVING count(*) > 0) d
     WHERE c.name IN ('disk', 'uncompressed') AND c.shard = pg_backend_pid() % 16;
    RETURN NULL;
END $$;

CREATE FUNCTION donjon_attachments_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counters c SET value = c.value - CASE c.name WHEN 'disk' THEN d.disk ELSE d.unc END
      FROM (SELECT coalesce(sum(compressed_size), 0) AS disk, coalesce(sum(uncompressed_size), 0) AS unc
              FROM old_rows HAVING count(*) > 0) d
     WHERE c.name IN ('disk', 'uncompressed') AND c.shard = pg_backend_pid() % 16;
    RETURN NULL;
END $$;

CREATE FUNCTION donjon_attachments_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counters c SET value = c.value + CASE c.name WHEN 'disk' THEN d.disk ELSE d.unc END
      FROM (SELECT coalesce(sum(n.compressed_size - o.compressed_size), 0) AS disk,
                   coalesce(sum(n.uncompressed_size - o.uncompressed_size), 0) AS unc
              FROM new_rows n JOIN old_rows o ON o.resource_id = n.resource_id AND o.type = n.type
            HAVING count(*) > 0) d
     WHERE c.name IN ('disk', 'uncompressed') AND c.shard = pg_backend_pid() % 16;
    RETURN NULL;
END $$;

CREATE TRIGGER resources_added AFTER INSERT ON resources REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION donjon_resources_added();
CREATE TRIGGER resources_deleted AFTER DELETE ON resources REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION donjon_resources_deleted();
CREATE TRIGGER attachments_added AFTER INSERT ON attachments REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION donjon_attachments_added();
CREATE TRIGGER attachments_deleted AFTER DELETE ON attachments REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION donjon_attachments_deleted();
CREATE TRIGGER attachments_updated AFTER UPDATE ON attachments REFERENCING OLD TABLE AS old_rows
    NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION donjon_attachments_updated();
