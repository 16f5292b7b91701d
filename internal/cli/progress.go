package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/bulkhead-sec/bulkhead/walk"
)

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress draws one status line on a terminal; it prints nothing when
// stderr is not a terminal or --quiet is set.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	on      bool
	pulled  int64
	done    int
	total   int
	started time.Time
	last    time.Time
}

func newProgress(w io.Writer, quiet bool) *progress {
	return &progress{w: w, on: !quiet && isTerminal(w), started: time.Now()}
}

func (p *progress) status(s string) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K%s", s)
}

func (p *progress) clear() { p.status("") }

// bytes counts registry downloads.
func (p *progress) bytes(n int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	p.pulled += n
	draw := time.Since(p.last) > 100*time.Millisecond
	if draw {
		p.last = time.Now()
	}
	p.mu.Unlock()
	if draw {
		p.redraw()
	}
}

func (p *progress) redraw() {
	p.mu.Lock()
	s := fmt.Sprintf("layers %d/%d", p.done, p.total)
	if p.pulled > 0 {
		s += fmt.Sprintf(", pulled %.1f MB", float64(p.pulled)/1e6)
	}
	s += fmt.Sprintf(" (%s)", time.Since(p.started).Round(100*time.Millisecond))
	p.mu.Unlock()
	p.status(s)
}

func (p *progress) layer(total int) func(walk.Progress) {
	p.total = total
	return func(ev walk.Progress) {
		if !p.on {
			return
		}
		if ev.Done {
			p.mu.Lock()
			p.done++
			p.mu.Unlock()
		}
		p.redraw()
	}
}
