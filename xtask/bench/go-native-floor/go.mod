module plugcheck.dev/bench/go-native-floor

go 1.19

require plugcheck.dev/abi v1.0.0

replace plugcheck.dev/abi => ../../../plugins/abi/go
