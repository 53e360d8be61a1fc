package decode

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// anomalyConsts returns the value of every constant of type Anomaly
// declared in anomaly.go, by name.
func anomalyConsts(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "anomaly.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, sp := range g.Specs {
			vs := sp.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Anomaly" {
				t.Errorf("%s: constant without type Anomaly", vs.Names[0].Name)
				continue
			}
			for i, n := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s: not a string literal", n.Name)
				}
				v, _ := strconv.Unquote(lit.Value)
				out[n.Name] = v
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no Anomaly constants found")
	}
	return out
}

// TestAnomaliesDocumented fails when an Anomaly constant is missing from
// the Anomalies section of docs/schema.md, or when that section lists a
// kind no constant declares.
func TestAnomaliesDocumented(t *testing.T) {
	consts := anomalyConsts(t)
	doc, err := os.ReadFile("../docs/schema.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "\n## Anomalies\n")
	if !ok {
		t.Fatal("docs/schema.md has no Anomalies section")
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	// Table rows start with the backquoted kinds they describe.
	documented := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| ((?:`[a-z0-9_]+`(?:, )?)+) \\|")
	for _, m := range row.FindAllStringSubmatch(sec, -1) {
		for _, k := range strings.Split(m[1], ", ") {
			documented[strings.Trim(k, "`")] = true
		}
	}
	values := map[string]bool{}
	for name, v := range consts {
		values[v] = true
		if !documented[v] {
			t.Errorf("%s (%q) is not documented in docs/schema.md's Anomalies table", name, v)
		}
	}
	for k := range documented {
		if !values[k] {
			t.Errorf("docs/schema.md documents anomaly %q, which no decode.Anomaly constant declares", k)
		}
	}
}

// TestAnomalyNoLiterals fails when a string literal spelling an anomaly
// kind appears in the decoders' or capture's code: kinds are named only
// through their constants, so the documentation test sees every one.
func TestAnomalyNoLiterals(t *testing.T) {
	values := map[string]string{}
	for name, v := range anomalyConsts(t) {
		values[v] = name
	}
	fset := token.NewFileSet()
	for _, root := range []string{".", "../capture"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || path == "anomaly.go" {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			check := func(args []ast.Expr) {
				for _, e := range args {
					lit, ok := e.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					if v, err := strconv.Unquote(lit.Value); err == nil && values[v] != "" {
						t.Errorf("%s: anomaly kind %s as a string: use decode.%s", fset.Position(lit.Pos()), lit.Value, values[v])
					}
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					// x.Anomaly("k"), anomaly("k"), HasAnomaly("k"),
					// append(m.Anomalies, "k"), slices.Contains(m.Anomalies, "k").
					if anomalyName(n.Fun) || slices.ContainsFunc(n.Args, anomalyName) {
						check(n.Args)
					}
				case *ast.KeyValueExpr:
					// Message{Anomalies: []string{"k"}}
					if anomalyName(n.Key) {
						if cl, ok := n.Value.(*ast.CompositeLit); ok {
							check(cl.Elts)
						}
					}
				case *ast.AssignStmt:
					// m.Anomalies = []string{"k"}
					if slices.ContainsFunc(n.Lhs, anomalyName) {
						for _, r := range n.Rhs {
							if cl, ok := r.(*ast.CompositeLit); ok {
								check(cl.Elts)
							}
						}
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// anomalyName reports whether e names something about anomalies: an
// identifier or field whose name contains "anomal" in any case.
func anomalyName(e ast.Expr) bool {
	var name string
	switch e := e.(type) {
	case *ast.Ident:
		name = e.Name
	case *ast.SelectorExpr:
		name = e.Sel.Name
	default:
		return false
	}
	return strings.Contains(strings.ToLower(name), "anomal")
}
