package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocsStayInRepo: the docs cite no file outside the repository (a
// reader of the repo alone cannot follow such a reference).
func TestDocsStayInRepo(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	// Markdown link targets and code spans that look like relative paths.
	ref := regexp.MustCompile("\\]\\(([^)#]+)|`(\\.\\.?/[^` ]+)`")
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			target := m[1] + m[2]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if target == "../shared/corpus" {
				continue // where the optional third-party test captures sit, not a citation
			}
			abs := filepath.Clean(filepath.Join(filepath.Dir(doc), target))
			if rel, err := filepath.Rel(root, abs); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s cites %s, outside the repository", filepath.Base(doc), target)
			}
		}
	}
}

// TestAppendSectionDocumented: an APPEND's imap.message has section ""
// and docs/schema.md says so.
func TestAppendSectionDocumented(t *testing.T) {
	recs := ofType(decodeFile(t, "../../pcaps/gen-imap-append-literalplus.pcap"), "imap.message")
	n := 0
	for _, r := range recs {
		if r.str("direction") == "append" {
			n++
			if s, ok := r["section"].(string); !ok || s != "" {
				t.Errorf("APPEND section %v, want \"\"", r["section"])
			}
		}
	}
	if n == 0 {
		t.Fatal("no APPEND message decoded")
	}
	schema, err := os.ReadFile("../../docs/schema.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(schema), "`\"\"` for APPEND") {
		t.Errorf("docs/schema.md does not say an APPEND's section is \"\"")
	}
}
