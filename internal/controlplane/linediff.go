package controlplane

import "strings"

// maxDiffCells bounds the LCS table; beyond it the diff says the resource
// changed too much to show line by line.
const maxDiffCells = 4_000_000

// tooLarge is the diff of a resource that changed too much to show.
const tooLarge = "(too large to show line by line)"

// lineDiff returns the changed lines between a and b, "-" for removed and
// "+" for added lines, with one line of context around each change.
func lineDiff(a, b []string) string {
	if len(a)*len(b) > maxDiffCells {
		return tooLarge
	}
	ops := lcsOps(a, b)
	var sb strings.Builder
	for i, op := range ops {
		if op.kind != ' ' || near(ops, i) {
			sb.WriteByte(op.kind)
			sb.WriteString(op.line)
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

type diffOp struct {
	kind byte
	line string
}

// near reports whether a change is next to ops[i].
func near(ops []diffOp, i int) bool {
	return (i > 0 && ops[i-1].kind != ' ') || (i+1 < len(ops) && ops[i+1].kind != ' ')
}

// lcsOps computes an edit script through the longest common subsequence.
// The common prefix is matched line by line without the table (the table's
// walk would match it the same way), so adding a route to a large route
// configuration does not cost a table of all its lines.
func lcsOps(a, b []string) []diffOp {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	ops := make([]diffOp, 0, max(len(a), len(b)))
	for _, l := range a[:p] {
		ops = append(ops, diffOp{' ', l})
	}
	return append(ops, lcsTable(a[p:], b[p:])...)
}

// lcsTable is lcsOps through the full table.
func lcsTable(a, b []string) []diffOp {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i]})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, diffOp{'-', a[i]})
			i++
		default:
			ops = append(ops, diffOp{'+', b[j]})
			j++
		}
	}
	return ops
}
