// Command tollgate is the Tollgate API gateway's control plane and CLI.
package main

import (
	"os"

	"github.com/tollgate/tollgate/internal/cli"
)

func main() {
	os.Exit(cli.Execute(os.Args[1:], os.Stdout, os.Stderr))
}
