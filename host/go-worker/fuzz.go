package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// sharedBy shares the calls among many methods, as the Rust worker does
// (SHARED_BY in host/src/cases/crash.rs): up to sharedBy methods get
// the whole series, more share the calls of that many evenly, each getting
// at least the first input.
const (
	sharedBy      = 64
	listedMethods = 5
)

// inputsPerMethod is how many of a series of `inputs` each of `methods`
// methods gets.
func inputsPerMethod(methods, inputs int) int {
	if methods < 1 {
		methods = 1
	}
	shared := sharedBy * inputs / methods
	if shared < 1 {
		shared = 1
	}
	if shared > inputs {
		shared = inputs
	}
	return shared
}

// maxSeriesBytes bounds the series file read: the parent writes about
// 6 MB for the default 256 inputs.
const maxSeriesBytes = 512 << 20

// fuzzMethods calls every registered method with each input of the seeded
// series. The parent generates the series (so it is the same bytes the
// Rust worker uses, on every platform) and hands it over as a file: a
// header line `plugcheck-fuzz-series 1 DIGEST COUNT`, then per input a line
// saying what it is, and its bytes after a little-endian uint32 length. An error return is an answer;
// a panic is recovered and fails the case with the input; a crash or a
// hang ends the worker, and the parent pins it on the last call announced.
func (s *session) fuzzMethods() outcome {
	if s.settings.FuzzSeries == nil {
		return skipped("the parent sent no fuzz inputs: update plugcheck")
	}
	digest, inputs, whats, err := readSeries(*s.settings.FuzzSeries)
	if err != nil {
		return fail(fmt.Sprintf("cannot read the fuzz inputs the parent wrote: %v", err))
	}
	// A fresh instance, as in the Rust worker, so the calls announced from
	// here on are every call it gets since Init: a finding's replay is
	// exactly that sequence (a contract plugin may be initialised again
	// after Shutdown).
	if s.current != nil {
		if o := s.current.shutdown(); o != nil {
			return fail("could not start a fresh instance to fuzz: " + o.Reason)
		}
	}
	if failed := s.ensureInit(); failed != nil {
		return failed.outcome
	}
	// Every method but a 1.1 wait probe, which would only wait.
	methods := s.current.host.callableNames()
	if len(methods) == 0 {
		return skipped("the plugin registers no method: there is nothing to call")
	}
	seed := fmt.Sprintf("%#x", s.settings.Seed)
	perMethod := inputsPerMethod(len(methods), len(inputs))
	record := &fuzz{Seed: seed, Inputs: uint32(perMethod), Methods: ptr(uint32(len(methods)))}
	// Like the Rust worker: round-robin (input i to every method before
	// input i+1), stopping at half the case timeout, and saying how far
	// it got.
	started := time.Now()
	budget := time.Duration(s.settings.FuzzBudgetMs) * time.Millisecond
	rounds, cutAt := 0, -1
rounds:
	for index := 0; index < perMethod; index++ {
		input := inputs[index]
		for at, name := range methods {
			if time.Since(started) > budget {
				cutAt = at
				break rounds
			}
			s.announce(name, uint32(index))
			// A copy per call, as the Rust worker makes: a method that
			// writes into its input must not change the next method's.
			r, p := s.current.host.invoke(s.current.host.lookup(name), fresh(input), callSettings{})
			if p != nil {
				record.Input = &fuzzInput{Method: name, Index: uint32(index), Size: uint64(len(input)), What: whats[index]}
				o := failPanic(fmt.Sprintf("`%s` panicked on fuzz input #%d (%s; seed %s)", name, index, whats[index], seed), p)
				o.Detail.Fuzz = record
				return o
			}
			if r.err != nil {
				record.Refused++
			}
		}
		rounds = index + 1
	}
	record.Inputs = uint32(rounds)
	count := len(methods)
	got := fmt.Sprintf("each of %d method(s) got %d input(s)", count, rounds)
	if perMethod < len(inputs) {
		got = fmt.Sprintf("each of %d method(s) got the first %d of %d input(s) (more than %d methods share the calls of %d)", count, rounds, len(inputs), sharedBy, sharedBy)
	}
	if cutAt > 0 {
		got = fmt.Sprintf("the first %d method(s) in name order got %d input(s), the other %d got %d", cutAt, rounds+1, count-cutAt, rounds)
	}
	refused := "every call returned no error"
	if record.Refused > 0 {
		refused = fmt.Sprintf("%d call(s) returned an error, which is allowed", record.Refused)
	}
	foundNothing := fmt.Sprintf("%s (seed %s): none crashed, hung or panicked; %s", got, seed, refused)
	if cutAt < 0 {
		if rounds == len(inputs) {
			// The digest is the whole series': it does not describe a part.
			record.Digest = ptr(digest)
		}
		o := pass(foundNothing)
		o.Detail.Fuzz = record
		return o
	}
	var o outcome
	if rounds == 0 {
		never := methods[cutAt:]
		listed := make([]string, 0, listedMethods)
		for _, name := range first(never, listedMethods) {
			listed = append(listed, "`"+name+"`")
		}
		more := ""
		if len(never) > listedMethods {
			more = fmt.Sprintf(" and %d more", len(never)-listedMethods)
		}
		// A method never called was not verified: as in the Rust worker,
		// the case fails rather than pass on it.
		o = fail(fmt.Sprintf("%d of %d method(s) were never called: the time budget (%d ms, half the case timeout) ran out first; %s; not called: %s%s; raise --timeout to call them all",
			len(never), count, s.settings.FuzzBudgetMs, foundNothing, strings.Join(listed, ", "), more))
	} else {
		o = warning(fmt.Sprintf("%s; stopped after %d of %d inputs per method, when the time budget (%d ms, half the case timeout) ran out: raise --timeout to feed them all",
			foundNothing, rounds, perMethod, s.settings.FuzzBudgetMs))
	}
	o.Detail.Fuzz = record
	return o
}

// readSeries reads the parent's series file: its digest, the inputs and
// what each is.
func readSeries(path string) (string, [][]byte, []string, error) {
	file, err := os.Open(path)
	if err != nil {
		return "", nil, nil, err
	}
	defer file.Close()
	reader := bufio.NewReader(io.LimitReader(file, maxSeriesBytes))
	header, err := reader.ReadString('\n')
	if err != nil {
		return "", nil, nil, fmt.Errorf("no header: %w", err)
	}
	fields := strings.Fields(header)
	if len(fields) != 4 || fields[0] != "plugcheck-fuzz-series" || fields[1] != "1" {
		return "", nil, nil, fmt.Errorf("not a series file of this version: %q", clip(header, 80))
	}
	count, err := strconv.ParseUint(fields[3], 10, 32)
	if err != nil {
		return "", nil, nil, fmt.Errorf("bad input count %q", clip(fields[3], 20))
	}
	inputs := make([][]byte, 0, count)
	whats := make([]string, 0, count)
	for i := uint64(0); i < count; i++ {
		what, err := reader.ReadString('\n')
		if err != nil {
			return "", nil, nil, fmt.Errorf("input #%d: %w", i, err)
		}
		var size uint32
		if err := binary.Read(reader, binary.LittleEndian, &size); err != nil {
			return "", nil, nil, fmt.Errorf("input #%d: %w", i, err)
		}
		input := make([]byte, size)
		if _, err := io.ReadFull(reader, input); err != nil {
			return "", nil, nil, fmt.Errorf("input #%d: %w", i, err)
		}
		inputs = append(inputs, input)
		whats = append(whats, strings.TrimSuffix(what, "\n"))
	}
	return fields[2], inputs, whats, nil
}
