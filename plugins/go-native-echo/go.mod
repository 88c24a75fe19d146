module plugcheck.dev/go-native-echo

go 1.19

require plugcheck.dev/abi v1.0.0

// The contract this plugin is built against must be the very copy its host
// was built with: Go refuses a plugin whose shared packages differ. Point
// this at plugcheck's plugins/abi/go (or your host's copy).
replace plugcheck.dev/abi => ../abi/go
