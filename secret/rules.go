// Package secret finds credentials in files, image layers and config
// values: provider-specific token formats (AWS, GCP, Azure, GitHub, GitLab,
// Slack, Stripe, Twilio, SendGrid, npm, PyPI), private keys, JWTs, URLs with
// passwords, and a keyword + high-entropy generic rule.
//
// Scanning is one pass per file in the common case: a case-insensitive
// keyword automaton finds which rules could match at all, and only those
// rules' expressions run. Binary files (a NUL byte in the first 8 KB) and
// files over a size bound are skipped. Secret values never leave the package
// whole: findings carry only a short prefix (see Redact).
package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"sync"

	"github.com/bulkhead-sec/bulkhead/finding"
)

// Rule is one kind of secret.
type Rule struct {
	ID       string
	Title    string
	Severity finding.Severity
	// Keywords (lower case): the rule runs only on content containing one.
	Keywords []string
	// Regex finds candidates; its first capture group (or the whole match)
	// is the secret value.
	Regex *regexp.Regexp
	// MinEntropy is the least Shannon entropy (bits per character) of the
	// value; 0 turns the test off.
	MinEntropy float64
	// Valid, when set, must accept the value (format checks beyond a regex).
	Valid func(value string) bool
}

// Rules are the built-in rules, compiled on first use (not at start-up:
// every bulkhead command links this package).
var Rules = sync.OnceValue(func() []*Rule {
	return []*Rule{
		{ID: "aws-access-key-id", Title: "AWS access key ID", Severity: finding.Critical,
			Keywords: []string{"akia", "asia", "abia", "acca", "a3t"},
			Regex:    regexp.MustCompile(`\b((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16})\b`)},
		{ID: "aws-secret-access-key", Title: "AWS secret access key", Severity: finding.Critical,
			Keywords: []string{"aws"},
			Regex:    regexp.MustCompile(`(?i)aws.{0,20}?(?:secret|private)?.{0,10}?(?:access)?.{0,5}?key.{0,10}?['"]?\s*(?:=|:|=>|:=)\s*['"]?([A-Za-z0-9/+]{40})\b`),
			Valid:    func(v string) bool { return entropy(v) > 4.0 }},
		{ID: "gcp-service-account", Title: "GCP service account key", Severity: finding.Critical,
			Keywords: []string{"private_key_id"},
			Regex:    regexp.MustCompile(`"private_key_id"\s*:\s*"([0-9a-f]{40})"`)},
		{ID: "gcp-api-key", Title: "Google API key", Severity: finding.High,
			Keywords: []string{"aiza"},
			Regex:    regexp.MustCompile(`\b(AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)`)},
		{ID: "azure-storage-key", Title: "Azure storage account key", Severity: finding.Critical,
			Keywords: []string{"accountkey"},
			Regex:    regexp.MustCompile(`(?i)AccountKey\s*=\s*([A-Za-z0-9+/]{86}==)`)},
		{ID: "azure-client-secret", Title: "Azure AD client secret", Severity: finding.Critical,
			Keywords: []string{"q~"},
			Regex:    regexp.MustCompile(`(?:^|[^A-Za-z0-9_~.\-])([A-Za-z0-9_~.\-]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34})(?:[^A-Za-z0-9_~.\-]|$)`)},
		{ID: "github-token", Title: "GitHub token", Severity: finding.Critical,
			Keywords: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"},
			Regex:    regexp.MustCompile(`\b(gh[pousr]_[A-Za-z0-9]{36,251})\b`)},
		{ID: "github-fine-grained-pat", Title: "GitHub fine-grained personal access token", Severity: finding.Critical,
			Keywords: []string{"github_pat_"},
			Regex:    regexp.MustCompile(`\b(github_pat_[A-Za-z0-9_]{82})\b`)},
		{ID: "gitlab-token", Title: "GitLab personal access token", Severity: finding.Critical,
			Keywords: []string{"glpat-"},
			Regex:    regexp.MustCompile(`\b(glpat-[A-Za-z0-9_\-]{20,}(?:\.[A-Za-z0-9_\-.]+)?)`)},
		{ID: "slack-token", Title: "Slack token", Severity: finding.High,
			Keywords: []string{"xox"},
			Regex:    regexp.MustCompile(`\b(xox[abposre]-[0-9A-Za-z]{8,}-[0-9A-Za-z\-]{8,})`)},
		{ID: "slack-webhook", Title: "Slack incoming webhook", Severity: finding.High,
			Keywords: []string{"hooks.slack.com"},
			Regex:    regexp.MustCompile(`(https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_]{8,}/[A-Za-z0-9_]{8,}/[A-Za-z0-9_]{16,})`)},
		{ID: "stripe-key", Title: "Stripe secret key", Severity: finding.Critical,
			Keywords: []string{"sk_live_", "sk_test_", "rk_live_", "rk_test_"},
			Regex:    regexp.MustCompile(`\b((?:sk|rk)_(?:live|test)_[0-9A-Za-z]{24,99})\b`)},
		{ID: "twilio-api-key", Title: "Twilio API key", Severity: finding.High,
			Keywords: []string{"sk"},
			Regex:    regexp.MustCompile(`\b(SK[0-9a-f]{32})\b`),
			Valid:    func(v string) bool { return entropy(v[2:]) > 3.0 }},
		{ID: "twilio-auth-token", Title: "Twilio auth token", Severity: finding.High,
			Keywords: []string{"twilio"},
			Regex:    regexp.MustCompile(`(?i)twilio.{0,20}?(?:auth|token|secret).{0,10}?['"]?\s*(?:=|:|=>|:=)\s*['"]?([0-9a-f]{32})\b`)},
		{ID: "sendgrid-api-key", Title: "SendGrid API key", Severity: finding.High,
			Keywords: []string{"sg."},
			Regex:    regexp.MustCompile(`\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})\b`)},
		{ID: "npm-token", Title: "npm access token", Severity: finding.Critical,
			Keywords: []string{"npm_"},
			Regex:    regexp.MustCompile(`\b(npm_[A-Za-z0-9]{36})\b`)},
		{ID: "npmrc-auth-token", Title: "npm registry auth token in .npmrc", Severity: finding.Critical,
			Keywords: []string{"_authtoken"},
			Regex:    regexp.MustCompile(`_authToken\s*=\s*([A-Za-z0-9_\-.+/=]{20,})`)},
		{ID: "pypi-token", Title: "PyPI upload token", Severity: finding.Critical,
			Keywords: []string{"pypi-ageichlwas5vcmc"},
			Regex:    regexp.MustCompile(`\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})`)},
		{ID: "private-key", Title: "Private key", Severity: finding.Critical,
			Keywords: []string{"private key"},
			Regex:    regexp.MustCompile(`(-----BEGIN[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----)(?:\s|\\[nr])*(?:[A-Za-z0-9-]+: [^\n\\]*(?:\s|\\[nr])+)*[A-Za-z0-9+/=]{32,}`)},
		{ID: "jwt", Title: "JSON Web Token", Severity: finding.Medium,
			Keywords: []string{"eyj"},
			Regex:    regexp.MustCompile(`\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,})`),
			Valid:    validJWT},
		{ID: "url-password", Title: "Password in a URL", Severity: finding.High,
			Keywords: []string{"://"},
			Regex:    regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s:@/?#'"\\]{1,128}:([^\s:@/?#'"\\]{3,128})@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*`),
			Valid:    func(v string) bool { return !placeholder(v) }},
		{ID: "generic-secret", Title: "Generic secret (credential keyword with a high-entropy value)", Severity: finding.High,
			Keywords:   []string{"password", "passwd", "secret", "token", "api_key", "apikey", "api-key", "access_key", "accesskey", "auth_key", "private_key", "client_secret", "credential"},
			Regex:      regexp.MustCompile(`(?i)(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?key|private[_-]?key|credentials?)[A-Za-z0-9_\-]{0,20}['"]?\s{0,3}(?:=|:|=>|:=)\s{0,3}['"]?([A-Za-z0-9+/_\-.~=!@#%^*]{16,128})(?:['"\s,;]|$)`),
			MinEntropy: 3.8,
			Valid:      genericValue},
	}
})

// multiline rules match across lines (a PEM key's header and body).
func (r *Rule) multiline() bool { return r.ID == "private-key" }

// entropy is the Shannon entropy of s in bits per character.
func entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h := 0.0
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

func validJWT(v string) bool {
	head, _, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(head, "="))
	if err != nil {
		return false
	}
	var h map[string]any
	if json.Unmarshal(b, &h) != nil {
		return false
	}
	_, alg := h["alg"]
	return alg
}

// placeholder reports whether a value is a stand-in, not a credential:
// variables, templates, masks (a value Redact already hid, "ghp_R8*****")
// and the words people write in examples.
func placeholder(v string) bool {
	l := strings.ToLower(v)
	if strings.ContainsAny(v, "$%{}<>[]()") || strings.Trim(l, "*x.-_") == "" || strings.Contains(v, "*****") {
		return true
	}
	for _, w := range []string{"password", "passwd", "secret", "changeme", "example", "placeholder", "redacted", "your", "user", "pass", "token", "dummy", "foobar", "test"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// genericValue accepts values that look machine-generated: letters and
// digits mixed, not a path, identifier, version or placeholder.
func genericValue(v string) bool {
	if placeholder(v) || strings.Count(v, "/") > 1 || strings.Count(v, ".") > 2 {
		return false
	}
	var lower, upper, digit bool
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= '0' && c <= '9':
			digit = true
		}
	}
	return digit && (lower || upper)
}

// SensitiveName reports whether a variable name says it holds a credential
// (DB_PASSWORD, API_KEY, githubToken), not a reference to one
// (PASSWORD_FILE, SECRET_NAME) or a public key ID (GPG_KEYS).
func SensitiveName(name string) bool {
	toks := nameTokens(name)
	if len(toks) == 0 {
		return false
	}
	switch toks[len(toks)-1] {
	case "FILE", "PATH", "DIR", "FILENAME", "NAME", "LENGTH", "LEN", "TYPE", "URL", "URI", "HOST", "PORT", "ID", "ENDPOINT", "MODE", "METHOD", "POLICY", "FORMAT", "VERSION", "TTL", "EXPIRY", "HEADER", "PREFIX", "REF", "KEYS":
		return false
	}
	for i, t := range toks {
		switch t {
		case "PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "CREDENTIAL", "CREDENTIALS", "PRIVATEKEY", "ACCESSKEY", "SECRETKEY":
			return true
		case "KEY":
			if i > 0 {
				switch toks[i-1] {
				case "API", "ACCESS", "SECRET", "PRIVATE", "AUTH", "ENCRYPTION", "MASTER", "SIGNING":
					return true
				}
			}
		}
	}
	return false
}

// nameTokens splits SNAKE_CASE, kebab-case and camelCase into upper-case
// words.
func nameTokens(name string) []string {
	var toks []string
	var cur []byte
	flush := func() {
		if len(cur) > 0 {
			toks = append(toks, strings.ToUpper(string(cur)))
			cur = cur[:0]
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '-' || c == '.' || c == ' ':
			flush()
		case c >= 'A' && c <= 'Z' && i > 0 && name[i-1] >= 'a' && name[i-1] <= 'z':
			flush()
			cur = append(cur, c)
		default:
			cur = append(cur, c)
		}
	}
	flush()
	return toks
}

// Redact keeps a short prefix of a secret so a reader can tell which one it
// was, and hides the rest.
func Redact(v string) string {
	keep := 4
	if strings.HasPrefix(v, "-----BEGIN") {
		if i := strings.Index(v[5:], "-----"); i >= 0 {
			return v[:i+10] + "*****"
		}
	}
	for _, p := range []string{"github_pat_", "glpat-", "sk_live_", "sk_test_", "rk_live_", "rk_test_", "pypi-", "npm_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xoxb-", "xoxp-", "xoxa-", "xoxo-", "xoxs-", "xoxr-", "xoxe-", "SG.", "AKIA", "ASIA", "AIza", "https://hooks.slack.com/"} {
		if strings.HasPrefix(v, p) {
			keep = len(p) + 2
			break
		}
	}
	if keep == 4 || len(v) <= keep+4 {
		keep = min(4, len(v)/4)
	}
	return v[:keep] + strings.Repeat("*", 5)
}

// lineOf returns the 1-based line of byte offset off.
func lineOf(data []byte, off int) int {
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}
