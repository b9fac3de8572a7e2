// Package docexamples finds the YAML examples of the documentation
// (README.md and docs/**/*.md) so tests can check each one with the real
// policy validation, and wraps policy fragments into whole policies.
//
// Every ```yaml block is one of three kinds, told by its first comment line
// (a yaml-language-server modeline may come before it):
//
//   - a complete policy: it has a top-level `version:` key and no marker;
//   - `# fragment: <where it goes>`: top-level policy keys (routes,
//     backends, auth, ...) that need the rest of a policy around them; Wrap
//     adds it;
//   - `# not-a-policy`: other YAML (compose, Kubernetes, a bootstrap),
//     parsed as YAML only.
package docexamples

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Kind is what a YAML block of the documentation holds.
type Kind int

// The kinds of YAML blocks.
const (
	Policy Kind = iota
	Fragment
	NotAPolicy
)

// Markers that start a block's first comment line.
const (
	FragmentMarker   = "# fragment:"
	NotAPolicyMarker = "# not-a-policy"
	modelinePrefix   = "# yaml-language-server:"
)

// Block is one ```yaml block.
type Block struct {
	File string // relative to the repository root
	Line int    // line of the opening fence
	Kind Kind
	// Where is a fragment's "where it goes".
	Where   string
	Content string
}

// Name identifies the block in test names and messages.
func (b Block) Name() string { return fmt.Sprintf("%s:%d", b.File, b.Line) }

var versionKey = regexp.MustCompile(`(?m)^version:`)

// Markdown returns README.md and every .md file under docs/ of the
// repository at root, relative to root, sorted.
func Markdown(root string) ([]string, error) {
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(files[1:])
	return files, err
}

// Extract returns the YAML blocks of one markdown file. It fails on a code
// fence that is never closed, and on a YAML block that is neither a
// complete policy nor marked.
func Extract(root, file string) ([]Block, error) {
	data, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		return nil, err
	}
	var blocks []Block
	var cur *Block
	var body strings.Builder
	open := 0 // line of the open fence, 0 when outside one
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if !strings.HasPrefix(trimmed, "```") {
			if cur != nil {
				body.WriteString(line + "\n")
			}
			continue
		}
		if open == 0 {
			open = n
			if strings.TrimSpace(strings.TrimPrefix(trimmed, "```")) == "yaml" {
				cur = &Block{File: file, Line: n}
				body.Reset()
			}
			continue
		}
		if trimmed != "```" {
			return nil, fmt.Errorf("%s:%d: code fence opened at line %d is not closed before another fence (%q)", file, n, open, trimmed)
		}
		open = 0
		if cur != nil {
			cur.Content = body.String()
			if err := classify(cur); err != nil {
				return nil, err
			}
			blocks = append(blocks, *cur)
			cur = nil
		}
	}
	if open != 0 {
		return nil, fmt.Errorf("%s:%d: code fence is never closed", file, open)
	}
	return blocks, sc.Err()
}

func classify(b *Block) error {
	for _, l := range strings.Split(b.Content, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, modelinePrefix) {
			continue
		}
		switch {
		case strings.HasPrefix(l, FragmentMarker):
			b.Kind, b.Where = Fragment, strings.TrimSpace(strings.TrimPrefix(l, FragmentMarker))
			return nil
		case strings.HasPrefix(l, NotAPolicyMarker):
			b.Kind = NotAPolicy
			return nil
		}
		break
	}
	if !versionKey.MatchString(b.Content) {
		return fmt.Errorf("%s: a YAML block without `version:` must start with %q or %q", b.Name(), FragmentMarker+" <where it goes>", NotAPolicyMarker)
	}
	b.Kind = Policy
	return nil
}
