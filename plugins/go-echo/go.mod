module plugcheck.dev/go-echo

go 1.19
