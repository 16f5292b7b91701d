// Package dockerfile parses Dockerfiles (and Containerfiles) with buildkit's
// parser into a plain model and runs bulkhead's least-privilege and hygiene
// checks over it (IDs BH-DF-001...; see Checks).
//
// # The parsed model (shared with package cel)
//
// Parse returns a *File. It is plain data with JSON tags, and (*File).Map
// returns the same thing as map[string]any / []any / string / int64 / bool
// values, which is what CEL custom checks (target kind "dockerfile") read.
// Field names below are the JSON/map keys:
//
//	file
//	  path          string   the file as given ("-" for stdin)
//	  dockerignore  bool     a .dockerignore (or <name>.dockerignore) sits
//	                         beside the file; false when unknown (stdin)
//	  metaArgs      []instruction  ARGs before the first FROM
//	  stages        []stage
//	stage
//	  index         int      0-based position
//	  name          string   the AS name, lower-cased ("" when none)
//	  base          string   the FROM image as written ("${BASE}:1")
//	  image         string   base with the meta ARG defaults expanded
//	  resolved      bool     image has no unresolved variable
//	  baseStage     int      index of the earlier stage this one builds
//	                         on (FROM builder), -1 for an external image
//	  platform      string   --platform flag, if any
//	  final         bool     the last stage (what `docker build` ships
//	                         without --target)
//	  from          instruction  the FROM instruction itself
//	  instructions  []instruction  everything after FROM in this stage
//	instruction
//	  cmd           string   lower-case instruction: "run", "user", "copy"...
//	  args          []string arguments after the instruction word and
//	                         flags, as written; exec form gives the JSON
//	                         items; shell form RUN/CMD/ENTRYPOINT give one
//	                         string, the whole command
//	  json          bool     exec (JSON array) form
//	  flags         map[string]string  --from=build -> {"from": "build"}
//	                         (a flag without a value maps to "")
//	  keyValues     []{key, value}  ENV, LABEL and ARG pairs; values
//	                         unquoted, not expanded; ARG without a default
//	                         has value "" and hasValue false
//	  heredocs      []{name, content}
//	  commands      []command  RUN (and CMD, ENTRYPOINT, HEALTHCHECK CMD)
//	                         split into simple shell commands
//	  startLine, endLine  int  1-based lines in the file
//	  original      string   the instruction's source text
//	  ignore        []string check IDs named by "# bulkhead:ignore:ID[,ID]"
//	                         comments just before the instruction
//	command
//	  args          []string argv after leading VAR=value assignments,
//	                         quotes removed ("$VAR" kept as written)
//	  assigns       []string the leading VAR=value assignments
//	  pipeline      int      commands joined by | share a non-zero id
//	  pipePos       int      position inside that pipeline (0-based)
//	  pipeTo        []string the argv of the next command in the pipe
//
// A CEL check sees one variable, "file", holding file. For example, "no
// stage may RUN npm install without --ignore-scripts" is
//
//	file.stages.exists(s, s.instructions.exists(i, i.cmd == "run" &&
//	  i.commands.exists(c, size(c.args) > 1 && c.args[0] == "npm" &&
//	    c.args[1] == "install" && !("--ignore-scripts" in c.args))))
//
// # Inline ignores
//
// A comment "# bulkhead:ignore:BH-DF-008" (several IDs comma-separated) on
// the lines right before an instruction marks that instruction's findings of
// those checks as suppressed. File-wide checks (no USER, no HEALTHCHECK)
// report on the final stage's FROM line, so their ignore goes above it.
package dockerfile
