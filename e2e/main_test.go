package e2e

import (
	"testing"

	"github.com/tollgate/tollgate/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
