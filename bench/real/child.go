package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/evomerge/evomerge/internal/llm"
)

// engineChild measures the engine on one workload file in its own process (so its peak RSS is its own) and
// prints one JSON line.
func engineChild(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: bench-real engine-child workload.json")
		return 2
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var w workload
	if err := json.Unmarshal(b, &w); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", args[0], err)
		return 1
	}
	r, err := measureEngine(w)
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine:", err)
		return 1
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	return 0
}

func measureEngine(w workload) (result, error) {
	t0 := time.Now()
	m, err := llm.Load(w.Model, llm.Options{Threads: w.Threads, Window: w.Context, Device: w.Device, CUDALibrary: w.CUDALibrary})
	if err != nil {
		return result{}, err
	}
	defer m.Close()
	r := result{LoadS: time.Since(t0).Seconds(), Engine: "evomerge " + m.Backend().Name()}
	reps := max(w.Reps, 1)
	// One short warm-up (weights paged in, buffers allocated), then each measurement is the mean over reps runs.
	if _, err := m.GreedyTokens(w.Prompt[:32], 3); err != nil {
		return r, err
	}
	timed := func(f func() error) (float64, error) {
		t := time.Now()
		for i := 0; i < reps; i++ {
			if err := f(); err != nil {
				return 0, err
			}
		}
		return time.Since(t).Seconds() / float64(reps), nil
	}
	pp, err := timed(func() error { _, err := m.GreedyTokens(w.Prompt, 1); return err })
	if err != nil {
		return r, err
	}
	r.PromptTokS = float64(len(w.Prompt)) / pp
	sc, err := timed(func() error {
		scores, err := m.ScoreTokens(w.ScoreContext, w.ScoreConts)
		r.Checksum = 0
		for _, s := range scores {
			r.Checksum += s.LogProb
		}
		return err
	})
	if err != nil {
		return r, err
	}
	r.ScoreItemsS = 1 / sc
	// Generation: the prompt plus GenNew greedy steps, less the prompt alone.
	head, err := timed(func() error { _, err := m.GreedyTokens(w.GenPrompt, 1); return err })
	if err != nil {
		return r, err
	}
	full, err := timed(func() error { _, err := m.GreedyTokens(w.GenPrompt, 1+w.GenNew); return err })
	if err != nil {
		return r, err
	}
	r.GenTokS = float64(w.GenNew) / (full - head)
	return r, nil
}
