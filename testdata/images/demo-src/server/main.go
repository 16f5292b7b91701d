// Command server is the demo image's application: a tiny program that
// depends on an old golang.org/x/text, so scans have a Go module to report.
package main

import (
	"fmt"
	"os"

	"golang.org/x/text/language"
)

func main() {
	tag, err := language.Parse(os.Getenv("LANG_TAG"))
	fmt.Println(tag, err)
}
