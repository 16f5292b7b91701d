// Package kmsinterop holds the tests of signing keys kept in a KMS: bulkhead
// and the real cosign sign and verify with awskms:// keys on a real
// AWS-KMS-compatible server (nsmithuk/local-kms, internal/kmstest) on
// loopback, through every command and policy that takes a key. It has no
// code of its own.
package kmsinterop
