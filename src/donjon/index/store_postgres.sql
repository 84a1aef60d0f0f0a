-- The common store (a new instance, no recycling, no series completion to check) as one statement:
-- what core/store.py `_index` does through five or six statements and a transaction, in one round
-- trip. Replaced at every start-up (under the schema lock), so it always matches the running code.
-- The rules are those of `_index` (core/store.py) and postgres_batch.py; see there for the why.
-- o_ids is NULL when the instance already exists (the caller takes the general path).
-- p_rows (JSON: one parameter is far cheaper for psycopg to send than fourteen arrays):
--   "i": identifiers [level, tag, normalised value], "m": metadata [level, type, value, only when
--   this store creates the resource], "a": attachments [type, uuid, compressed size, size,
--   compression, md5, compressed md5], "c": the change type of a new resource, per level.
DROP FUNCTION IF EXISTS donjon_store_instance(TEXT[], BYTEA[], BYTEA, SMALLINT[], INTEGER[], TEXT[], SMALLINT[],
    INTEGER[], BYTEA[], BOOLEAN[], INTEGER[], TEXT[], BIGINT[], BIGINT[], INTEGER[], TEXT[], TEXT[], INTEGER[], TEXT,
    BOOLEAN);
CREATE OR REPLACE FUNCTION donjon_store_instance(
    p_public TEXT[], p_tags BYTEA[], p_patient_tags BYTEA, p_rows JSONB, p_date TEXT, p_durable BOOLEAN,
    OUT o_ids BIGINT[], OUT o_created BOOLEAN[])
LANGUAGE plpgsql AS $$
DECLARE
    rid BIGINT;
    found_level SMALLINT;
    parent BIGINT := NULL;
BEGIN
    IF NOT p_durable THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    IF EXISTS (SELECT 1 FROM resources WHERE public_id = p_public[4]) THEN
        RETURN;
    END IF;
    o_ids := ARRAY[NULL, NULL, NULL, NULL]::BIGINT[];
    o_created := ARRAY[false, false, false, false];
    FOR lvl IN 1..4 LOOP
        rid := NULL;
        IF lvl < 4 THEN
            SELECT id, level INTO rid, found_level FROM resources WHERE public_id = p_public[lvl];
        END IF;
        IF rid IS NULL THEN
            IF lvl < 4 THEN  -- a concurrent creator makes this wait for its outcome
                INSERT INTO resources (level, public_id, parent_id, tags, patient_tags)
                VALUES (lvl, p_public[lvl], parent, p_tags[lvl], CASE WHEN lvl = 2 THEN p_patient_tags END)
                ON CONFLICT (public_id) DO NOTHING RETURNING id INTO rid;
            ELSE  -- the same instance stored at once by another writer: unique violation, retried
                INSERT INTO resources (level, public_id, parent_id, tags)
                VALUES (lvl, p_public[lvl], parent, p_tags[lvl]) RETURNING id INTO rid;
            END IF;
            IF rid IS NULL THEN  -- created by a transaction that committed meanwhile
                SELECT id, level INTO rid, found_level FROM resources WHERE public_id = p_public[lvl];
                IF rid IS NULL THEN
                    RAISE EXCEPTION USING ERRCODE = 'serialization_failure',
                        MESSAGE = 'resource created and deleted concurrently: ' || p_public[lvl];
                END IF;
            ELSE
                o_created[lvl] := true;
                found_level := lvl;
                INSERT INTO identifiers (resource_id, tag, norm)
                SELECT rid, (e->>1)::INTEGER, e->>2 FROM jsonb_array_elements(p_rows->'i') AS e
                 WHERE (e->>0)::INTEGER = lvl
                ON CONFLICT (resource_id, tag) DO UPDATE SET norm = excluded.norm;
            END IF;
        END IF;
        IF found_level <> lvl THEN
            RAISE EXCEPTION USING ERRCODE = 'data_exception',
                MESSAGE = 'Identifier collision between levels: ' || p_public[lvl];
        END IF;
        o_ids[lvl] := rid;
        parent := rid;
    END LOOP;

    -- the resources this store created have no metadata yet: plain inserts; on the others (the
    -- ancestors it reuses), only a value that changes is written
    INSERT INTO metadata (resource_id, type, value, revision)
    SELECT o_ids[(e->>0)::INTEGER], (e->>1)::INTEGER, convert_to(e->>2, 'UTF8'), 0
      FROM jsonb_array_elements(p_rows->'m') AS e
     WHERE o_created[(e->>0)::INTEGER];
    INSERT INTO metadata (resource_id, type, value, revision)
    SELECT o_ids[u.l], u.t, u.v, 0
      FROM (SELECT (e->>0)::INTEGER AS l, (e->>1)::INTEGER AS t, convert_to(e->>2, 'UTF8') AS v,
                   (e->>3)::BOOLEAN AS n FROM jsonb_array_elements(p_rows->'m') AS e) AS u
     WHERE NOT u.n AND NOT o_created[u.l]
       AND (SELECT x.value FROM metadata x WHERE x.resource_id = o_ids[u.l] AND x.type = u.t)
           IS DISTINCT FROM u.v
    ON CONFLICT (resource_id, type) DO UPDATE SET value = excluded.value, revision = metadata.revision + 1;

    INSERT INTO attachments (resource_id, type, uuid, compressed_size, uncompressed_size, compression,
                             uncompressed_md5, compressed_md5, revision)
    SELECT o_ids[4], (e->>0)::INTEGER, e->>1, (e->>2)::BIGINT, (e->>3)::BIGINT, (e->>4)::INTEGER, e->>5, e->>6, 0
      FROM jsonb_array_elements(p_rows->'a') AS e;

    INSERT INTO changes (type, resource_id, level, date)
    SELECT (p_rows->'c'->>(l - 1))::INTEGER, o_ids[l], l, p_date FROM generate_series(4, 1, -1) AS l WHERE o_created[l]
    ORDER BY l DESC;

    INSERT INTO recycling (patient_id)
    SELECT id FROM resources WHERE id = o_ids[1] AND NOT protected
       AND id IS DISTINCT FROM (SELECT patient_id FROM recycling ORDER BY seq DESC LIMIT 1)
    ON CONFLICT (patient_id) DO UPDATE SET seq = nextval('recycling_seq');
END $$;
