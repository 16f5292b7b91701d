package dockerfile

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/config"
	"github.com/bulkhead-sec/bulkhead/finding"
)

// The dockerfile kind of config.Scan, with --digest-severity; --policy
// checks of target dockerfile run beside the built-in ones.
func init() {
	config.Register(config.Kind{Name: "dockerfile", Detect: IsDockerfileName, Setup: setupKind})
}

// IsDockerfileName recognises Dockerfile, Dockerfile.prod, app.Dockerfile,
// Containerfile and their lower-case spellings.
func IsDockerfileName(name string, _ []byte) bool {
	base := strings.ToLower(filepath.Base(name))
	for _, n := range []string{"dockerfile", "containerfile"} {
		if base == n || strings.HasPrefix(base, n+".") || strings.HasSuffix(base, "."+n) {
			// Dockerfile.dockerignore is the ignore file, not a Dockerfile.
			return !strings.HasSuffix(base, ".dockerignore")
		}
	}
	return false
}

func setupKind(fl *pflag.FlagSet) func(pol *cel.Policy) (config.Checker, error) {
	var digest string
	fl.StringVar(&digest, "digest-severity", "", "severity of BH-DF-008 (FROM without a digest): CRITICAL, HIGH, MEDIUM, LOW or OFF (default LOW)")
	return func(pol *cel.Policy) (config.Checker, error) {
		opts := Options{}
		switch strings.ToUpper(digest) {
		case "":
		case "OFF", "NONE":
			opts.Disable = append(opts.Disable, "BH-DF-008")
		default:
			sev, err := finding.ParseSeverity(digest)
			if err != nil {
				return nil, fmt.Errorf("--digest-severity: %w", err)
			}
			opts.Severity = map[string]finding.Severity{"BH-DF-008": sev}
		}
		checks := pol.ForTarget(cel.Dockerfile)
		return func(name string, data []byte, emit func([]finding.Finding)) error {
			f, err := Parse(name, bytes.NewReader(data))
			if err != nil {
				return err
			}
			if name != "-" {
				f.SetDockerignore(DockerignoreBeside(name))
			}
			emit(Lint(f, opts))
			if len(checks) > 0 {
				more, err := celChecks(f, checks)
				emit(more)
				if err != nil {
					return err
				}
			}
			return nil
		}, nil
	}
}

// celChecks runs the policy's dockerfile checks: a place with a line
// reports the instruction there, one without reports the final FROM.
func celChecks(f *File, checks []*cel.Check) ([]finding.Finding, error) {
	vars := map[string]any{"file": f.Map()}
	byLine := map[int]*Instruction{}
	for si := range f.Stages {
		st := &f.Stages[si]
		byLine[st.From.StartLine] = &st.From
		for ii := range st.Instructions {
			byLine[st.Instructions[ii].StartLine] = &st.Instructions[ii]
		}
	}
	for i := range f.MetaArgs {
		byLine[f.MetaArgs[i].StartLine] = &f.MetaArgs[i]
	}
	var out []finding.Finding
	for _, c := range checks {
		places, err := c.Eval(vars)
		if err != nil {
			return out, fmt.Errorf("%s: %w", f.Path, err)
		}
		for _, p := range places {
			in := byLine[p.Line]
			if in == nil {
				if final := f.Final(); final != nil {
					in = &final.From
				} else {
					in = &Instruction{StartLine: p.Line, EndLine: p.Line}
				}
			}
			out = append(out, NewFinding(f, in, c.ID, c.SeverityLevel(), c.Title, c.Message, c.Fix, c.Link))
		}
	}
	return out, nil
}
