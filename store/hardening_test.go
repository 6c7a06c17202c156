package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/store"
	bolt "go.etcd.io/bbolt"
)

// wantBroken asserts Open refuses path with a *BrokenError naming the file
// and what to do, and leaves the file as it was.
func wantBroken(t *testing.T, path, what string) {
	t.Helper()
	before, _ := os.ReadFile(path)
	s, err := store.Open(path, store.Options{})
	if err == nil {
		s.Close()
		t.Fatalf("%s: Open accepted the file", what)
	}
	var be *store.BrokenError
	if !errors.As(err, &be) {
		t.Fatalf("%s: Open error %v (%T), want *store.BrokenError", what, err, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) || !strings.Contains(msg, "restore it from a backup") || !strings.Contains(msg, "--reset") || strings.Contains(msg, "\n") {
		t.Fatalf("%s: message %q must be one line naming the file, the backup and --reset", what, msg)
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(before) {
		t.Fatalf("%s: the refused file was changed", what)
	}
}

// Issue 14 item 7: a 0-byte agentos.db used to start a new, empty node.
func TestHardening_EmptyDatabaseRefused(t *testing.T) {
	path := testkit.WriteFile(t, filepath.Join(t.TempDir(), "agentos.db"), "", 0o600)
	wantBroken(t, path, "empty file")
	if !strings.Contains(fmt.Sprint(openErr(path)), "empty (0 bytes)") {
		t.Fatalf("the message should say the file is empty: %v", openErr(path))
	}
}

func openErr(path string) error {
	s, err := store.Open(path, store.Options{})
	if err == nil {
		s.Close()
	}
	return err
}

func TestHardening_GarbageDatabaseRefused(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(7))
	for name, content := range map[string][]byte{
		"text":       []byte("this is not a database\n"),
		"one page":   randomBytes(rng, 4096),
		"many pages": randomBytes(rng, 64*4096),
	} {
		wantBroken(t, testkit.WriteFile(t, filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".db"), content, 0o600), name)
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}

// TestHardening_CorruptPageRefused damages the data pages (never the meta
// pages, so bbolt's own meta checks pass) of a real database in several
// ways; each used to crash the process with a bbolt panic or SIGSEGV.
func TestHardening_CorruptPageRefused(t *testing.T) {
	dir := t.TempDir()
	pristine := filepath.Join(dir, "pristine.db")
	s := mustOpen(t, pristine, store.Options{NoSync: true})
	ctx := context.Background()
	for i := 0; i < 400; i++ {
		if err := s.SetMeta(ctx, fmt.Sprintf("k%04d", i), strings.Repeat("v", 300)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	raw, err := os.ReadFile(pristine)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	if len(raw) < 16*page {
		t.Fatalf("database only %d bytes; want many pages", len(raw))
	}
	rng := rand.New(rand.NewSource(42))
	for name, damage := range map[string]func(b []byte){
		"zeroed pages": func(b []byte) { clear(b[2*page:]) },
		"0xff pages": func(b []byte) {
			for i := 2 * page; i < len(b); i++ {
				b[i] = 0xff
			}
		},
		"random headers": func(b []byte) {
			for p := 2; p*page < len(b); p++ {
				rng.Read(b[p*page : p*page+16])
			}
		},
		"random pages": func(b []byte) { rng.Read(b[2*page:]) },
	} {
		b := append([]byte(nil), raw...)
		damage(b)
		wantBroken(t, testkit.WriteFile(t, filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".db"), b, 0o600), name)
	}
	// The pristine file still opens: the check refuses damage, not data.
	s, err = store.Open(pristine, store.Options{})
	if err != nil {
		t.Fatalf("a healthy database was refused: %v", err)
	}
	if v, _ := s.GetMeta(ctx, "k0399"); v == "" {
		t.Fatal("data lost in a healthy database")
	}
	s.Close()
}

// The lock refusal is still its own error, so a second node says the data
// dir is in use rather than broken.
func TestHardening_LockedDatabaseIsNotBroken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentos.db")
	s := mustOpen(t, path, store.Options{})
	defer s.Close()
	_, err := store.Open(path, store.Options{Timeout: 200 * 1e6})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

// BenchmarkStore_OpenCheck measures Open on a database of about 64 MiB:
// "checked" after a clean stop (the quick check and the stored freelist),
// "after-crash" on a file without the clean mark (the read-only walk of
// check plus the freelist rebuild of the read-write open, both reading
// every page).
func BenchmarkStore_OpenCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), "agentos.db")
	s := mustOpen(b, path, store.Options{NoSync: true})
	ctx := context.Background()
	val := strings.Repeat("v", 1000)
	for i := 0; i < 64; i++ {
		err := s.DB().Update(func(tx *bolt.Tx) error {
			for j := 0; j < 1000; j++ {
				if err := store.Meta(tx).Put([]byte(fmt.Sprintf("bench/%03d/%04d", i, j)), []byte(val)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	_ = ctx
	raw, _ := os.ReadFile(path) // before Close: what a crash leaves
	s.Close()
	fi, _ := os.Stat(path)
	b.Run("after-crash", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			// A copy each time: a clean close marks the file.
			b.StopTimer()
			testkit.WriteFile(b, path+".crash", raw, 0o600)
			b.StartTimer()
			s := mustOpen(b, path+".crash", store.Options{})
			if !s.Opened().Full {
				b.Fatal("not a full walk")
			}
			s.Close()
		}
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	})
	b.Run("checked", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s := mustOpen(b, path, store.Options{})
			s.Close()
		}
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	})
	// What a bare bbolt open with the same options costs (its freelist
	// rebuild walks every page too): the check's share is the difference.
	b.Run("bbolt-only", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType, PreLoadFreelist: true})
			if err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	})
}

func TestHardening_StorageFullErrorsAreRecognised(t *testing.T) {
	for _, err := range []error{
		syscall.ENOSPC, syscall.EFBIG, syscall.EDQUOT,
		fmt.Errorf("write: %w", syscall.ENOSPC),
		fmt.Errorf("file resize error: %s", syscall.EFBIG), // bbolt's own wrapping loses the chain
	} {
		if !store.StorageFull(err) {
			t.Errorf("%v not recognised as storage full", err)
		}
	}
	for _, err := range []error{errors.New("boom"), syscall.EIO, context.Canceled} {
		if store.StorageFull(err) {
			t.Errorf("%v taken for storage full", err)
		}
	}
}
