// Command agentos is the AgentOS node and its operator CLI.
package main

import (
	"os"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/operator"
)

// Stamped at link time (see the Makefile).
var (
	version   = "dev"
	gitSHA    = "unknown"
	buildTime = "unknown"
)

func main() {
	os.Exit(operator.Main(os.Args, app.BuildInfo{Version: version, GitSHA: gitSHA, BuildTime: buildTime}))
}
