module plugcheck.dev/abi

go 1.19
