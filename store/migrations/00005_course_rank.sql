-- +goose Up
-- Term statistics for ranking course sections (BM25F, computed in Go over
-- the full-text search's candidates): each field's length, how many
-- sections contain each lexeme, and the vocabulary's trigrams for
-- correcting typos. Triggers keep them in step with course_sections, so
-- every way sections are written (COPY, DELETE, the cascade from
-- course_files, TRUNCATE) updates them in the same transaction.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Field lengths in distinct lexemes (title: the heading path; body: the text).
ALTER TABLE course_sections
    ADD COLUMN title_len integer GENERATED ALWAYS AS (length(to_tsvector('english', title))) STORED,
    ADD COLUMN body_len  integer GENERATED ALWAYS AS (length(to_tsvector('english', body))) STORED;

-- Each course's vocabulary: every lexeme of its sections and in how many
-- of them it occurs.
CREATE TABLE course_terms (
    course_id bigint  NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    lexeme    text    NOT NULL,
    df        integer NOT NULL CHECK (df > 0),
    PRIMARY KEY (course_id, lexeme)
);
-- On lower(lexeme) (lexemes are lower-case already), so that looking a
-- lexeme up by equality keeps to the primary key.
CREATE INDEX course_terms_trgm ON course_terms USING GIN (lower(lexeme) gin_trgm_ops);

-- One row per course: the number of its sections and the sums of their
-- field lengths.
CREATE TABLE course_stats (
    course_id bigint  PRIMARY KEY REFERENCES courses (id) ON DELETE CASCADE,
    sections  bigint  NOT NULL,
    title_len bigint  NOT NULL,
    body_len  bigint  NOT NULL
);

-- Optional embeddings (hybrid search): one vector per section content and
-- embedding model, so a section is embedded again only when its heading
-- path or text changes. pgvector is not available everywhere: vectors are
-- float4[] and compared in Go.
ALTER TABLE course_sections
    ADD COLUMN content_hash text GENERATED ALWAYS AS (md5(title || E'\n' || body)) STORED;
CREATE INDEX course_sections_content_hash ON course_sections (content_hash);
CREATE TABLE course_embeddings (
    model        text     NOT NULL CHECK (model <> '' AND length(model) <= 200),
    content_hash text     NOT NULL,
    vec          float4[] NOT NULL,
    PRIMARY KEY (model, content_hash)
);

INSERT INTO course_terms (course_id, lexeme, df)
SELECT s.course_id, u.lexeme, count(*) FROM course_sections s, unnest(s.tsv) u GROUP BY s.course_id, u.lexeme;
INSERT INTO course_stats (course_id, sections, title_len, body_len)
SELECT course_id, count(*), coalesce(sum(title_len), 0), coalesce(sum(body_len), 0)
FROM course_sections GROUP BY course_id;

-- +goose StatementBegin
CREATE FUNCTION course_terms_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO course_terms (course_id, lexeme, df)
    SELECT s.course_id, u.lexeme, count(*) FROM added s, unnest(s.tsv) u
    GROUP BY s.course_id, u.lexeme ORDER BY s.course_id, u.lexeme
    ON CONFLICT (course_id, lexeme) DO UPDATE SET df = course_terms.df + EXCLUDED.df;
    INSERT INTO course_stats AS c (course_id, sections, title_len, body_len)
    SELECT course_id, count(*), coalesce(sum(title_len), 0), coalesce(sum(body_len), 0)
    FROM added GROUP BY course_id ORDER BY course_id
    ON CONFLICT (course_id) DO UPDATE SET sections = c.sections + EXCLUDED.sections,
        title_len = c.title_len + EXCLUDED.title_len, body_len = c.body_len + EXCLUDED.body_len;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION course_terms_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        SELECT s.course_id, u.lexeme, count(*) AS n FROM removed s, unnest(s.tsv) u GROUP BY s.course_id, u.lexeme
    ), left_ AS (
        UPDATE course_terms t SET df = t.df - g.n FROM gone g
        WHERE t.course_id = g.course_id AND t.lexeme = g.lexeme AND t.df > g.n
        RETURNING t.lexeme
    )
    DELETE FROM course_terms t USING gone g
    WHERE t.course_id = g.course_id AND t.lexeme = g.lexeme AND t.df <= g.n;
    UPDATE course_stats c SET sections = c.sections - a.n, title_len = c.title_len - a.t, body_len = c.body_len - a.b
    FROM (SELECT course_id, count(*) AS n, coalesce(sum(title_len), 0) AS t, coalesce(sum(body_len), 0) AS b
          FROM removed GROUP BY course_id) a
    WHERE c.course_id = a.course_id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION course_terms_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM course_terms;
    DELETE FROM course_stats;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER course_sections_added AFTER INSERT ON course_sections
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION course_terms_added();
CREATE TRIGGER course_sections_removed AFTER DELETE ON course_sections
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION course_terms_removed();
CREATE TRIGGER course_sections_truncated AFTER TRUNCATE ON course_sections
    FOR EACH STATEMENT EXECUTE FUNCTION course_terms_truncated();

-- +goose Down
DROP TRIGGER course_sections_truncated ON course_sections;
DROP TRIGGER course_sections_removed ON course_sections;
DROP TRIGGER course_sections_added ON course_sections;
DROP FUNCTION course_terms_truncated();
DROP FUNCTION course_terms_removed();
DROP FUNCTION course_terms_added();
DROP TABLE course_embeddings;
DROP TABLE course_stats;
DROP TABLE course_terms;
ALTER TABLE course_sections DROP COLUMN content_hash, DROP COLUMN body_len, DROP COLUMN title_len;
