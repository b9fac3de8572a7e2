package policy

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/tollgate/tollgate/internal/parallel"
)

// NewSmallParseCache returns a ParseCache that takes files of any size
// and cuts chunks of min, avg and max bytes (see chunkPlan), so that small
// test files have many chunks.
func NewSmallParseCache(min, avg, max int) *ParseCache {
	return &ParseCache{plan: chunkPlan{min: min, avg: avg, max: max}}
}

// CacheMinBytes is cacheMinBytes, for tests that generate files above it.
const CacheMinBytes = cacheMinBytes

// CacheStats is what one build through a ParseCache did with a file.
type CacheStats struct {
	Taken        bool // the cache parsed the file
	Hits, Misses int  // parts reused, parts parsed
}

// CompareCachedParse parses content as one build through c, on workers
// goroutines, and compares its tree with the sequential parse's, node for
// node; then it overwrites every node of the tree it got (as no loader
// would, to show that the cache handed out a copy), parses content again
// as a second build and compares the tree parseDocs wraps with the
// sequential one's; then a third build as the loader parses (a lazy
// session: the routes list's reused chunks are built when read), whose
// tree, each lazy item taken in a random order, must be the same. It
// returns what the first build did.
func CompareCachedParse(c *ParseCache, content []byte, workers int) (CacheStats, error) {
	raw, rawErr := parseOne(bytes.NewReader(content))
	sess := c.begin()
	doc, ok := sess.parse(content, workers)
	sess.commit()
	st := CacheStats{Taken: ok, Hits: int(sess.hits.Load()), Misses: int(sess.misses.Load())}
	if !ok {
		return st, nil
	}
	if rawErr != nil {
		return st, fmt.Errorf("the cache took a file the parser refuses: %v", rawErr)
	}
	if d := nodeDiff(raw, doc, "doc"); d != "" {
		return st, fmt.Errorf("raw tree differs: %s", d)
	}
	scribble(doc)
	want, _, wantErr := parseDocs(content, 1, nil)
	sess = c.begin()
	got, _, gotErr := parseDocs(content, workers, sess)
	sess.commit()
	if wantErr != nil || gotErr != nil || len(got) != 1 || len(want) != 1 {
		return st, fmt.Errorf("parseDocs: %d documents, %v; sequential %d, %v", len(got), gotErr, len(want), wantErr)
	}
	if d := nodeDiff(want[0], got[0], "body"); d != "" {
		return st, fmt.Errorf("wrapped tree differs: %s", d)
	}
	sess = c.begin()
	sess.lazy = true
	res := parseMarked(content, content, workers, sess)
	sess.commit()
	if res.err != nil || len(res.docs) != 1 {
		return st, fmt.Errorf("lazy parse: %d documents, %v", len(res.docs), res.err)
	}
	resolveLazy(res.docs[0], res.lazy, len(content))
	if d := nodeDiff(want[0], res.docs[0], "body"); d != "" {
		return st, fmt.Errorf("lazily built tree differs: %s", d)
	}
	return st, nil
}

// resolveLazy replaces the lazyNode items of doc's sequences by the items
// lazy builds, taking them in an order that depends on seed, as the
// loader's workers may.
func resolveLazy(doc *yaml.Node, lazy lazyItems, seed int) {
	if len(lazy) == 0 {
		return
	}
	for _, n := range doc.Content {
		if n.Kind != yaml.SequenceNode {
			continue
		}
		k := len(n.Content)
		for j := range k {
			i := (j*7919 + seed) % k
			if item := n.Content[i]; item.Kind == lazyNode {
				n.Content[i] = lazy[item].take(i, j%2 == 0)
			}
		}
	}
}

// scribble overwrites every node of n's tree.
func scribble(n *yaml.Node) {
	for _, c := range n.Content {
		scribble(c)
	}
	*n = yaml.Node{Kind: yaml.ScalarNode, Value: "scribbled", Line: -1, Column: -1, HeadComment: "#",
		Content: append(n.Content[:0], nil)[:0]}
}

// LoadCached is Load parsing through c.
func LoadCached(files []File, c *ParseCache) (*Policy, Diagnostics) {
	return loadSpread(files, DefaultLimits(), parallel.Workers, c)
}
