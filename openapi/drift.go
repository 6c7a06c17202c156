package openapi

import (
	"fmt"
	"sort"

	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi/what-changed/model"
)

// BreakingChanges compares a current document with the published baseline
// (libopenapi's what-changed) and lists every change its rules call
// breaking: a removed path, operation, parameter or property, a changed
// type, a new required field or parameter, a narrowed enum. Additive
// changes (new optional fields, new paths) are not listed. Each entry reads
// "<change> <property> [at line N]: <original> -> <new>".
func BreakingChanges(baseline, current []byte) ([]string, error) {
	oldDoc, err := libopenapi.NewDocument(baseline)
	if err != nil {
		return nil, fmt.Errorf("parse baseline: %w", err)
	}
	newDoc, err := libopenapi.NewDocument(current)
	if err != nil {
		return nil, fmt.Errorf("parse current: %w", err)
	}
	changes, err := libopenapi.CompareDocuments(oldDoc, newDoc)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	if changes == nil {
		return nil, nil
	}
	var out []string
	for _, c := range changes.GetAllChanges() {
		if c == nil || !c.Breaking {
			continue
		}
		out = append(out, describeChange(c))
	}
	sort.Strings(out)
	return out, nil
}

func describeChange(c *model.Change) string {
	what := map[int]string{
		model.Modified:        "modified",
		model.PropertyAdded:   "added",
		model.ObjectAdded:     "added",
		model.ObjectRemoved:   "removed",
		model.PropertyRemoved: "removed",
	}[c.ChangeType]
	s := what + " " + c.Property
	if c.Path != "" {
		s += " (" + c.Path + ")"
	}
	if c.Context != nil {
		switch {
		case c.Context.NewLine != nil:
			s += fmt.Sprintf(" at line %d", *c.Context.NewLine)
		case c.Context.OriginalLine != nil:
			s += fmt.Sprintf(" at baseline line %d", *c.Context.OriginalLine)
		}
	}
	if c.Original != "" || c.New != "" {
		s += fmt.Sprintf(": %q -> %q", c.Original, c.New)
	}
	return s
}
