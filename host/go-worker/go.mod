module plugcheck.dev/go-worker

go 1.19

require plugcheck.dev/abi v1.0.0

replace plugcheck.dev/abi => ../../plugins/abi/go
