package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

func TestRuntimeProfilesAndFileLists(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if v, err := s.SchemaVersion(ctx); err != nil || v < 3 {
			t.Fatalf("schema version %d, %v; want the runtime migration applied", v, err)
		}
		id := func(i int) string { return fmt.Sprintf("sha256:%064x", i) }
		if _, err := s.Profile(ctx, id(1)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing profile: %v, want ErrNotFound", err)
		}
		for i := 3; i >= 1; i-- {
			p := &store.RuntimeProfile{Image: id(i), State: "learning", Names: []string{fmt.Sprintf("app-%d", i)}, Entries: i, Document: []byte(fmt.Sprintf("image: %s\n", id(i)))}
			if err := s.PutProfile(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		// Replace one.
		if err := s.PutProfile(ctx, &store.RuntimeProfile{Image: id(2), State: "enforcing", Entries: 9, Document: []byte("v2")}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Profile(ctx, id(2))
		if err != nil || got.State != "enforcing" || got.Entries != 9 || string(got.Document) != "v2" || len(got.Names) != 0 {
			t.Fatalf("Profile after replace = %+v, %v", got, err)
		}
		list, err := s.Profiles(ctx, "", 2)
		if err != nil || len(list) != 2 || list[0].Image != id(1) || list[1].Image != id(2) || list[0].Document != nil || list[0].Names[0] != "app-1" {
			t.Fatalf("Profiles page 1 = %+v, %v", list, err)
		}
		if list, err = s.Profiles(ctx, list[1].Image, 2); err != nil || len(list) != 1 || list[0].Image != id(3) {
			t.Fatalf("Profiles page 2 = %+v, %v", list, err)
		}
		for _, bad := range []*store.RuntimeProfile{
			{Image: "sha256:abc", State: "learning", Document: []byte("x")},
			{Image: id(4), State: "sleeping", Document: []byte("x")},
			{Image: id(4), State: "learning"},
		} {
			if err := s.PutProfile(ctx, bad); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("PutProfile(%+v) = %v, want ErrInvalid", bad, err)
			}
		}

		body := bytes.Repeat([]byte{0x1f, 0x8b, 1, 2}, 100)
		if err := s.PutFileList(ctx, &store.FileList{Image: id(1), Files: 12, Gzip: body}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutFileList(ctx, &store.FileList{Image: id(1), Files: 13, Gzip: body[:40]}); err != nil {
			t.Fatal(err)
		}
		fl, err := s.FileList(ctx, id(1))
		if err != nil || fl.Files != 13 || !bytes.Equal(fl.Gzip, body[:40]) {
			t.Fatalf("FileList = %+v, %v", fl, err)
		}
		if _, err := s.FileList(ctx, id(2)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing file list: %v", err)
		}
	})
}

func TestRuntimeBlobLimit(t *testing.T) {
	s := openT(t, backends[0].dsn(t), Options{MaxBlob: 100})
	ctx := context.Background()
	id := fmt.Sprintf("sha256:%064x", 7)
	if err := s.PutFileList(ctx, &store.FileList{Image: id, Gzip: make([]byte, 101)}); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("oversized file list: %v, want ErrTooLarge", err)
	}
	if err := s.PutProfile(ctx, &store.RuntimeProfile{Image: id, State: "learning", Document: make([]byte, 101)}); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("oversized profile: %v, want ErrTooLarge", err)
	}
}
