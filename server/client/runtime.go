package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/bulkhead-sec/bulkhead/runtime/drift"
	"github.com/bulkhead-sec/bulkhead/runtime/profile"
)

// ProfileSummary is a stored profile as the server lists it.
type ProfileSummary struct {
	Image   string   `json:"image"`
	State   string   `json:"state"`
	Names   []string `json:"names,omitempty"`
	Entries int      `json:"entries"`
}

func imagePath(kind, id string) (string, error) {
	id, err := drift.NormalizeID(id)
	if err != nil {
		return "", err
	}
	return "/api/v1/runtime/" + kind + "/" + id, nil
}

// raw sends a request and returns the answer's body (at most limit bytes).
func (c *Client) raw(ctx context.Context, method, path, contentType, accept string, body []byte, limit int64) ([]byte, error) {
	resp, err := c.send(ctx, method, path, nil, contentType, accept, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("bulkhead server %s: %s %s: %w", c.base.Host, method, path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("bulkhead server: the answer to %s %s is larger than %d bytes", method, path, limit)
	}
	return b, nil
}

// Profile reads an image's behaviour profile (an *Error of status 404 when
// the server has none).
func (c *Client) Profile(ctx context.Context, imageID string) (*profile.Profile, error) {
	p, err := imagePath("profiles", imageID)
	if err != nil {
		return nil, err
	}
	b, err := c.raw(ctx, http.MethodGet, p, "", "application/yaml", nil, profile.MaxFileBytes)
	if err != nil {
		return nil, err
	}
	return profile.Decode(bytes.NewReader(b), "from "+c.base.Host)
}

// PutProfile stores a profile (the server checks every entry).
func (c *Client) PutProfile(ctx context.Context, pr *profile.Profile) error {
	p, err := imagePath("profiles", pr.Image)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := pr.Encode(&buf); err != nil {
		return err
	}
	_, err = c.raw(ctx, http.MethodPut, p, "application/yaml", "application/json", buf.Bytes(), 1<<20)
	return err
}

// Profiles lists stored profiles (all pages).
func (c *Client) Profiles(ctx context.Context) ([]ProfileSummary, error) {
	var all []ProfileSummary
	after := ""
	for {
		var page struct {
			Profiles []ProfileSummary `json:"profiles"`
			Next     string           `json:"next"`
		}
		q := url.Values{"limit": {strconv.Itoa(1000)}}
		if after != "" {
			q.Set("after", after)
		}
		if err := c.Get(ctx, "/api/v1/runtime/profiles", q, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Profiles...)
		if page.Next == "" {
			return all, nil
		}
		after = page.Next
	}
}

// FileList reads an image's file list (an *Error of status 404 when the
// server has none).
func (c *Client) FileList(ctx context.Context, imageID string) (*drift.Index, error) {
	p, err := imagePath("filelists", imageID)
	if err != nil {
		return nil, err
	}
	b, err := c.raw(ctx, http.MethodGet, p, "", "application/gzip", nil, drift.MaxIndexBytes)
	if err != nil {
		return nil, err
	}
	ix, err := drift.DecodeIndex(bytes.NewReader(b), drift.MaxIndexBytes)
	if err != nil {
		return nil, fmt.Errorf("bulkhead server %s: file list of %s: %w", c.base.Host, imageID, err)
	}
	if want, _ := drift.NormalizeID(imageID); ix.Image != want {
		return nil, fmt.Errorf("bulkhead server %s: the file list asked for %s is for %s", c.base.Host, want, ix.Image)
	}
	return ix, nil
}

// PutFileList stores an image's file list.
func (c *Client) PutFileList(ctx context.Context, ix *drift.Index) error {
	p, err := imagePath("filelists", ix.Image)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := drift.EncodeIndex(&buf, ix); err != nil {
		return err
	}
	_, err = c.raw(ctx, http.MethodPut, p, "application/gzip", "application/json", buf.Bytes(), 1<<20)
	return err
}
