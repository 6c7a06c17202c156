package app

import (
	"errors"
	"runtime/debug"
	"testing"
	"time"
)

// TestHardening_BuildInfoFromVCS: issue 14 item 16. Without linker flags
// the build reports git_sha and a date-time from the embedded VCS
// settings, never the string "unknown" as a timestamp.
func TestHardening_BuildInfoFromVCS(t *testing.T) {
	vcs := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-28T09:15:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	exe := func() (time.Time, error) { return time.Date(2026, 11, 29, 10, 0, 0, 0, time.FixedZone("x", 3600)), nil }
	noExe := func() (time.Time, error) { return time.Time{}, errors.New("no executable") }
	cases := []struct {
		name    string
		in      BuildInfo
		info    *debug.BuildInfo
		exe     func() (time.Time, error)
		sha, ts string
	}{
		{"plain go build", BuildInfo{Version: "dev", GitSHA: "unknown", BuildTime: "unknown"}, vcs, exe,
			"0123456789abcdef0123456789abcdef01234567-dirty", "2026-11-28T09:15:00Z"},
		{"linker flags win", BuildInfo{GitSHA: "feedbee", BuildTime: "2026-01-02T03:04:05+01:00"}, vcs, exe,
			"feedbee", "2026-01-02T02:04:05Z"},
		{"no vcs: executable time", BuildInfo{GitSHA: "unknown", BuildTime: "unknown"}, &debug.BuildInfo{}, exe,
			"unknown", "2026-11-29T09:00:00Z"},
		{"a bad linker time is not a date-time", BuildInfo{BuildTime: "yesterday"}, nil, noExe, "unknown", ""},
	}
	for _, c := range cases {
		got := resolveBuild(c.in, c.info, c.exe)
		if got.GitSHA != c.sha || got.BuildTime != c.ts {
			t.Errorf("%s: got %q %q, want %q %q", c.name, got.GitSHA, got.BuildTime, c.sha, c.ts)
		}
		if got.BuildTime != "" {
			if _, err := time.Parse(time.RFC3339, got.BuildTime); err != nil {
				t.Errorf("%s: %q is not RFC3339", c.name, got.BuildTime)
			}
		}
	}
}
