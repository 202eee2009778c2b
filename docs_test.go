package entraredis_test

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// docFiles are the documents whose fenced Go blocks must compile.
var docFiles = []string{"README.md", "TROUBLESHOOTING.md"}

// codeBlock is one fenced Go block of a document.
type codeBlock struct {
	file string
	line int // of the opening fence
	src  string
}

// goBlocks returns the ```go blocks of a Markdown file.
func goBlocks(t *testing.T, file string) []codeBlock {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []codeBlock
	var cur *codeBlock
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```go":
			cur = &codeBlock{file: file, line: n}
		case cur != nil && trimmed == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.src += line + "\n"
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: unclosed code block", file, cur.line)
	}
	return blocks
}

// fragmentImports are imported by the file that wraps a fragment (a block
// that is not a whole program); unused ones are not an error.
var fragmentImports = []string{
	"context", "crypto/tls", "errors", "fmt", "log", "log/slog", "time",
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity",
	"github.com/Azure/azure-sdk-for-go/sdk/azcore",
	"github.com/redis/go-redis/v9",
	"github.com/entraredis/entraredis",
	"github.com/entraredis/entraredis/entratoken",
}

// wrapFragment makes a fragment a file: the fragment is the body of a
// function whose parameters are what fragments may use without declaring
// it: ctx and cred.
func wrapFragment(src string) string {
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n")
	for _, p := range fragmentImports {
		fmt.Fprintf(&b, "\t%q\n", p)
	}
	b.WriteString(")\n\nfunc fragment(ctx context.Context, cred azcore.TokenCredential) {\n")
	b.WriteString(src)
	b.WriteString("}\n\nfunc main() { fragment(context.Background(), nil) }\n")
	return b.String()
}

// exportImporter imports packages from the export data the go command
// builds (go list -export), for the packages the blocks import.
func exportImporter(t *testing.T, fset *token.FileSet, paths []string) types.Importer {
	t.Helper()
	args := append([]string{"list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}"}, paths...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list -export: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	exports := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, file, _ := strings.Cut(line, "=")
		exports[path] = file
	}
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok || file == "" {
			return nil, fmt.Errorf("no export data for %q", path)
		}
		return os.Open(file)
	})
}

// TestDocsGoBlocksCompile type-checks every fenced Go block of README.md and
// TROUBLESHOOTING.md, as the compiler would: a block that starts with a
// package clause is a file of its own; any other block is a fragment, the
// body of a function given ctx (context.Context) and cred
// (azcore.TokenCredential). Only "declared and not used" and unused
// imports are forgiven, so that fragments can show a step without its
// sequel. Each block must also be gofmt-formatted.
func TestDocsGoBlocksCompile(t *testing.T) {
	type unit struct {
		block codeBlock
		src   string
		file  *ast.File
	}
	fset := token.NewFileSet()
	var units []unit
	imports := slices.Clone(fragmentImports)
	for _, doc := range docFiles {
		blocks := goBlocks(t, doc)
		if len(blocks) == 0 {
			t.Errorf("%s has no Go block: is the fence still ```go?", doc)
		}
		for _, b := range blocks {
			src := b.src
			if !strings.HasPrefix(strings.TrimSpace(src), "package ") {
				src = wrapFragment(src)
			} else if formatted, err := format.Source([]byte(src)); err == nil && string(formatted) != src {
				t.Errorf("%s:%d: the block is not gofmt-formatted", b.file, b.line)
			}
			f, err := parser.ParseFile(fset, fmt.Sprintf("%s:%d", b.file, b.line), src, 0)
			if err != nil {
				t.Errorf("%v", err)
				continue
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				imports = append(imports, p)
			}
			units = append(units, unit{b, src, f})
		}
	}
	slices.Sort(imports)
	imp := exportImporter(t, fset, slices.Compact(imports))
	forgiven := regexp.MustCompile(`declared and not used|imported and not used|"[^"]+" imported as \w+ and not used`)
	for _, u := range units {
		var errs []string
		conf := types.Config{Importer: imp, Error: func(err error) {
			if !forgiven.MatchString(err.Error()) {
				errs = append(errs, err.Error())
			}
		}}
		conf.Check("main", fset, []*ast.File{u.file}, nil)
		for _, e := range errs {
			t.Errorf("%s", e)
		}
	}
}

// goldenTexts returns the messages and hints of testdata/errors.golden.
func goldenTexts(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	var cur *strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "error: "), strings.HasPrefix(line, "hint: "):
			_, text, _ := strings.Cut(line, ": ")
			cur = &strings.Builder{}
			cur.WriteString(text)
			texts = append(texts, "")
		case strings.HasPrefix(line, "== "), strings.HasPrefix(line, "#"), line == "":
			cur = nil
			continue
		case cur != nil: // a message of several lines
			cur.WriteString("\n" + line)
		default:
			t.Fatalf("%s: unexpected line %q", goldenFile, line)
		}
		texts[len(texts)-1] = cur.String()
	}
	return texts
}

// TestTroubleshootingCoversGolden checks that every error message and hint
// of testdata/errors.golden appears in TROUBLESHOOTING.md, whitespace
// aside, so that what users read there cannot drift from what the code
// says.
func TestTroubleshootingCoversGolden(t *testing.T) {
	doc, err := os.ReadFile("TROUBLESHOOTING.md")
	if err != nil {
		t.Fatal(err)
	}
	space := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	text := space(string(doc))
	texts := goldenTexts(t)
	if len(texts) < 30 {
		t.Fatalf("%s has %d texts: fewer than the cases of TestGolden", goldenFile, len(texts))
	}
	for _, want := range texts {
		if !strings.Contains(text, space(want)) {
			t.Errorf("TROUBLESHOOTING.md does not quote this text of %s:\n%s", goldenFile, want)
		}
	}
}
