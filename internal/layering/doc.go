// Package layering holds no code: its test reads the module's import graph
// (go list) and fails when a package depends on a layer above it, such as
// config/ on policy/, or a checker on the registry client, rpm or SQLite.
package layering
