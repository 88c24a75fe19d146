// Package plugcheck is the contract of a Go-native plugin: a package built
// with `go build -buildmode=plugin` and opened by a Go host with
// plugin.Open. The plugin's main package exports
//
//	var Plugin plugcheck.Plugin = …
//
// and the host reaches everything else through it. Go itself refuses a
// plugin built by another Go release, or against another version of any
// package the host shares with it — this one included — so host and
// plugin must be built from the same copy of this package.
package plugcheck

// The contract version a plugin was built against. A host accepts a plugin
// whose major equals its own and whose minor is not newer than its own.
const ABIMajor, ABIMinor = 1, 0

// Method is a named entry point a plugin registers during Init. It must not
// keep `in` after it returns.
type Method func(in []byte) ([]byte, error)

// Host is what a plugin is given at Init.
type Host interface {
	// Log writes a line to the host's log; level 1 is error … 5 trace.
	Log(level int, message string)
	// Register makes a method callable by name. Only during Init.
	Register(name string, m Method) error
}

// Info says what the plugin is.
type Info struct {
	// Name is non-empty; Version is the plugin's own semver.
	Name, Version string
	// The contract version the plugin was built against: set them from
	// ABIMajor and ABIMinor.
	ABIMajor, ABIMinor uint16
}

// Plugin is what a plugin's main package exports as `Plugin`.
type Plugin interface {
	Info() Info
	// Init registers the plugin's methods. It may be called again after
	// Shutdown (a host restarts a plugin that way: Go never unloads one).
	Init(host Host) error
	// Shutdown stops every goroutine the plugin started.
	Shutdown() error
}

// Stateful is implemented by a plugin whose state moves to its next version
// on hot reload: the old version's SaveState feeds the new one's
// RestoreState.
type Stateful interface {
	SaveState() ([]byte, error)
	RestoreState(state []byte) error
}
