package store

import "os"

// StorageFull exposes storageFull to the tests.
var StorageFull = storageFull

// TopPages lists the pages the quick open check reads (freelist, root,
// bucket roots and their first level) of a cleanly closed file.
func TopPages(t interface{ Fatal(...any) }, path string) []int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	meta, err := activeMeta(f)
	if err != nil {
		t.Fatal(err)
	}
	r := &pageReader{f: f, size: fi.Size(), meta: meta}
	out := []int{int(meta.freelist), int(meta.root)}
	root, err := r.page(meta.root)
	if err != nil {
		t.Fatal(err)
	}
	buckets, err := leafBuckets(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range buckets {
		if id == 0 {
			continue
		}
		out = append(out, int(id))
		p, err := r.page(id)
		if err != nil {
			t.Fatal(err)
		}
		if flags(p) == flagBranch {
			kids, _ := branchChildren(p, meta.pgid)
			for _, k := range kids {
				out = append(out, int(k))
			}
		}
	}
	return out
}
