package event

// Drift reasons (drift.reason).
const (
	// DriftNotInImage: the executed file is not in any of the image's layers.
	DriftNotInImage = "not_in_image"
	// DriftModified: the image has a file at that path, with other content.
	DriftModified = "modified"
	// DriftUpperLayer: no file list for the image yet, but the file is in
	// the container's writable overlay layer with no image copy to compare.
	DriftUpperLayer = "upper_layer"
)

// Drift describes an executed file that did not come from the container's
// image (container.image.drift and the drift.* fields).
type Drift struct {
	// Path is the executed file, in the container's root.
	Path string `json:"path"`
	// SHA256 is the hex digest of its content ("" when it could not be read).
	SHA256 string `json:"sha256,omitempty"`
	// ImageSHA256 is the digest the image has at Path (DriftModified).
	ImageSHA256 string `json:"image_sha256,omitempty"`
	Reason      string `json:"reason"`
	// Writer is the process seen writing the file, nil if none was seen.
	Writer *Writer `json:"writer,omitempty"`
}

// Writer is the process that wrote a file.
type Writer struct {
	PID     int64  `json:"pid"`
	Name    string `json:"name"`
	ExePath string `json:"exepath,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
}

// Profile kinds (profile.kind): what a learned behaviour profile records.
const (
	ProfileExec     = "exec"
	ProfileOutbound = "outbound"
	ProfileDNS      = "dns"
	ProfileListen   = "listen"
	ProfileWrite    = "write"
)

// ProfileResult is the behaviour profile's view of one event.
type ProfileResult struct {
	// Image is the profile's key, the image id ("sha256:...").
	Image string `json:"image"`
	// State is "learning" or "enforcing".
	State string `json:"state"`
	// Kind is the behaviour the event shows (ProfileExec ...) and Item
	// its value: "/usr/bin/curl", "203.0.113.5:4444/tcp", "8080/tcp".
	Kind string `json:"kind"`
	Item string `json:"item"`
	// Unexpected is true when the profile is enforcing and does not
	// contain Item.
	Unexpected bool `json:"unexpected,omitempty"`
}

// IsRuntimeInit reports whether the process is the container runtime
// setting the container up (runc renames itself "runc:[0:PARENT]",
// "runc:[1:CHILD]", "runc:[2:INIT]"; its executable, outside the
// container's root, resolves to "/"). Such a process is in the
// container's cgroup but still sees the host's paths: what it does is not
// the container's behaviour.
func (p *Process) IsRuntimeInit() bool {
	return p.ExePath == "/" || (len(p.Name) > 6 && p.Name[:6] == "runc:[")
}
