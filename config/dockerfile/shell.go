package dockerfile

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Command is one simple shell command of a RUN (or CMD/ENTRYPOINT).
type Command struct {
	Args     []string `json:"args"`
	Assigns  []string `json:"assigns"`
	Pipeline int      `json:"pipeline"`
	PipePos  int      `json:"pipePos"`
	PipeTo   []string `json:"pipeTo"`
}

// maxScript bounds the shell text handed to the shell parser.
const maxScript = 1 << 20

// commandsOf splits an instruction's command into simple commands.
func commandsOf(args []string, isJSON bool, heredocs []Heredoc) []Command {
	if isJSON {
		if len(args) == 0 {
			return []Command{}
		}
		// ["sh", "-c", "script"] runs a script; anything else is one argv.
		if len(args) >= 3 && isShell(args[0]) && args[1] == "-c" {
			return ShellCommands(args[2])
		}
		return []Command{{Args: append([]string{}, args...), Assigns: []string{}}}
	}
	script := strings.Join(args, " ")
	if len(heredocs) > 0 {
		trim := strings.TrimSpace(script)
		if strings.HasPrefix(trim, "<<") && !strings.ContainsAny(trim, " \t") {
			// RUN <<EOF: the heredoc is the script.
			script = heredocs[0].Content
		} else {
			var b strings.Builder
			b.WriteString(script)
			for _, h := range heredocs {
				b.WriteString("\n")
				b.WriteString(h.Content)
				if !strings.HasSuffix(h.Content, "\n") {
					b.WriteString("\n")
				}
				b.WriteString(h.Name)
			}
			script = b.String()
		}
	}
	return ShellCommands(script)
}

// ShellCommands splits a shell script into its simple commands, with
// pipelines marked. It never fails: text the shell parser rejects (another
// shell's syntax, a broken quote) is split on the usual separators instead.
// The image audit uses it on history created_by lines too.
func ShellCommands(script string) []Command {
	if len(script) > maxScript {
		script = script[:maxScript]
	}
	p := syntax.NewParser(syntax.Variant(syntax.LangBash))
	file, err := p.Parse(strings.NewReader(script), "")
	if err != nil {
		return fallbackCommands(script)
	}
	c := &collector{src: script, out: []Command{}}
	for _, st := range file.Stmts {
		c.stmt(st, 0, 0)
	}
	return c.out
}

type collector struct {
	src   string
	out   []Command
	pipes int
	depth int
}

func (c *collector) text(n syntax.Node) string {
	s, e := int(n.Pos().Offset()), int(n.End().Offset())
	if s < 0 || e > len(c.src) || s > e {
		return ""
	}
	return c.src[s:e]
}

func (c *collector) stmt(st *syntax.Stmt, pipe, pos int) {
	if st == nil || c.depth > 200 {
		return
	}
	c.depth++
	defer func() { c.depth-- }()
	switch cmd := st.Cmd.(type) {
	case *syntax.CallExpr:
		c.call(cmd, pipe, pos)
	case *syntax.BinaryCmd:
		if cmd.Op == syntax.Pipe || cmd.Op == syntax.PipeAll {
			var parts []*syntax.Stmt
			flattenPipe(cmd, &parts)
			c.pipes++
			id := c.pipes
			start := len(c.out)
			for i, p := range parts {
				c.stmt(p, id, i)
			}
			linkPipes(c.out[start:])
			return
		}
		c.stmt(cmd.X, 0, 0)
		c.stmt(cmd.Y, 0, 0)
	case *syntax.Subshell:
		c.stmts(cmd.Stmts)
	case *syntax.Block:
		c.stmts(cmd.Stmts)
	case *syntax.IfClause:
		for ic := cmd; ic != nil; ic = ic.Else {
			c.stmts(ic.Cond)
			c.stmts(ic.Then)
		}
	case *syntax.WhileClause:
		c.stmts(cmd.Cond)
		c.stmts(cmd.Do)
	case *syntax.ForClause:
		c.stmts(cmd.Do)
	case *syntax.CaseClause:
		for _, it := range cmd.Items {
			c.stmts(it.Stmts)
		}
	case *syntax.FuncDecl:
		c.stmt(cmd.Body, 0, 0)
	case *syntax.TimeClause:
		c.stmt(cmd.Stmt, pipe, pos)
	case *syntax.CoprocClause:
		c.stmt(cmd.Stmt, 0, 0)
	}
}

func (c *collector) stmts(sts []*syntax.Stmt) {
	for _, s := range sts {
		c.stmt(s, 0, 0)
	}
}

func flattenPipe(b *syntax.BinaryCmd, out *[]*syntax.Stmt) {
	for _, s := range []*syntax.Stmt{b.X, b.Y} {
		if s == nil {
			continue
		}
		if inner, ok := s.Cmd.(*syntax.BinaryCmd); ok && (inner.Op == syntax.Pipe || inner.Op == syntax.PipeAll) && len(s.Redirs) == 0 {
			flattenPipe(inner, out)
			continue
		}
		*out = append(*out, s)
	}
}

func (c *collector) call(ce *syntax.CallExpr, pipe, pos int) {
	cmd := Command{Args: []string{}, Assigns: []string{}, Pipeline: pipe, PipePos: pos}
	for _, a := range ce.Assigns {
		cmd.Assigns = append(cmd.Assigns, c.text(a))
	}
	for _, w := range ce.Args {
		cmd.Args = append(cmd.Args, c.word(w))
	}
	if len(cmd.Args) > 0 || len(cmd.Assigns) > 0 {
		c.out = append(c.out, cmd)
	}
	// Commands inside $(...) and <(...) run too.
	for _, w := range ce.Args {
		syntax.Walk(w, func(n syntax.Node) bool {
			switch s := n.(type) {
			case *syntax.CmdSubst:
				c.stmts(s.Stmts)
				return false
			case *syntax.ProcSubst:
				c.stmts(s.Stmts)
				return false
			}
			return true
		})
	}
}

// word renders a word with quotes removed; expansions stay as written.
func (c *collector) word(w *syntax.Word) string {
	var b strings.Builder
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(unescapeLit(p.Value))
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				if l, ok := q.(*syntax.Lit); ok {
					b.WriteString(l.Value)
				} else {
					b.WriteString(c.text(q))
				}
			}
		default:
			b.WriteString(c.text(p))
		}
	}
	return b.String()
}

func unescapeLit(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			if s[i] == '\n' {
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// fallbackCommands splits on ;, &&, ||, | and newlines, then on blanks.
func fallbackCommands(script string) []Command {
	out := []Command{}
	pipe := 0
	var cur []string
	pos := 0
	inPipe := false
	flush := func(piped bool) {
		if len(cur) > 0 {
			cmd := Command{Args: cur, Assigns: []string{}}
			if piped || inPipe {
				if !inPipe {
					pipe++
					pos = 0
				}
				cmd.Pipeline, cmd.PipePos = pipe, pos
				pos++
			}
			out = append(out, cmd)
		}
		cur = nil
		inPipe = piped
		if !piped {
			pos = 0
		}
	}
	for _, f := range strings.Fields(strings.NewReplacer("\\\n", " ", "\n", " ; ").Replace(script)) {
		switch f {
		case ";", "&&", "||", "&":
			flush(false)
		case "|":
			flush(true)
		default:
			if len(cur) == 0 && strings.Contains(f, "=") && !strings.HasPrefix(f, "-") && !strings.HasPrefix(f, "=") {
				continue
			}
			cur = append(cur, strings.Trim(f, `"'`))
		}
	}
	flush(false)
	linkPipes(out)
	return out
}

// linkPipes sets each piped command's PipeTo to the argv of the next
// command of its pipeline (linear: pipelines can be long).
func linkPipes(cmds []Command) {
	type key struct{ pipe, pos int }
	at := make(map[key]int)
	for i, c := range cmds {
		if c.Pipeline != 0 {
			at[key{c.Pipeline, c.PipePos}] = i
		}
	}
	for i := range cmds {
		if cmds[i].Pipeline == 0 {
			continue
		}
		if j, ok := at[key{cmds[i].Pipeline, cmds[i].PipePos + 1}]; ok {
			cmds[i].PipeTo = cmds[j].Args
		}
	}
}

var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "zsh": true, "ksh": true, "mksh": true, "busybox": false}

func isShell(arg string) bool { return shells[baseName(arg)] }

func baseName(arg string) string {
	if i := strings.LastIndexByte(arg, '/'); i >= 0 {
		return arg[i+1:]
	}
	return arg
}

// Program returns the command's program and its arguments with wrappers
// that only change privileges or environment (sudo, env, nice, command,
// exec...) stripped: "sudo -E apt-get install x" -> apt-get, [install x].
func (c Command) Program() (string, []string) {
	args := c.Args
	for len(args) > 0 {
		p := baseName(args[0])
		switch p {
		case "sudo", "doas", "su-exec", "gosu", "env", "nice", "nohup", "command", "exec", "time", "eatmydata", "stdbuf":
			args = args[1:]
			// Skip the wrapper's own options and VAR=value pairs; gosu and
			// su-exec take a user first.
			for len(args) > 0 && (strings.HasPrefix(args[0], "-") || (strings.Contains(args[0], "=") && p != "gosu" && p != "su-exec")) {
				args = args[1:]
			}
			if (p == "gosu" || p == "su-exec") && len(args) > 0 {
				args = args[1:]
			}
			continue
		}
		return p, args[1:]
	}
	return "", nil
}
