module github.com/tollgate/tollgate/bench/dynmod

go 1.27.0

toolchain go1.27.4

require github.com/tollgate/tollgate v0.0.0

require (
	github.com/lestrrat-go/dsig v1.4.0 // indirect
	github.com/lestrrat-go/jwx/v4 v4.6.0 // indirect
	github.com/lestrrat-go/option/v3 v3.0.0-alpha1 // indirect
)

replace github.com/tollgate/tollgate => ../..
