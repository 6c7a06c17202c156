package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"sort"
)

// The open check reads bbolt's on-disk structures directly (the format is
// bbolt's documented, stable page layout) so it can judge a file without
// trusting it: every read goes through ReadAt and is bounds-checked, so a
// damaged page is an error here, never a panic or a fault.
//
// A file closed cleanly carries its freelist (Close writes it; see
// markClean), so the open check is cheap: the meta pages, the freelist
// page, the root bucket and the first level of each top-level bucket —
// a few dozen pages whatever the file's size. A file that was not closed
// cleanly (a crash, kill -9, a power cut, or a file from before the clean
// marker) has no freelist: bbolt would rebuild it by walking every page,
// so the full walk of check runs first and refuses damage it finds.

// bbolt page layout.
const (
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	elementSize      = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	bucketHeaderSize = 16 // root pgid u64, sequence u64
	flagBranch       = 0x01
	flagLeaf         = 0x02
	flagMeta         = 0x04
	flagFreelist     = 0x10
	leafFlagBucket   = 0x01
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	noFreelist       = ^uint64(0)
)

// boltMeta is a decoded meta page.
type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64 // high water mark: pages [0, pgid) exist
	txid     uint64
}

// OpenCheck says how Open judged an existing file.
type OpenCheck struct {
	// Full is true when every page was walked (the file was not closed
	// cleanly); false for the quick check of a cleanly closed file.
	Full bool
	// Pages is how many pages the quick check read (0 after a full walk).
	Pages int
}

// errNoFreelist means the file holds no freelist: it was not closed
// cleanly, and only a full walk can judge it.
var errNoFreelist = errors.New("no freelist: not closed cleanly")

// pageReader reads pages of a bbolt file with bounds checks.
type pageReader struct {
	f     *os.File
	size  int64
	meta  boltMeta
	reads int
}

func (r *pageReader) page(id uint64) ([]byte, error) {
	if id >= r.meta.pgid {
		return nil, fmt.Errorf("page %d past the high water mark %d", id, r.meta.pgid)
	}
	ps := int64(r.meta.pageSize)
	off := int64(id) * ps
	if off+ps > r.size {
		return nil, fmt.Errorf("page %d past the end of the file", id)
	}
	buf := make([]byte, ps)
	if _, err := r.f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read page %d: %w", id, err)
	}
	r.reads++
	if got := binary.LittleEndian.Uint64(buf[0:8]); got != id {
		return nil, fmt.Errorf("page %d says it is page %d", id, got)
	}
	// A page with overflow spans several: read them all.
	if over := binary.LittleEndian.Uint32(buf[12:16]); over > 0 {
		end := id + uint64(over) + 1
		if end > r.meta.pgid || int64(end)*ps > r.size {
			return nil, fmt.Errorf("page %d overflows past the end (%d pages)", id, over)
		}
		full := make([]byte, int64(over+1)*ps)
		if _, err := r.f.ReadAt(full, off); err != nil {
			return nil, fmt.Errorf("read page %d: %w", id, err)
		}
		buf = full
	}
	return buf, nil
}

// readMeta decodes and validates the meta page at off (bbolt's rule:
// magic, version and an FNV-64a checksum over the fields before it).
func readMeta(f *os.File, off int64) (boltMeta, error) {
	buf := make([]byte, pageHeaderSize+64)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return boltMeta{}, err
	}
	if binary.LittleEndian.Uint16(buf[8:10]) != flagMeta {
		return boltMeta{}, errors.New("not a meta page")
	}
	m := buf[pageHeaderSize:]
	if binary.LittleEndian.Uint32(m[0:4]) != boltMagic || binary.LittleEndian.Uint32(m[4:8]) != boltVersion {
		return boltMeta{}, errors.New("bad magic or version")
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != binary.LittleEndian.Uint64(m[56:64]) {
		return boltMeta{}, errors.New("meta checksum mismatch")
	}
	return boltMeta{pageSize: binary.LittleEndian.Uint32(m[8:12]), root: binary.LittleEndian.Uint64(m[16:24]),
		freelist: binary.LittleEndian.Uint64(m[32:40]), pgid: binary.LittleEndian.Uint64(m[40:48]),
		txid: binary.LittleEndian.Uint64(m[48:56])}, nil
}

// activeMeta picks the meta page bbolt would use: the valid one with the
// higher transaction id.
func activeMeta(f *os.File) (boltMeta, error) {
	m0, err0 := readMeta(f, 0)
	if err0 != nil {
		return boltMeta{}, fmt.Errorf("meta page 0: %w", err0)
	}
	m1, err1 := readMeta(f, int64(m0.pageSize))
	switch {
	case err1 == nil && m1.txid > m0.txid:
		return m1, nil
	default:
		return m0, nil
	}
}

// quickCheck judges a cleanly closed file by its structure near the top:
// the freelist (every id inside the file, sorted, none reused), the root
// bucket and each top-level bucket's root and first level of children
// (the right page types, element tables inside their pages, child ids
// inside the file and not free). It returns errNoFreelist for a file that
// was not closed cleanly.
func quickCheck(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	meta, err := activeMeta(f)
	if err != nil {
		return 0, err
	}
	if meta.pageSize < 512 || meta.pageSize > 1<<20 {
		return 0, fmt.Errorf("page size %d out of range", meta.pageSize)
	}
	if meta.freelist == noFreelist {
		return 0, errNoFreelist
	}
	r := &pageReader{f: f, size: fi.Size(), meta: meta}
	free, err := r.freelist()
	if err != nil {
		return r.reads, err
	}
	notFree := func(id uint64) error {
		if i := sort.Search(len(free), func(i int) bool { return free[i] >= id }); i < len(free) && free[i] == id {
			return fmt.Errorf("page %d is in use and on the freelist", id)
		}
		return nil
	}
	if err := notFree(meta.root); err != nil {
		return r.reads, err
	}
	root, err := r.page(meta.root)
	if err != nil {
		return r.reads, fmt.Errorf("root bucket: %w", err)
	}
	// The root bucket holds the top-level buckets (data, index, meta): it
	// is small, and a branch root is followed one level down.
	leaves := [][]byte{root}
	if flags(root) == flagBranch {
		kids, err := branchChildren(root, meta.pgid)
		if err != nil {
			return r.reads, fmt.Errorf("root bucket: %w", err)
		}
		leaves = leaves[:0]
		for _, id := range kids {
			if err := notFree(id); err != nil {
				return r.reads, err
			}
			p, err := r.page(id)
			if err != nil {
				return r.reads, fmt.Errorf("root bucket: %w", err)
			}
			leaves = append(leaves, p)
		}
	}
	for _, leaf := range leaves {
		if flags(leaf) != flagLeaf {
			return r.reads, fmt.Errorf("root bucket page %d has type %#x", pageID(leaf), flags(leaf))
		}
		buckets, err := leafBuckets(leaf)
		if err != nil {
			return r.reads, fmt.Errorf("root bucket: %w", err)
		}
		for name, broot := range buckets {
			if broot == 0 {
				continue // an inline bucket lives inside its parent's page
			}
			if err := notFree(broot); err != nil {
				return r.reads, err
			}
			p, err := r.page(broot)
			if err != nil {
				return r.reads, fmt.Errorf("bucket %q: %w", name, err)
			}
			switch flags(p) {
			case flagLeaf:
				if _, err := leafBuckets(p); err != nil {
					return r.reads, fmt.Errorf("bucket %q: %w", name, err)
				}
			case flagBranch:
				kids, err := branchChildren(p, meta.pgid)
				if err != nil {
					return r.reads, fmt.Errorf("bucket %q: %w", name, err)
				}
				for _, id := range kids {
					if err := notFree(id); err != nil {
						return r.reads, err
					}
					c, err := r.page(id)
					if err != nil {
						return r.reads, fmt.Errorf("bucket %q: %w", name, err)
					}
					if t := flags(c); t != flagLeaf && t != flagBranch {
						return r.reads, fmt.Errorf("bucket %q: page %d has type %#x", name, id, t)
					}
					if err := elementsFit(c); err != nil {
						return r.reads, fmt.Errorf("bucket %q: %w", name, err)
					}
				}
			default:
				return r.reads, fmt.Errorf("bucket %q: root page %d has type %#x", name, broot, flags(p))
			}
		}
	}
	return r.reads, nil
}

func flags(p []byte) uint16  { return binary.LittleEndian.Uint16(p[8:10]) }
func count(p []byte) int     { return int(binary.LittleEndian.Uint16(p[10:12])) }
func pageID(p []byte) uint64 { return binary.LittleEndian.Uint64(p[0:8]) }

// freelist reads and checks the freelist page: ids inside the file, past
// the two meta pages, strictly ascending.
func (r *pageReader) freelist() ([]uint64, error) {
	p, err := r.page(r.meta.freelist)
	if err != nil {
		return nil, fmt.Errorf("freelist: %w", err)
	}
	if flags(p) != flagFreelist {
		return nil, fmt.Errorf("freelist page %d has type %#x", r.meta.freelist, flags(p))
	}
	idx, n := 0, count(p)
	if n == 0xFFFF {
		if len(p) < pageHeaderSize+8 {
			return nil, errors.New("freelist: truncated")
		}
		idx, n = 1, int(binary.LittleEndian.Uint64(p[pageHeaderSize:]))
	}
	if n < 0 || pageHeaderSize+(idx+n)*8 > len(p) {
		return nil, fmt.Errorf("freelist: %d ids do not fit its pages", n)
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = binary.LittleEndian.Uint64(p[pageHeaderSize+(idx+i)*8:])
	}
	// bbolt writes the list sorted; read it as bbolt does (sorted) and
	// refuse duplicates and ids outside the file.
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for i, id := range ids {
		if id < 2 || id >= r.meta.pgid {
			return nil, fmt.Errorf("freelist: page %d outside the file", id)
		}
		if i > 0 && ids[i-1] == id {
			return nil, fmt.Errorf("freelist: page %d listed twice", id)
		}
		if id == r.meta.freelist {
			return nil, fmt.Errorf("freelist: lists its own page %d", id)
		}
	}
	return ids, nil
}

// elementsFit checks that a leaf or branch page's element table and every
// key and value it points at lie inside the page.
func elementsFit(p []byte) error {
	n := count(p)
	if pageHeaderSize+n*elementSize > len(p) {
		return fmt.Errorf("page %d: %d elements do not fit", pageID(p), n)
	}
	for i := 0; i < n; i++ {
		e := pageHeaderSize + i*elementSize
		var end int
		if flags(p) == flagBranch {
			pos, ksize := int(binary.LittleEndian.Uint32(p[e:])), int(binary.LittleEndian.Uint32(p[e+4:]))
			end = e + pos + ksize
		} else {
			pos, ksize, vsize := int(binary.LittleEndian.Uint32(p[e+4:])), int(binary.LittleEndian.Uint32(p[e+8:])), int(binary.LittleEndian.Uint32(p[e+12:]))
			end = e + pos + ksize + vsize
		}
		if end > len(p) || end < e {
			return fmt.Errorf("page %d: element %d points outside the page", pageID(p), i)
		}
	}
	return nil
}

// branchChildren returns the child page ids of a branch page.
func branchChildren(p []byte, pgid uint64) ([]uint64, error) {
	if err := elementsFit(p); err != nil {
		return nil, err
	}
	n := count(p)
	if n == 0 {
		return nil, fmt.Errorf("branch page %d is empty", pageID(p))
	}
	out := make([]uint64, n)
	for i := range out {
		id := binary.LittleEndian.Uint64(p[pageHeaderSize+i*elementSize+8:])
		if id < 2 || id >= pgid {
			return nil, fmt.Errorf("branch page %d points at page %d outside the file", pageID(p), id)
		}
		out[i] = id
	}
	return out, nil
}

// leafBuckets returns the nested buckets of a leaf page: name → root page
// (0 for an inline bucket).
func leafBuckets(p []byte) (map[string]uint64, error) {
	if err := elementsFit(p); err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for i := 0; i < count(p); i++ {
		e := pageHeaderSize + i*elementSize
		if binary.LittleEndian.Uint32(p[e:])&leafFlagBucket == 0 {
			continue
		}
		pos, ksize, vsize := int(binary.LittleEndian.Uint32(p[e+4:])), int(binary.LittleEndian.Uint32(p[e+8:])), int(binary.LittleEndian.Uint32(p[e+12:]))
		if vsize < bucketHeaderSize {
			return nil, fmt.Errorf("page %d: bucket %d has a short header", pageID(p), i)
		}
		k := p[e+pos : e+pos+ksize]
		out[string(k)] = binary.LittleEndian.Uint64(p[e+pos+ksize:])
	}
	return out, nil
}
