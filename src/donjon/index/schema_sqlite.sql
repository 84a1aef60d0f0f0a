-- Donjon's SQLite index, schema version 4 (index/sqlite.py upgrades older ones in place).
-- Counters are kept by triggers so that /statistics and recycling never scan.

CREATE TABLE resources (
    id INTEGER PRIMARY KEY,
    level INTEGER NOT NULL,
    public_id TEXT NOT NULL,
    parent_id INTEGER REFERENCES resources(id) ON DELETE CASCADE,
    tags BLOB,
    patient_tags BLOB,
    protected INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX resources_public_id ON resources(public_id);
-- covering: the children of resources (ids and public ids) without reading their rows
CREATE INDEX resources_parent_ids ON resources(parent_id, id, public_id);
-- covering: a level's public ids in id order without reading the rows (their tags make them big)
CREATE INDEX resources_level_ids ON resources(level, id, public_id);

-- Normalised copies of the identifier tags, for indexed lookups (find, lookup); a study also holds
-- its copy of the patient's, under the negated tags (index/identifiers.py).
CREATE TABLE identifiers (
    resource_id INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    tag INTEGER NOT NULL,
    norm TEXT NOT NULL,
    PRIMARY KEY (resource_id, tag)
) WITHOUT ROWID;
CREATE INDEX identifiers_lookup ON identifiers(tag, norm);

CREATE TABLE metadata (
    resource_id INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    type INTEGER NOT NULL,
    value TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (resource_id, type)
) WITHOUT ROWID;

CREATE TABLE attachments (
    resource_id INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    type INTEGER NOT NULL,
    uuid TEXT NOT NULL,
    compressed_size INTEGER NOT NULL,
    uncompressed_size INTEGER NOT NULL,
    compression INTEGER NOT NULL,
    uncompressed_md5 TEXT NOT NULL,
    compressed_md5 TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (resource_id, type)
) WITHOUT ROWID;

CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type INTEGER NOT NULL,
    resource_id INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    level INTEGER NOT NULL,
    date TEXT NOT NULL
);
CREATE INDEX changes_resource ON changes(resource_id);

CREATE TABLE exports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    level INTEGER NOT NULL,
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
CREATE TABLE recycling (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    patient_id INTEGER NOT NULL UNIQUE REFERENCES resources(id) ON DELETE CASCADE
);

CREATE TABLE labels (
    resource_id INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    PRIMARY KEY (resource_id, label)
) WITHOUT ROWID;
CREATE INDEX labels_label ON labels(label);

CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters VALUES ('level1', 0), ('level2', 0), ('level3', 0), ('level4', 0),
                            ('disk', 0), ('uncompressed', 0);

CREATE TRIGGER resource_added AFTER INSERT ON resources BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'level' || new.level;
END;
CREATE TRIGGER resource_deleted AFTER DELETE ON resources BEGIN
    UPDATE counters SET value = value - 1 WHERE name = 'level' || old.level;
END;
CREATE TRIGGER attachment_added AFTER INSERT ON attachments BEGIN
    UPDATE counters SET value = value + new.compressed_size WHERE name = 'disk';
    UPDATE counters SET value = value + new.uncompressed_size WHERE name = 'uncompressed';
END;
CREATE TRIGGER attachment_deleted AFTER DELETE ON attachments BEGIN
    UPDATE counters SET value = value - old.compressed_size WHERE name = 'disk';
    UPDATE counters SET value = value - old.uncompressed_size WHERE name = 'uncompressed';
END;
CREATE TRIGGER attachment_updated AFTER UPDATE OF compressed_size, uncompressed_size ON attachments BEGIN
    UPDATE counters SET value = value + new.compressed_size - old.compressed_size WHERE name = 'disk';
    UPDATE counters SET value = value + new.uncompressed_size - old.uncompressed_size WHERE name = 'uncompressed';
END;
