package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/tollgate/tollgate/internal/controlplane"
)

// changeMarks are the signs of the change summary, as in a diff.
var changeMarks = map[string]string{"added": "+", "removed": "-", "changed": "~"}

// printChanges prints the changes per gateway, one line per resource:
//
//	changes to gateway public:
//	  + listener https
//	  ~ cluster users (connectTimeout)
//	  ~ route http (+api-v2, ~users)
//	  - cluster old
//
// With full, each changed resource's line diff follows its line.
func printChanges(w io.Writer, cs []controlplane.Change, full bool) {
	gateway := ""
	for i, c := range cs {
		if i == 0 || c.Gateway != gateway {
			gateway = c.Gateway
			fmt.Fprintf(w, "changes to gateway %s:\n", gateway)
		}
		fmt.Fprintf(w, "  %s %s %s%s\n", changeMarks[c.Action], c.Type, c.Name, fieldSummary(c.Fields))
		if full {
			printDiffLines(w, c.Diff)
		}
	}
}

// fieldSummary is " (a, b)" for a changed resource's fields, or "".
func fieldSummary(fields []string) string {
	if len(fields) == 0 {
		return ""
	}
	return " (" + strings.Join(fields, ", ") + ")"
}

func printDiffLines(w io.Writer, diff string) {
	for _, l := range strings.Split(strings.TrimRight(diff, "\n"), "\n") {
		if l != "" {
			fmt.Fprintf(w, "      %s\n", l)
		}
	}
}
