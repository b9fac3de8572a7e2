package translator

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the Envoy module the tests built (envoyModule).
func TestMain(m *testing.M) {
	code := m.Run()
	if moduleBuild.path != "" {
		os.RemoveAll(filepath.Dir(moduleBuild.path))
	}
	os.Exit(code)
}
