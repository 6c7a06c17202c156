//go:build race

package retention_test

// The fixtures are built in this (instrumented) test process: under the
// race detector the import is about 10x slower, so make test builds
// smaller stores. The restart measurement is of the uninstrumented
// binary either way.
func init() {
	restartRuns = 5000
	sweepRuns = 1500
}
