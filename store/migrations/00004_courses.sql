-- +goose Up
-- Courses: one database serves many courses. A course has a name, where its
-- notes came from (informative: re-indexing reads it) and when they were
-- last indexed; the classes it serves are rows of course_classes. The course
-- named 'default' always exists: COURSE_DIR indexes into it, and a class
-- with no course of its own searches it. Notes indexed before courses
-- existed become the default course's.
CREATE TABLE courses (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 100),
    dir        text        NOT NULL DEFAULT '' CHECK (length(dir) <= 4096),
    created_at timestamptz NOT NULL DEFAULT now(),
    indexed_at timestamptz
);

INSERT INTO courses (name, indexed_at) SELECT 'default', max(indexed_at) FROM course_files;

-- A class is a Slack workspace or Discord server (channel '') or one of its
-- channels; /ask in it searches the course bound to the channel, else the
-- one bound to the workspace, else the default course.
CREATE TABLE course_classes (
    platform  text   NOT NULL CHECK (platform <> '' AND length(platform) <= 32),
    workspace text   NOT NULL CHECK (workspace <> '' AND length(workspace) <= 128),
    channel   text   NOT NULL DEFAULT '' CHECK (length(channel) <= 128),
    course_id bigint NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    PRIMARY KEY (platform, workspace, channel)
);
CREATE INDEX course_classes_course ON course_classes (course_id);

-- Files and sections belong to one course; a path is unique within it.
ALTER TABLE course_sections DROP CONSTRAINT course_sections_path_fkey;
ALTER TABLE course_sections DROP CONSTRAINT course_sections_path_seq_key;
ALTER TABLE course_files DROP CONSTRAINT course_files_pkey;

ALTER TABLE course_files ADD COLUMN course_id bigint;
UPDATE course_files SET course_id = (SELECT id FROM courses WHERE name = 'default');
ALTER TABLE course_files ALTER COLUMN course_id SET NOT NULL;
ALTER TABLE course_files ADD FOREIGN KEY (course_id) REFERENCES courses (id) ON DELETE CASCADE;
ALTER TABLE course_files ADD PRIMARY KEY (course_id, path);

ALTER TABLE course_sections ADD COLUMN course_id bigint;
UPDATE course_sections SET course_id = (SELECT id FROM courses WHERE name = 'default');
ALTER TABLE course_sections ALTER COLUMN course_id SET NOT NULL;
ALTER TABLE course_sections ADD FOREIGN KEY (course_id, path) REFERENCES course_files (course_id, path) ON DELETE CASCADE;
ALTER TABLE course_sections ADD UNIQUE (course_id, path, seq);

-- +goose Down
DELETE FROM course_files WHERE course_id <> (SELECT id FROM courses WHERE name = 'default');
ALTER TABLE course_sections DROP CONSTRAINT course_sections_course_id_path_seq_key;
ALTER TABLE course_sections DROP CONSTRAINT course_sections_course_id_path_fkey;
ALTER TABLE course_sections DROP COLUMN course_id;
ALTER TABLE course_files DROP CONSTRAINT course_files_pkey;
ALTER TABLE course_files DROP COLUMN course_id;
ALTER TABLE course_files ADD PRIMARY KEY (path);
ALTER TABLE course_sections ADD UNIQUE (path, seq);
ALTER TABLE course_sections ADD FOREIGN KEY (path) REFERENCES course_files (path) ON DELETE CASCADE;
DROP TABLE course_classes;
DROP TABLE courses;
