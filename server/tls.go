package server

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// CertReloader serves a certificate and key read from files, re-read when
// either file changes (a renewed certificate is used without a restart).
type CertReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime [2]time.Time
	size    [2]int64
}

// NewCertReloader loads the pair once (so a bad pair fails at start).
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	c := &CertReloader{certFile: certFile, keyFile: keyFile}
	if _, err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// load re-reads the pair when a file's size or modification time changed.
// When the new pair does not load (written half-way), the old one stays.
func (c *CertReloader) load() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var mod [2]time.Time
	var size [2]int64
	for i, p := range []string{c.certFile, c.keyFile} {
		st, err := os.Stat(p)
		if err != nil {
			if c.cert != nil {
				return c.cert, nil
			}
			return nil, fmt.Errorf("TLS: %w", err)
		}
		mod[i], size[i] = st.ModTime(), st.Size()
	}
	if c.cert != nil && mod == c.modTime && size == c.size {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil
		}
		return nil, fmt.Errorf("TLS: load %s and %s: %w (give a PEM certificate and its key)", c.certFile, c.keyFile, err)
	}
	c.cert, c.modTime, c.size = &cert, mod, size
	return c.cert, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.load()
}

// TLSConfig is a server configuration serving the reloaded pair.
func (c *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
}
