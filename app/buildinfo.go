package app

import (
	"os"
	"runtime/debug"
	"time"
)

// Resolved fills what the linker flags left unknown from what the Go
// toolchain embedded (runtime/debug.ReadBuildInfo): git_sha from
// vcs.revision (suffixed "-dirty" when vcs.modified), the build time from
// vcs.time. A build time that is not an RFC3339 date-time is never
// reported as one: without a usable vcs.time it falls back to the
// executable's modification time, which a plain `go build` sets.
func (b BuildInfo) Resolved() BuildInfo {
	info, _ := debug.ReadBuildInfo()
	return resolveBuild(b, info, executableModTime)
}

func executableModTime() (time.Time, error) {
	exe, err := os.Executable()
	if err != nil {
		return time.Time{}, err
	}
	st, err := os.Stat(exe)
	if err != nil {
		return time.Time{}, err
	}
	return st.ModTime(), nil
}

// resolveBuild is Resolved with its sources passed in (for tests).
func resolveBuild(b BuildInfo, info *debug.BuildInfo, exeTime func() (time.Time, error)) BuildInfo {
	vcs := map[string]string{}
	if info != nil {
		for _, s := range info.Settings {
			vcs[s.Key] = s.Value
		}
	}
	if b.GitSHA == "" || b.GitSHA == "unknown" {
		b.GitSHA = "unknown"
		if rev := vcs["vcs.revision"]; rev != "" {
			b.GitSHA = rev
			if vcs["vcs.modified"] == "true" {
				b.GitSHA += "-dirty"
			}
		}
	}
	if t, ok := rfc3339(b.BuildTime); ok {
		b.BuildTime = t
		return b
	}
	if t, ok := rfc3339(vcs["vcs.time"]); ok {
		b.BuildTime = t
		return b
	}
	b.BuildTime = ""
	if exeTime != nil {
		if t, err := exeTime(); err == nil && !t.IsZero() {
			b.BuildTime = t.UTC().Format(time.RFC3339)
		}
	}
	return b
}

// rfc3339 normalises s to RFC3339 in UTC when it is a date-time.
func rfc3339(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "", false
	}
	return t.UTC().Format(time.RFC3339), true
}
