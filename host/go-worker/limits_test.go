package main

import (
	"encoding/json"
	"os"
	"testing"
)

// The bounds are the golden ones both workers are tested against: a
// change here alone, or in the Rust worker alone, fails a test.
func TestTheBoundsAreTheGoldenOnes(t *testing.T) {
	data, err := os.ReadFile("../protocol/limits.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string]int64
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	ours := map[string]int64{
		"log_lines_kept":          logLinesKept,
		"log_line_bytes":          logLineBytes,
		"method_name_bytes":       methodNameBytes,
		"methods":                 methods,
		"rejections_kept":         rejectionsKept,
		"methods_listed":          methodsListed,
		"plugin_string_bytes":     pluginStringBytes,
		"channel_line_bytes":      channelLineBytes,
		"exit_channel_lost":       exitChannelLost,
		"inline_call_input_bytes": inlineCallInputBytes,
	}
	for name, value := range ours {
		if golden[name] != value {
			t.Errorf("`%s` is %d in limits.go, %d in host/protocol/limits.json: change both, and host/src/worker/limits.rs", name, value, golden[name])
		}
	}
	for name := range golden {
		if _, ok := ours[name]; !ok {
			t.Errorf("limits.json has `%s`, which limits.go does not hold", name)
		}
	}
}
