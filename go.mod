module github.com/bulkhead-sec/bulkhead

go 1.26.8

require (
	github.com/CycloneDX/cyclonedx-go v0.12.0 // indirect
	github.com/anchore/go-rpmdb v0.2.2 // indirect
	github.com/github/go-spdx/v2 v2.8.0 // indirect
	github.com/google/go-containerregistry v0.22.1 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/package-url/packageurl-go v0.1.7 // indirect
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3 // indirect
	github.com/spdx/tools-golang v0.5.7 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/spf13/pflag v1.0.10 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
	golang.org/x/text v0.14.0 // indirect
)
