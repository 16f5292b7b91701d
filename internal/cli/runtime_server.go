package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/bulkhead-sec/bulkhead/runtime/drift"
	"github.com/bulkhead-sec/bulkhead/runtime/profile"
	srvclient "github.com/bulkhead-sec/bulkhead/server/client"
)

// runtimeServerTimeout bounds one request of the sensor to bulkhead
// server (the event loop waits for it).
const runtimeServerTimeout = 30 * time.Second

func addRuntimeServer(fl *pflag.FlagSet, f *serverClientFlags) { f.add(fl) }

// runtimeClient is the client of --server, nil without one.
func (f *serverClientFlags) runtimeClient() (*srvclient.Client, error) {
	if f.url == "" {
		return nil, nil
	}
	return srvclient.New(f.url, srvclient.Options{Token: f.tokenValue(), Timeout: runtimeServerTimeout})
}

// fallBack reports whether a server error should fall back to the local
// copy: the server could not be reached or failed, not that it refused.
func fallBack(err error) bool {
	var e *srvclient.Error
	if !errors.As(err, &e) {
		return true // network, timeout
	}
	return e.Status >= 500
}

// serverProfiles keeps profiles in bulkhead server, with a copy in a local
// directory ("" : none) read when the server cannot be reached or has no
// profile of the image.
type serverProfiles struct {
	c      *srvclient.Client
	url    string
	local  string
	stderr io.Writer
}

func (s *serverProfiles) Load(id string) (*profile.Profile, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runtimeServerTimeout)
	defer cancel()
	p, err := s.c.Profile(ctx, id)
	switch {
	case err == nil:
		return p, nil
	case srvclient.IsStatus(err, http.StatusNotFound):
	case fallBack(err):
		fmt.Fprintf(s.stderr, "bulkhead: %v; using the local copy of image %s's profile\n", err, id)
	default:
		return nil, err
	}
	if s.local == "" {
		return nil, fmt.Errorf("profile of image %s: %w", id, fs.ErrNotExist)
	}
	return profile.DirStore{Dir: s.local}.Load(id)
}

func (s *serverProfiles) Save(p *profile.Profile) error {
	if s.local != "" {
		if err := (profile.DirStore{Dir: s.local}).Save(p); err != nil {
			fmt.Fprintf(s.stderr, "bulkhead: %v\n", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), runtimeServerTimeout)
	defer cancel()
	if err := s.c.PutProfile(ctx, p); err != nil {
		return fmt.Errorf("save the profile of image %s: %w", p.Image, err)
	}
	return nil
}

func (s *serverProfiles) Where(id string) string {
	return s.url + " (/api/v1/runtime/profiles/" + id + ")"
}

// serverIndexes keeps image file lists in bulkhead server, with a copy in
// a local directory.
type serverIndexes struct {
	c      *srvclient.Client
	url    string
	local  *drift.Store
	stderr io.Writer
}

func (s *serverIndexes) Load(id string) (*drift.Index, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runtimeServerTimeout)
	defer cancel()
	ix, err := s.c.FileList(ctx, id)
	switch {
	case err == nil:
		return ix, nil
	case srvclient.IsStatus(err, http.StatusNotFound):
	case fallBack(err):
		fmt.Fprintf(s.stderr, "bulkhead: %v; using the local copy of image %s's file list\n", err, id)
	default:
		return nil, err
	}
	return s.local.Load(id)
}

func (s *serverIndexes) Save(ix *drift.Index) (string, error) {
	if _, err := s.local.Save(ix); err != nil {
		fmt.Fprintf(s.stderr, "bulkhead: %v\n", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runtimeServerTimeout)
	defer cancel()
	if err := s.c.PutFileList(ctx, ix); err != nil {
		return "", fmt.Errorf("save the file list of image %s: %w", ix.Image, err)
	}
	return s.url + " (/api/v1/runtime/filelists/" + ix.Image + ")", nil
}

func (s *serverIndexes) Where() string { return s.url }

// indexStore is --server's file lists, or --image-index's without it.
func (f *serverClientFlags) indexStore(dir string, stderr io.Writer) (drift.IndexStore, error) {
	c, err := f.runtimeClient()
	if err != nil || c == nil {
		return &drift.Store{Dir: dir}, err
	}
	return &serverIndexes{c: c, url: f.url, local: &drift.Store{Dir: dir}, stderr: stderr}, nil
}

// profileStore is --server's profiles, or --profiles' directory without it.
func (f *serverClientFlags) profileStore(dir string, stderr io.Writer) (profile.Store, error) {
	c, err := f.runtimeClient()
	if err != nil || c == nil {
		return profile.DirStore{Dir: dir}, err
	}
	return &serverProfiles{c: c, url: f.url, local: dir, stderr: stderr}, nil
}
