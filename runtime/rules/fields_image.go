package rules

import (
	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// Fields of drift from the image and of learned behaviour profiles
// (runtime/drift, runtime/profile fill Event.Drift and Event.Profile).
// They are bulkhead's own: Falco has no equivalent.
func defineImageFields() {
	def("container.image.id", tString, argNone, "image id (config digest, sha256:...)", str(func(c *evalCtx) (string, bool) {
		if c.ev.Container == nil {
			return "", false
		}
		return nonEmpty(c.ev.Container.ImageID)
	}))
	def("container.image.drift", tBool, argNone, "the executed file is not the image's (written at runtime)", boolean(func(c *evalCtx) (bool, bool) {
		return c.ev.Drift != nil, c.ev.Container != nil
	}))
	drift := func(f func(d *event.Drift) string) func(string, int) getter {
		return str(func(c *evalCtx) (string, bool) {
			if c.ev.Drift == nil {
				return "", false
			}
			return nonEmpty(f(c.ev.Drift))
		})
	}
	def("drift.path", tString, argNone, "path of the drifted executable", drift(func(d *event.Drift) string { return d.Path }))
	def("drift.sha256", tString, argNone, "SHA-256 of the drifted executable", drift(func(d *event.Drift) string { return d.SHA256 }))
	def("drift.image_sha256", tString, argNone, "SHA-256 of the image's file at that path (reason modified)", drift(func(d *event.Drift) string { return d.ImageSHA256 }))
	def("drift.reason", tString, argNone, "not_in_image, modified or upper_layer", drift(func(d *event.Drift) string { return d.Reason }))
	writer := func(f func(w *event.Writer) string) func(string, int) getter {
		return drift(func(d *event.Drift) string {
			if d.Writer == nil {
				return ""
			}
			return f(d.Writer)
		})
	}
	def("drift.writer.name", tString, argNone, "name of the process that wrote the file", writer(func(w *event.Writer) string { return w.Name }))
	def("drift.writer.exepath", tString, argNone, "executable of the process that wrote the file", writer(func(w *event.Writer) string { return w.ExePath }))
	def("drift.writer.cmdline", tString, argNone, "command line of the process that wrote the file", writer(func(w *event.Writer) string { return w.Cmdline }))
	def("drift.writer.pid", tNum, argNone, "pid of the process that wrote the file", num(func(c *evalCtx) (int64, bool) {
		if c.ev.Drift == nil || c.ev.Drift.Writer == nil {
			return 0, false
		}
		return c.ev.Drift.Writer.PID, true
	}))

	prof := func(f func(p *event.ProfileResult) string) func(string, int) getter {
		return str(func(c *evalCtx) (string, bool) {
			if c.ev.Profile == nil {
				return "", false
			}
			return nonEmpty(f(c.ev.Profile))
		})
	}
	def("profile.image", tString, argNone, "the behaviour profile's image id", prof(func(p *event.ProfileResult) string { return p.Image }))
	def("profile.state", tString, argNone, "learning or enforcing", prof(func(p *event.ProfileResult) string { return p.State }))
	def("profile.kind", tString, argNone, "exec, outbound, dns, listen or write", prof(func(p *event.ProfileResult) string { return p.Kind }))
	def("profile.item", tString, argNone, "the behaviour: an executable, ip:port/proto, a name, port/proto or a path", prof(func(p *event.ProfileResult) string { return p.Item }))
	def("profile.unexpected", tBool, argNone, "the profile is enforcing and has not learned this behaviour", boolean(func(c *evalCtx) (bool, bool) {
		return c.ev.Profile != nil && c.ev.Profile.Unexpected, c.ev.Profile != nil
	}))
}
