package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A bad notes file costs only itself: course index indexes the rest,
// succeeds, and lists each skipped file with its reason.
func TestCourseIndexListsSkippedFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"syllabus.md": "# Syllabus\n## Grading\nThe exam counts for 40%.\n",
		"binary.md":   "# Exam\nroom\x00 12\n",
		"big.txt":     strings.Repeat("word ", 400),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"COURSE_DIR": dir, "COURSE_MAX_FILE_BYTES": "1KB"}
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"classbot", "course", "index"}, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("course index: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{
		"1 files, 1 sections",
		`skipped "big.txt": 2.0 KB, over the 1.0 KB limit`,
		`skipped "binary.md": contains a NUL byte`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestConfigCourseMaxFileBytes(t *testing.T) {
	c, err := loadConfig(func(k string) string { return map[string]string{"COURSE_MAX_FILE_BYTES": "512KB"}[k] })
	if err != nil || c.CourseMaxFileBytes != 512<<10 {
		t.Errorf("512KB: %d, %v", c.CourseMaxFileBytes, err)
	}
	if c, err := loadConfig(func(string) string { return "" }); err != nil || c.CourseMaxFileBytes != 10<<20 {
		t.Errorf("default: %d, %v", c.CourseMaxFileBytes, err)
	}
	if _, err := loadConfig(func(k string) string { return map[string]string{"COURSE_MAX_FILE_BYTES": "lots"}[k] }); err == nil ||
		!strings.Contains(err.Error(), "COURSE_MAX_FILE_BYTES must be a size such as 10MB") {
		t.Errorf("a bad size: %v", err)
	}
}
