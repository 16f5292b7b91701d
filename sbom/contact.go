package sbom

import (
	"strings"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Contact is a maintainer or vendor split into its parts.
type Contact struct {
	Name  string
	Email string
	// Organization is true for vendors and for team addresses ("Debian Bash
	// Maintainers", "Ubuntu Developers"), false for a person.
	Organization bool
}

// orgWords mark a maintainer name as a team or company rather than a person.
// Distribution maintainer fields use these consistently (Debian's "... Team",
// "... Maintainers", "... Group"; Ubuntu's "Ubuntu Developers").
var orgWords = []string{
	"maintainers", "maintainer", "team", "developers", "project", "group", "community",
	"foundation", "packagers", "strike force", "inc", "inc.", "ltd", "ltd.", "llc", "gmbh",
	"corporation", "corp", "corp.", "organization", "organisation", "consortium",
}

// ParseMaintainer parses a package's Maintainer field. dpkg and apk write
// "Name <email>"; rpm's vendor is a bare organisation name ("CentOS",
// "Red Hat, Inc."). It reports false when there is nothing usable.
func ParseMaintainer(p *inventory.Package) (Contact, bool) {
	s := strings.TrimSpace(p.Maintainer)
	if s == "" || strings.ContainsAny(s, "\n\r") {
		return Contact{}, false
	}
	var c Contact
	if i := strings.LastIndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		c.Name = strings.TrimSpace(s[:i])
		c.Email = strings.TrimSpace(s[i+1 : len(s)-1])
		if !strings.Contains(c.Email, "@") || strings.ContainsAny(c.Email, "<> ()") {
			return Contact{}, false
		}
	} else {
		if strings.ContainsAny(s, "<>@") {
			return Contact{}, false
		}
		c.Name = s
	}
	c.Name = strings.Trim(c.Name, `"`)
	if c.Name == "" && c.Email == "" {
		return Contact{}, false
	}
	c.Organization = p.Type == inventory.TypeRPM || isOrgName(c.Name)
	return c, true
}

func isOrgName(name string) bool {
	low := " " + strings.ToLower(strings.ReplaceAll(name, ",", " ")) + " "
	for _, w := range orgWords {
		if strings.Contains(low, " "+w+" ") {
			return true
		}
	}
	return false
}

// SPDX renders the contact in the SPDX creator grammar: it returns the type
// ("Person" or "Organization") and "name (email)". ok is false when the name
// cannot be written in that grammar (it has parentheses, or is empty).
func (c Contact) SPDX() (typ, value string, ok bool) {
	if c.Name == "" || strings.ContainsAny(c.Name, "()") {
		return "", "", false
	}
	typ = "Person"
	if c.Organization {
		typ = "Organization"
	}
	value = c.Name
	if c.Email != "" {
		value += " (" + c.Email + ")"
	}
	return typ, value, true
}
