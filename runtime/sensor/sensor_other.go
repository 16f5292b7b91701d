//go:build !(linux && amd64)

package sensor

import (
	"context"
	"errors"
	"io"
	"runtime"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// Options configure a Sensor.
type Options struct {
	Sockets    []string
	CRISockets []string
	Warnings   io.Writer
	ProcDir    string
	Types      []string
	Env        bool
}

// Stats are the sensor's counters.
type Stats struct {
	Events, RingDrops, StashDrops, Emitted, Malformed uint64
}

// Sensor is unavailable on this platform.
type Sensor struct{}

var errUnsupported = errors.New("the eBPF sensor is built for linux/amd64 only, not " + runtime.GOOS + "/" + runtime.GOARCH)

// Supported reports why the sensor cannot run here.
func Supported() error { return errUnsupported }

// Open fails: the sensor is built for linux/amd64 only.
func Open(Options) (*Sensor, error) { return nil, errUnsupported }

func (s *Sensor) Run(context.Context, func(*event.Event)) error { return errUnsupported }
func (s *Sensor) Stats() Stats                                  { return Stats{} }
func (s *Sensor) Close() error                                  { return nil }
