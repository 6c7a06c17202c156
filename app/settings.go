package app

// Setting describes one configurable value for the command line: its flag,
// its environment variable, its help text, and whether it is a secret
// (never echoed in reports, passed to a child process through the
// environment rather than argv).
type Setting struct {
	Flag   string
	Env    string
	Usage  string
	Secret bool
}

// Settings lists every configurable value in the order of the settings
// table behind flags, variables and .agentos.env.
func Settings() []Setting {
	out := make([]Setting, 0, len(settings))
	for _, s := range settings {
		out = append(out, Setting{Flag: s.Flag, Env: s.Env, Usage: s.Usage, Secret: s.Secret})
	}
	return out
}

// SplitList splits a comma or space separated list the way list settings
// are read, dropping empty items.
func SplitList(v string) []string { return splitList(v) }
