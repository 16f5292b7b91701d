// Package local is a module replaced by a directory.
package local

// Name is printed by hello.
const Name = "local"
