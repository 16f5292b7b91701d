package dockerfile

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/secret"
)

// Check is one built-in Dockerfile check. Checks are data: a new one is one
// entry in Checks, and package cel adds user checks over the same *File.
type Check struct {
	ID       string
	Severity finding.Severity
	Title    string
	Fix      string
	Link     string
	// Run calls report for every instruction that fails the check (for
	// file-wide checks, the final stage's FROM), with a detail message.
	Run func(f *File, report func(in *Instruction, detail string))
}

const (
	docsBest = "https://docs.docker.com/build/building/best-practices/"
	docsRef  = "https://docs.docker.com/reference/dockerfile/"
)

// Checks are bulkhead's built-in Dockerfile checks, in ID order.
var Checks = []Check{
	{ID: "BH-DF-001", Severity: finding.High, Title: "Final stage sets no USER: the container runs as root",
		Fix:  "Create an unprivileged user and switch to it in the final stage: RUN useradd -r -u 10001 app && USER 10001",
		Link: docsRef + "#user", Run: checkNoUser},
	{ID: "BH-DF-002", Severity: finding.High, Title: "Last USER of the final stage is root",
		Fix:  "Switch back to an unprivileged user after the steps that need root: USER app (or a numeric UID)",
		Link: docsRef + "#user", Run: checkRootUser},
	{ID: "BH-DF-003", Severity: finding.Medium, Title: "RUN uses sudo",
		Fix:  "Drop sudo: RUN steps run as the current USER; switch USER around the steps that need root, or use gosu at runtime",
		Link: docsBest + "#user", Run: checkSudo},
	{ID: "BH-DF-004", Severity: finding.Medium, Title: "ADD fetches a remote URL without a checksum",
		Fix:  "Download with curl/wget and verify a checksum in the same RUN, or use ADD --checksum=sha256:...",
		Link: docsBest + "#add-or-copy", Run: checkAddURL},
	{ID: "BH-DF-005", Severity: finding.Low, Title: "ADD used where COPY serves",
		Fix:  "Use COPY for local files; ADD only for local tar archives that should be extracted",
		Link: docsBest + "#add-or-copy", Run: checkAddLocal},
	{ID: "BH-DF-006", Severity: finding.Medium, Title: "FROM image has no tag",
		Fix:  "Pin the base image to a version tag, better a digest: FROM debian:12.5@sha256:...",
		Link: docsBest + "#pin-base-image-versions", Run: checkNoTag},
	{ID: "BH-DF-007", Severity: finding.Medium, Title: "FROM image uses the latest tag",
		Fix:  "Pin the base image to a version tag, better a digest: FROM alpine:3.20@sha256:...",
		Link: docsBest + "#pin-base-image-versions", Run: checkLatest},
	{ID: "BH-DF-008", Severity: finding.Low, Title: "FROM image is not pinned by digest",
		Fix:  "Add the digest so rebuilds use the same bytes: FROM image:tag@sha256:... (let a bot such as Renovate update it)",
		Link: docsBest + "#pin-base-image-versions", Run: checkNoDigest},
	{ID: "BH-DF-009", Severity: finding.Critical, Title: "Secret value in ENV, ARG or LABEL",
		Fix:  "Remove the secret from the Dockerfile and rotate it; pass secrets at build time with RUN --mount=type=secret and at runtime from a secret store",
		Link: "https://docs.docker.com/build/building/secrets/", Run: checkSecretValue},
	{ID: "BH-DF-010", Severity: finding.High, Title: "Credential-like ENV or ARG set to a literal value",
		Fix:  "Do not bake credentials into the image: use RUN --mount=type=secret at build time and inject the value at runtime",
		Link: "https://docs.docker.com/build/building/secrets/", Run: checkSecretName},
	{ID: "BH-DF-011", Severity: finding.Medium, Title: "Credential passed as a build ARG",
		Fix:  "Build arguments are kept in the image history; use RUN --mount=type=secret,id=... instead",
		Link: "https://docs.docker.com/build/building/secrets/", Run: checkSecretArg},
	{ID: "BH-DF-012", Severity: finding.High, Title: "Remote script piped into a shell (curl | sh)",
		Fix:  "Download to a file, verify its checksum or signature, then run it",
		Link: docsBest + "#using-pipes", Run: checkCurlPipe},
	{ID: "BH-DF-013", Severity: finding.Low, Title: "apt-get install without -y",
		Fix:  "Use apt-get install -y (or -qq) so the build never waits for input",
		Link: docsBest + "#apt-get", Run: checkAptYes},
	{ID: "BH-DF-014", Severity: finding.Low, Title: "apt-get install without --no-install-recommends",
		Fix:  "Add --no-install-recommends to install only what the image needs",
		Link: docsBest + "#apt-get", Run: checkAptRecommends},
	{ID: "BH-DF-015", Severity: finding.Low, Title: "apt lists left in the layer",
		Fix:  "End the same RUN with: && rm -rf /var/lib/apt/lists/*",
		Link: docsBest + "#apt-get", Run: checkAptLists},
	{ID: "BH-DF-016", Severity: finding.Low, Title: "apk add without --no-cache",
		Fix:  "Use apk add --no-cache (no index or cache is kept in the layer)",
		Link: "https://github.com/gliderlabs/docker-alpine/blob/master/docs/usage.md#disabling-cache", Run: checkApkCache},
	{ID: "BH-DF-017", Severity: finding.Low, Title: "pip install without --no-cache-dir",
		Fix:  "Use pip install --no-cache-dir (or ENV PIP_NO_CACHE_DIR=1, or a cache mount)",
		Link: "https://pip.pypa.io/en/stable/topics/caching/#disabling-caching", Run: checkPipCache},
	{ID: "BH-DF-018", Severity: finding.Low, Title: "No HEALTHCHECK in the final stage",
		Fix:  "Add HEALTHCHECK CMD ... so the runtime can tell a hung container from a healthy one",
		Link: docsRef + "#healthcheck", Run: checkHealthcheck},
	{ID: "BH-DF-019", Severity: finding.Medium, Title: "EXPOSE 22 (SSH)",
		Fix:  "Do not run an SSH server in a container; use docker exec / kubectl exec",
		Link: docsRef + "#expose", Run: checkExpose22},
	{ID: "BH-DF-020", Severity: finding.Medium, Title: "chmod makes files world-writable",
		Fix:  "Grant only what is needed (e.g. 755 for programs, 644 for files) and chown to the runtime user instead",
		Link: "https://cwe.mitre.org/data/definitions/732.html", Run: checkChmod},
	{ID: "BH-DF-021", Severity: finding.Medium, Title: "Whole build context copied without a .dockerignore",
		Fix:  "Add a .dockerignore (at least .git, credentials, build output) or copy only the files the image needs",
		Link: "https://docs.docker.com/build/concepts/context/#dockerignore-files", Run: checkCopyContext},
	{ID: "BH-DF-022", Severity: finding.Low, Title: "Final stage FROM scratch sets no USER: the program runs as UID 0",
		Fix:  "Set a numeric unprivileged user: USER 65532:65532",
		Link: docsRef + "#user", Run: checkScratchUser},
}

// chain returns the stage and the earlier stages it builds on, nearest
// first: a stage inherits USER and HEALTHCHECK from the stage it is FROM.
func chain(f *File, st *Stage) []*Stage {
	var out []*Stage
	seen := map[int]bool{}
	for st != nil && !seen[st.Index] {
		seen[st.Index] = true
		out = append(out, st)
		if st.BaseStage < 0 || st.BaseStage >= len(f.Stages) {
			break
		}
		st = &f.Stages[st.BaseStage]
	}
	return out
}

// lastUser is the USER in force at the end of the final stage, with the
// instruction that set it (nil when no stage in the chain sets one).
func lastUser(f *File) (*Instruction, *Stage) {
	final := f.Final()
	if final == nil {
		return nil, nil
	}
	ch := chain(f, final)
	for _, st := range ch {
		for i := len(st.Instructions) - 1; i >= 0; i-- {
			if st.Instructions[i].Cmd == "user" {
				return &st.Instructions[i], ch[len(ch)-1]
			}
		}
	}
	return nil, ch[len(ch)-1]
}

func checkNoUser(f *File, report func(*Instruction, string)) {
	u, root := lastUser(f)
	if u != nil || root == nil || strings.EqualFold(root.Image, "scratch") {
		return
	}
	final := f.Final()
	report(&final.From, fmt.Sprintf("no USER in the final stage (FROM %s): it runs as the base image's user, root unless that image sets one", final.Base))
}

func checkScratchUser(f *File, report func(*Instruction, string)) {
	u, root := lastUser(f)
	if u != nil || root == nil || !strings.EqualFold(root.Image, "scratch") {
		return
	}
	report(&f.Final().From, "no USER in a final stage built FROM scratch")
}

func isRootUser(arg string) bool {
	user, _, _ := strings.Cut(strings.TrimSpace(arg), ":")
	return user == "root" || user == "0" || strings.Trim(user, "0") == "" && user != ""
}

func checkRootUser(f *File, report func(*Instruction, string)) {
	u, _ := lastUser(f)
	if u == nil || len(u.Args) == 0 {
		return
	}
	if isRootUser(u.Args[0]) {
		report(u, fmt.Sprintf("USER %s is the last USER of the final stage", u.Args[0]))
	}
}

// runs calls fn for every RUN instruction of every stage.
func runs(f *File, fn func(st *Stage, in *Instruction)) {
	for si := range f.Stages {
		st := &f.Stages[si]
		for ii := range st.Instructions {
			if st.Instructions[ii].Cmd == "run" {
				fn(st, &st.Instructions[ii])
			}
		}
	}
}

func checkSudo(f *File, report func(*Instruction, string)) {
	runs(f, func(_ *Stage, in *Instruction) {
		for _, c := range in.Commands {
			if len(c.Args) > 0 && baseName(c.Args[0]) == "sudo" {
				report(in, "sudo "+strings.Join(c.Args[1:], " "))
				return
			}
		}
	})
}

func isURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "ftp://") ||
		strings.HasPrefix(l, "git@") || strings.HasPrefix(l, "git://")
}

var archiveExts = []string{".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zst", ".tzst", ".tar.lz", ".tar.lzma", ".tlz"}

func isArchive(s string) bool {
	l := strings.ToLower(s)
	for _, e := range archiveExts {
		if strings.HasSuffix(l, e) {
			return true
		}
	}
	return false
}

// sources are the source arguments of COPY/ADD (all but the destination).
func sources(in *Instruction) []string {
	if len(in.Args) < 2 {
		return nil
	}
	return in.Args[:len(in.Args)-1]
}

func eachInstr(f *File, cmd string, fn func(st *Stage, in *Instruction)) {
	for si := range f.Stages {
		st := &f.Stages[si]
		for ii := range st.Instructions {
			if st.Instructions[ii].Cmd == cmd {
				fn(st, &st.Instructions[ii])
			}
		}
	}
}

func checkAddURL(f *File, report func(*Instruction, string)) {
	eachInstr(f, "add", func(_ *Stage, in *Instruction) {
		if _, ok := in.Flags["checksum"]; ok {
			return
		}
		for _, s := range sources(in) {
			if isURL(s) {
				report(in, "ADD "+s)
				return
			}
		}
	})
}

func checkAddLocal(f *File, report func(*Instruction, string)) {
	eachInstr(f, "add", func(_ *Stage, in *Instruction) {
		srcs := sources(in)
		if len(srcs) == 0 {
			return
		}
		for _, s := range srcs {
			if isURL(s) || isArchive(s) {
				return
			}
		}
		report(in, "ADD "+strings.Join(srcs, " "))
	})
}

// imageRef splits a resolved image reference into tag and digest.
func imageRef(image string) (tag, digest string) {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		digest = image[i+1:]
		image = image[:i]
	}
	slash := strings.LastIndexByte(image, '/')
	if i := strings.LastIndexByte(image, ':'); i > slash {
		tag = image[i+1:]
	}
	return tag, digest
}

// externalStages calls fn for each stage FROM an image (not scratch, not an
// earlier stage, not an unresolved variable).
func externalStages(f *File, fn func(st *Stage, tag, digest string)) {
	for si := range f.Stages {
		st := &f.Stages[si]
		if st.BaseStage >= 0 || !st.Resolved || st.Image == "" || strings.EqualFold(st.Image, "scratch") {
			continue
		}
		tag, digest := imageRef(st.Image)
		fn(st, tag, digest)
	}
}

func checkNoTag(f *File, report func(*Instruction, string)) {
	externalStages(f, func(st *Stage, tag, digest string) {
		if tag == "" && digest == "" {
			report(&st.From, "FROM "+st.Image)
		}
	})
}

func checkLatest(f *File, report func(*Instruction, string)) {
	externalStages(f, func(st *Stage, tag, digest string) {
		if tag == "latest" && digest == "" {
			report(&st.From, "FROM "+st.Image)
		}
	})
}

func checkNoDigest(f *File, report func(*Instruction, string)) {
	externalStages(f, func(st *Stage, tag, digest string) {
		if digest == "" && tag != "" && tag != "latest" {
			report(&st.From, "FROM "+st.Image)
		}
	})
}

// assignments calls fn for every ENV, ARG and LABEL pair (meta ARGs too).
func assignments(f *File, fn func(in *Instruction, kv KeyValue)) {
	visit := func(in *Instruction) {
		if in.Cmd != "env" && in.Cmd != "arg" && in.Cmd != "label" {
			return
		}
		for _, kv := range in.KeyValues {
			fn(in, kv)
		}
	}
	for i := range f.MetaArgs {
		visit(&f.MetaArgs[i])
	}
	for si := range f.Stages {
		for ii := range f.Stages[si].Instructions {
			visit(&f.Stages[si].Instructions[ii])
		}
	}
}

func checkSecretValue(f *File, report func(*Instruction, string)) {
	assignments(f, func(in *Instruction, kv KeyValue) {
		if kv.Value == "" {
			return
		}
		if m, ok := secret.MatchValue(kv.Key, kv.Value); ok {
			report(in, fmt.Sprintf("%s %s holds a secret: %s (%s)", strings.ToUpper(in.Cmd), kv.Key, m.Title, m.Redacted))
		}
	})
}

// literalValue reports whether an ENV/ARG value is a literal that could be
// a credential, not a reference, a path or a switch.
func literalValue(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" || strings.HasPrefix(v, "$") || strings.HasPrefix(v, "/") {
		return false
	}
	switch strings.ToLower(v) {
	case "true", "false", "yes", "no", "on", "off", "0", "1", "none", "null", "nil", "empty", "required", "optional":
		return false
	}
	return true
}

func checkSecretName(f *File, report func(*Instruction, string)) {
	assignments(f, func(in *Instruction, kv KeyValue) {
		if in.Cmd == "label" || !kv.HasValue || !literalValue(kv.Value) || !secret.SensitiveName(kv.Key) {
			return
		}
		if _, ok := secret.MatchValue(kv.Key, kv.Value); ok {
			return // BH-DF-009 reports it
		}
		report(in, fmt.Sprintf("%s %s=%s", strings.ToUpper(in.Cmd), kv.Key, secret.Redact(kv.Value)))
	})
}

func checkSecretArg(f *File, report func(*Instruction, string)) {
	assignments(f, func(in *Instruction, kv KeyValue) {
		if in.Cmd == "arg" && !kv.HasValue && secret.SensitiveName(kv.Key) {
			report(in, "ARG "+kv.Key)
		}
	})
}

// fetchers download; shellsForPipe run what they are given.
var fetchers = map[string]bool{"curl": true, "wget": true, "fetch": true}

func checkCurlPipe(f *File, report func(*Instruction, string)) {
	runs(f, func(_ *Stage, in *Instruction) {
		for _, c := range in.Commands {
			p, _ := c.Program()
			if fetchers[p] && len(c.PipeTo) > 0 {
				next, nargs := Command{Args: c.PipeTo}.Program()
				if isShell(next) || (isInterpreter(next) && (len(nargs) == 0 || nargs[0] == "-")) {
					report(in, fmt.Sprintf("%s ... | %s", p, next))
					return
				}
			}
			// sh -c "$(curl ...)", bash <(curl ...)
			if isShell(p) {
				for _, a := range c.Args[1:] {
					if fetchedInline(a) {
						report(in, p+" "+a)
						return
					}
				}
			}
		}
	})
}

func isInterpreter(p string) bool {
	return p == "python" || p == "python3" || p == "perl" || p == "ruby" || p == "node"
}

func fetchedInline(a string) bool {
	for _, open := range []string{"$(", "<(", "`"} {
		i := strings.Index(a, open)
		if i < 0 {
			continue
		}
		rest := strings.TrimLeft(a[i+len(open):], " ")
		for fe := range fetchers {
			if strings.HasPrefix(rest, fe+" ") {
				return true
			}
		}
	}
	return false
}

// subcommand returns the first argument that is not an option, skipping
// the values of the options named in withValue.
func subcommand(args []string, withValue map[string]bool) (string, int) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if withValue[a] {
				i++
			}
			continue
		}
		return a, i
	}
	return "", -1
}

var aptValueOpts = map[string]bool{"-o": true, "-c": true, "-t": true, "--option": true, "--config-file": true, "--target-release": true, "--default-release": true}

// aptInstalls returns the apt-get/apt install commands of a RUN.
func aptInstalls(in *Instruction) [][]string {
	var out [][]string
	for _, c := range in.Commands {
		p, args := c.Program()
		if p != "apt-get" && p != "apt" {
			continue
		}
		if sub, _ := subcommand(args, aptValueOpts); sub == "install" {
			out = append(out, args)
		}
	}
	return out
}

func aptAssumesYes(args []string) bool {
	quiet := 0
	for i, a := range args {
		l := strings.ToLower(a)
		switch {
		case l == "--yes" || l == "--assume-yes" || l == "--force-yes":
			return true
		case l == "-q=2" || l == "--quiet=2" || l == "-qq":
			return true
		case l == "-q" || l == "--quiet":
			quiet++
		case strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "--") && strings.ContainsRune(l, 'y'):
			return true
		case strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "--") && strings.Count(l, "q") >= 2:
			return true
		case (l == "-o" || l == "--option") && i+1 < len(args) && strings.HasPrefix(strings.ToLower(args[i+1]), "apt::get::assume-yes=") && !strings.HasSuffix(strings.ToLower(args[i+1]), "=false"):
			return true
		}
	}
	return quiet >= 2
}

func checkAptYes(f *File, report func(*Instruction, string)) {
	runs(f, func(_ *Stage, in *Instruction) {
		for _, args := range aptInstalls(in) {
			if !aptAssumesYes(args) {
				report(in, "apt-get "+strings.Join(args, " "))
				return
			}
		}
	})
}

func checkAptRecommends(f *File, report func(*Instruction, string)) {
	runs(f, func(_ *Stage, in *Instruction) {
		for _, args := range aptInstalls(in) {
			ok := false
			for _, a := range args {
				l := strings.ToLower(a)
				if l == "--no-install-recommends" || strings.HasSuffix(l, "install-recommends=false") || strings.HasSuffix(l, "install-recommends=0") {
					ok = true
				}
			}
			if !ok {
				report(in, "apt-get "+strings.Join(args, " "))
				return
			}
		}
	})
}

// removes reports whether a RUN removes paths under prefix.
func removes(in *Instruction, prefix string) bool {
	for _, c := range in.Commands {
		p, args := c.Program()
		if p != "rm" {
			continue
		}
		for _, a := range args {
			if strings.HasPrefix(a, prefix) {
				return true
			}
		}
	}
	return false
}

// cacheMount reports whether the RUN mounts a build cache (nothing cached
// lands in the layer then).
func cacheMount(in *Instruction) bool {
	return strings.Contains(in.Flags["mount"], "type=cache") || strings.Contains(in.Original, "type=cache")
}

func checkAptLists(f *File, report func(*Instruction, string)) {
	runs(f, func(_ *Stage, in *Instruction) {
		if len(aptInstalls(in)) == 0 || cacheMount(in) || removes(in, "/var/lib/apt/lists") {
			return
		}
		// "apt-get clean" is accepted as cleanup as KICS and Hadolint do.
		for _, c := range in.Commands {
			if p, args := c.Program(); (p == "apt-get" || p == "apt") && len(args) > 0 {
				if sub, _ := subcommand(args, aptValueOpts); sub == "clean" {
					return
				}
			}
		}
		report(in, "apt-get install without rm -rf /var/lib/apt/lists/* in the same RUN")
	})
}

func checkApkCache(f *File, report func(*Instruction, string)) {
	runs(f, func(_ *Stage, in *Instruction) {
		if cacheMount(in) || removes(in, "/var/cache/apk") {
			return
		}
		for _, c := range in.Commands {
			p, args := c.Program()
			if p != "apk" {
				continue
			}
			sub, _ := subcommand(args, map[string]bool{"-X": true, "--repository": true, "-p": true, "--root": true, "-t": true, "--virtual": true})
			if sub != "add" {
				continue
			}
			if !contains(args, "--no-cache") {
				report(in, "apk "+strings.Join(args, " "))
				return
			}
		}
	})
}

func contains(args []string, s string) bool {
	for _, a := range args {
		if a == s {
			return true
		}
	}
	return false
}

// pipArgs returns the arguments after "pip" for pip, pip3, pip3.12 and
// python -m pip.
func pipArgs(c Command) ([]string, bool) {
	p, args := c.Program()
	if p == "pip" || strings.HasPrefix(p, "pip2") || strings.HasPrefix(p, "pip3") {
		return args, true
	}
	if strings.HasPrefix(p, "python") {
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-m" && (args[i+1] == "pip" || args[i+1] == "pip3") {
				return args[i+2:], true
			}
		}
	}
	return nil, false
}

func stageEnvSet(st *Stage, upto *Instruction, key string) bool {
	for i := range st.Instructions {
		in := &st.Instructions[i]
		if in == upto {
			break
		}
		if in.Cmd == "env" || in.Cmd == "arg" {
			for _, kv := range in.KeyValues {
				if kv.Key == key && kv.Value != "" {
					return true
				}
			}
		}
	}
	return false
}

func checkPipCache(f *File, report func(*Instruction, string)) {
	runs(f, func(st *Stage, in *Instruction) {
		if cacheMount(in) {
			return
		}
		envChecked := false
		for _, c := range in.Commands {
			args, ok := pipArgs(c)
			if !ok {
				continue
			}
			if sub, _ := subcommand(args, nil); sub != "install" {
				continue
			}
			env := false
			for _, a := range c.Assigns {
				if strings.HasPrefix(a, "PIP_NO_CACHE_DIR=") {
					env = true
				}
			}
			if !env && !contains(args, "--no-cache-dir") {
				// Looked up only here: scanning the stage for every RUN
				// would be quadratic.
				if !envChecked && stageEnvSet(st, in, "PIP_NO_CACHE_DIR") {
					return
				}
				envChecked = true
				report(in, "pip "+strings.Join(args, " "))
				return
			}
		}
	})
}

func checkHealthcheck(f *File, report func(*Instruction, string)) {
	final := f.Final()
	if final == nil {
		return
	}
	for _, st := range chain(f, final) {
		for _, in := range st.Instructions {
			if in.Cmd == "healthcheck" {
				return
			}
		}
	}
	report(&final.From, "no HEALTHCHECK in the final stage (FROM "+final.Base+")")
}

func exposes22(arg string) bool {
	port, _, _ := strings.Cut(arg, "/")
	if lo, hi, ok := strings.Cut(port, "-"); ok {
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		return err1 == nil && err2 == nil && l <= 22 && 22 <= h
	}
	return port == "22"
}

func checkExpose22(f *File, report func(*Instruction, string)) {
	eachInstr(f, "expose", func(_ *Stage, in *Instruction) {
		for _, a := range in.Args {
			if exposes22(a) {
				report(in, "EXPOSE "+a)
				return
			}
		}
	})
}

// worldWritable reports whether a chmod mode makes files writable by
// everyone without the sticky bit (1777 on a shared directory is the /tmp
// pattern and is left alone).
func worldWritable(mode string) bool {
	if n, err := strconv.ParseUint(mode, 8, 32); err == nil {
		return n&0o002 != 0 && n&0o1000 == 0
	}
	ww, sticky := false, false
	for _, clause := range strings.Split(mode, ",") {
		i := strings.IndexAny(clause, "+=")
		if i < 0 {
			continue
		}
		who, perms := clause[:i], clause[i+1:]
		if strings.ContainsRune(perms, 't') {
			sticky = true
		}
		if (strings.ContainsAny(who, "ao")) && strings.ContainsRune(perms, 'w') {
			ww = true
		}
	}
	return ww && !sticky
}

func checkChmod(f *File, report func(*Instruction, string)) {
	runs(f, func(_ *Stage, in *Instruction) {
		for _, c := range in.Commands {
			p, args := c.Program()
			if p != "chmod" {
				continue
			}
			if mode, _ := subcommand(args, map[string]bool{"--reference": true}); mode != "" && worldWritable(mode) {
				report(in, "chmod "+strings.Join(args, " "))
				return
			}
		}
	})
}

func checkCopyContext(f *File, report func(*Instruction, string)) {
	if !f.dockerignoreKnown || f.Dockerignore {
		return
	}
	for si := range f.Stages {
		st := &f.Stages[si]
		for ii := range st.Instructions {
			in := &st.Instructions[ii]
			if in.Cmd != "copy" && in.Cmd != "add" {
				continue
			}
			if _, ok := in.Flags["from"]; ok {
				continue
			}
			for _, s := range sources(in) {
				if s == "." || s == "./" || s == "*" || s == "./*" {
					report(in, strings.ToUpper(in.Cmd)+" "+s+" with no .dockerignore beside the Dockerfile")
					break
				}
			}
		}
	}
}
