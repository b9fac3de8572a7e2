package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

func TestCompileTrafficGolden(t *testing.T) {
	cfg := buildValid(t, readFiles(t, "testdata/valid_traffic.yaml"))
	got, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/valid_traffic.golden.json"
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := mustRead(t, golden); !bytes.Equal(append(got, '\n'), want) {
		t.Errorf("IR differs from %s (run go test -update to see the diff in git):\n%s", golden, got)
	}
}
