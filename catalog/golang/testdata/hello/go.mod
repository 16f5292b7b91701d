module example.com/hello

go 1.22

require (
	example.com/local v0.0.0
	github.com/dgrijalva/jwt-go v3.2.0+incompatible
	github.com/google/uuid v1.6.0
	github.com/pkg/errors v0.9.1
	golang.org/x/xerrors v0.0.0-20220907171357-04be3eba64a2
)

require github.com/golang-jwt/jwt v3.2.2+incompatible // indirect

// An older release in place of the required one.
replace github.com/pkg/errors => github.com/pkg/errors v0.8.1

// The maintained fork, as projects did for CVE-2020-26160.
replace github.com/dgrijalva/jwt-go => github.com/golang-jwt/jwt v3.2.1+incompatible

// Another version, for the required version only.
replace golang.org/x/xerrors v0.0.0-20220907171357-04be3eba64a2 => golang.org/x/xerrors v0.0.0-20200804184101-5ec99f83aff1

replace example.com/local => ./local
