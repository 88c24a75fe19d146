// The floor of `cargo xtask bench`'s Go-native line: the least any Go host
// does with a Go-native plugin in a fresh process — plugin.Open, Lookup of
// `Plugin`, one call — so the suite's cost is read against it.
package main

import (
	"fmt"
	"os"
	"plugin"

	plugcheck "plugcheck.dev/abi"
)

func main() {
	plug, err := plugin.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	symbol, err := plug.Lookup("Plugin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	info := (*symbol.(*plugcheck.Plugin)).Info()
	if info.Name == "" {
		os.Exit(1)
	}
}
