package store

import (
	"context"
	"time"
)

// RuntimeProfile is one image's learned behaviour profile as the server
// keeps it: the document (YAML, as runtime/profile encodes it) and the
// fields a listing shows.
type RuntimeProfile struct {
	// Image is the image id ("sha256:...").
	Image string `json:"image"`
	// State is "learning" or "enforcing".
	State string `json:"state"`
	// Names are the image references and containers the profile names.
	Names []string `json:"names,omitempty"`
	// Entries counts the profile's entries (all lists).
	Entries   int       `json:"entries"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Document is the profile as YAML (not in listings).
	Document []byte `json:"-"`
}

// FileList is one image's file list for drift detection: the gzip JSON
// runtime/drift writes, kept as sent.
type FileList struct {
	Image     string    `json:"image"`
	Files     int       `json:"files"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Gzip is the list, gzip-compressed JSON (not in listings).
	Gzip []byte `json:"-"`
}

// RuntimeStore keeps runtime profiles and image file lists by image id.
// The SQL store implements it; the server serves the runtime routes when
// its Store does.
type RuntimeStore interface {
	// PutProfile stores (replaces) the profile of p.Image.
	PutProfile(ctx context.Context, p *RuntimeProfile) error
	// Profile returns one profile with its document (ErrNotFound).
	Profile(ctx context.Context, image string) (*RuntimeProfile, error)
	// Profiles lists profiles in image id order after the id after ("" :
	// from the start), without their documents.
	Profiles(ctx context.Context, after string, limit int) ([]RuntimeProfile, error)
	// PutFileList stores (replaces) the file list of f.Image.
	PutFileList(ctx context.Context, f *FileList) error
	// FileList returns one file list (ErrNotFound).
	FileList(ctx context.Context, image string) (*FileList, error)
}
