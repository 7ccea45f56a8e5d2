module example.com/store-driver

go 1.26.0

require github.com/strategyops/strategy-operator v0.0.0

require golang.org/x/sys v0.48.0 // indirect

// The module is used from this checkout; a program of your own requires a released version.
replace github.com/strategyops/strategy-operator => ../..
