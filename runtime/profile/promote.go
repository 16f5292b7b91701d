package profile

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// Promote turns a profile into Falco rules: one allow-list rule per kind,
// scoped to the profile's image (container.image.id), that fires on
// anything the profile does not list. The rules run without the learner
// (`bulkhead runtime --rules promoted.yaml`) and take exceptions like any
// rule. Patterns become Falco operators: "/dir/**" startswith, globs glob
// (where, unlike in the profile, "*" also matches "/"), CIDRs and "*" in
// outbound entries network and port tests. DNS entries have no Falco
// field to test and are not promoted (the output says so).
func Promote(p *Profile) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	short := strings.TrimPrefix(p.Image, "sha256:")[:12]
	scope := fmt.Sprintf("container.image.id = %q", p.Image)
	type rule struct {
		Rule      string   `yaml:"rule"`
		Desc      string   `yaml:"desc"`
		Condition string   `yaml:"condition"`
		Output    string   `yaml:"output"`
		Priority  string   `yaml:"priority"`
		Tags      []string `yaml:"tags"`
	}
	var out []rule
	add := func(kind, name, cond, output string, alts []string) {
		if len(alts) > 0 {
			cond += " and not (" + strings.Join(alts, " or ") + ")"
		}
		out = append(out, rule{
			Rule:      fmt.Sprintf("%s (image %s allow-list)", name, short),
			Desc:      fmt.Sprintf("%s: not in the %s allow-list promoted from the behaviour profile of image %s", name, listName(kind), p.Image),
			Condition: cond,
			Output:    output,
			Priority:  "WARNING",
			Tags:      []string{"bulkhead", "profile", kind},
		})
	}
	paths := func(field string, entries []string) ([]string, error) {
		var alts, exact []string
		for _, e := range entries {
			if strings.ContainsAny(e, "\"\\") {
				return nil, fmt.Errorf("entry %q: a promoted rule cannot hold quotes or backslashes; edit the profile", e)
			}
			switch {
			case strings.HasSuffix(e, "/**"):
				alts = append(alts, fmt.Sprintf("%s startswith %q", field, strings.TrimSuffix(e, "**")))
			case strings.ContainsAny(e, "*?["):
				alts = append(alts, fmt.Sprintf("%s glob %q", field, e))
			default:
				exact = append(exact, fmt.Sprintf("%q", e))
			}
		}
		if len(exact) > 0 {
			alts = append([]string{field + " in (" + strings.Join(exact, ", ") + ")"}, alts...)
		}
		return alts, nil
	}

	alts, err := paths("proc.exepath", p.Executables)
	if err != nil {
		return nil, err
	}
	add(event.ProfileExec, "Unexpected executable",
		"evt.type in (execve, execveat) and evt.dir = < and evt.rawres = 0 and "+scope,
		"Unexpected executable in container %container.name (image %container.image.id): %proc.exepath (cmdline=%proc.cmdline parent=%proc.pname)", alts)

	alts = nil
	for _, e := range p.Outbound {
		addr, port, proto, _ := splitOutbound(e)
		parts := []string{"fd.l4proto = " + proto}
		switch {
		case addr == "*":
		case strings.Contains(addr, "/"):
			parts = append(parts, fmt.Sprintf("fd.snet = %q", addr))
		default:
			parts = append(parts, fmt.Sprintf("fd.sip = %q", addr))
		}
		if port != "*" {
			parts = append(parts, "fd.sport = "+port)
		}
		alts = append(alts, "("+strings.Join(parts, " and ")+")")
	}
	add(event.ProfileOutbound, "Unexpected outbound connection",
		"((evt.type = connect and evt.dir = < and (evt.rawres = 0 or evt.res = EINPROGRESS)) or (evt.type = sendto and evt.dir = < and fd.name_changed = true and evt.rawres >= 0)) and "+
			"fd.typechar in (4, 6) and fd.is_server = false and fd.l4proto in (tcp, udp) and "+scope,
		"Unexpected outbound connection from %container.name (image %container.image.id) to %fd.sip:%fd.sport/%fd.l4proto (command=%proc.cmdline)", alts)

	alts = nil
	for _, e := range p.Listening {
		port, proto, _ := portProto(e)
		if port == "*" {
			alts = append(alts, "fd.l4proto = "+proto)
		} else {
			alts = append(alts, fmt.Sprintf("(fd.sport = %s and fd.l4proto = %s)", port, proto))
		}
	}
	add(event.ProfileListen, "Unexpected listening port",
		"((evt.type = listen and fd.l4proto = tcp) or (evt.type = bind and fd.l4proto = udp)) and evt.dir = < and evt.rawres = 0 and "+
			"fd.typechar in (4, 6) and fd.sport != 0 and "+scope,
		"Unexpected listening port in container %container.name (image %container.image.id): %fd.sport/%fd.l4proto (command=%proc.cmdline)", alts)

	alts, err = paths("fd.name", p.Writes)
	if err != nil {
		return nil, err
	}
	var temp []string
	for _, t := range DefaultTempPaths {
		temp = append(temp, fmt.Sprintf("fd.name startswith %q", t+"/"))
	}
	add(event.ProfileWrite, "Unexpected file write",
		"evt.type in (open, openat, openat2, creat) and evt.dir = < and evt.rawres >= 0 and fd.typechar = f and "+
			"(evt.type = creat or evt.arg.flags contains O_WRONLY or evt.arg.flags contains O_RDWR or evt.arg.flags contains O_CREAT) and "+
			"not ("+strings.Join(temp, " or ")+") and "+scope,
		"Unexpected file write in container %container.name (image %container.image.id): %fd.name (command=%proc.cmdline)", alts)

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Allow-list rules promoted by `bulkhead runtime profile promote` on %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&buf, "# from the behaviour profile of image %s (%s, learned %s to %s).\n", p.Image, p.State,
		p.LearningStarted.Format(time.RFC3339), p.LearningEnds.Format(time.RFC3339))
	if len(p.DNS) > 0 {
		fmt.Fprintf(&buf, "# Not promoted: %d DNS names (no Falco field holds the name looked up).\n", len(p.DNS))
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		return nil, err
	}
	buf.Write(b)
	return buf.Bytes(), nil
}
