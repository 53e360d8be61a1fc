package decode_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConnInfoReadOnly: capture owns connection identity. Nothing under
// decode/ may write to a ConnInfo it was given: no field of a ConnInfo is
// assigned (or has its address taken), and no *ConnInfo is passed around,
// except in ConnInfo's own methods, which work on their receiver copy.
// The check type-checks every package under decode/ (non-test files).
func TestConnInfoReadOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	gobin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	out, err := exec.Command(gobin, "list", "-export", "-deps", "-json=ImportPath,Dir,GoFiles,Export,Standard", "./...").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	type pkg struct {
		ImportPath, Dir, Export string
		GoFiles                 []string
		Standard                bool
	}
	exports := map[string]string{}
	var ours []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		if strings.HasPrefix(p.ImportPath, "github.com/mailtap/mailtap/decode") {
			ours = append(ours, p)
		}
	}
	if len(ours) < 5 {
		t.Fatalf("only %d packages under decode/", len(ours))
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f := exports[path]
		if f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	for _, p := range ours {
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Defs: map[*ast.Ident]types.Object{}}
		conf := types.Config{Importer: imp}
		if _, err := conf.Check(p.ImportPath, fset, files, info); err != nil {
			t.Fatalf("%s: %v", p.ImportPath, err)
		}
		for _, f := range files {
			for _, bad := range connInfoWrites(f, info) {
				t.Errorf("%s: %s", fset.Position(bad.pos), bad.what)
			}
		}
	}
}

type finding struct {
	pos  token.Pos
	what string
}

func isConnInfo(t types.Type) bool {
	n, ok := t.(*types.Named)
	return ok && n.Obj().Name() == "ConnInfo" && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "github.com/mailtap/mailtap/decode"
}

// connInfoWrites lists the writes to ConnInfo fields and the *ConnInfo
// types in f, outside ConnInfo's own methods.
func connInfoWrites(f *ast.File, info *types.Info) []finding {
	var out []finding
	// fieldOf reports whether e is a field selector on a ConnInfo (or a
	// pointer to one).
	fieldOf := func(e ast.Expr) bool {
		sel, ok := ast.Unparen(e).(*ast.SelectorExpr)
		if !ok {
			return false
		}
		tv, ok := info.Types[sel.X]
		if !ok {
			return false
		}
		t := tv.Type
		if p, ok := t.(*types.Pointer); ok {
			t = p.Elem()
		}
		return isConnInfo(t)
	}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil && len(fd.Recv.List) == 1 {
			if tv, ok := info.Types[fd.Recv.List[0].Type]; ok && isConnInfo(tv.Type) {
				continue // a value receiver: its own copy
			}
		}
		ast.Inspect(d, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				for _, l := range n.Lhs {
					if fieldOf(l) {
						out = append(out, finding{l.Pos(), "assigns a ConnInfo field"})
					}
				}
			case *ast.IncDecStmt:
				if fieldOf(n.X) {
					out = append(out, finding{n.Pos(), "changes a ConnInfo field"})
				}
			case *ast.UnaryExpr:
				if n.Op == token.AND {
					if tv, ok := info.Types[n.X]; ok && isConnInfo(tv.Type) || fieldOf(n.X) {
						out = append(out, finding{n.Pos(), "takes the address of a ConnInfo"})
					}
				}
			case *ast.StarExpr:
				if tv, ok := info.Types[n.X]; ok && tv.IsType() && isConnInfo(tv.Type) {
					out = append(out, finding{n.Pos(), "uses *ConnInfo"})
				}
			}
			return true
		})
	}
	return out
}
