package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

type shape struct {
	name                               string
	batch                              int
	vocab, dim, layers, heads, kv, ffn int
}

var shapes = []shape{
	{"113m", 8, 260, 768, 12, 12, 12, 3072},
	{"106m", 4, 49152, 576, 30, 9, 3, 1536},
}

// measured is one process's speed and peak resident memory.
type measured struct {
	tokS  float64
	rssMB float64
	err   error
}

func runProc(env []string, name string, args ...string) measured {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return measured{err: fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)}
	}
	m := measured{}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.rssMB = float64(ru.Maxrss) / 1024 // Linux reports KiB
	}
	if s := regexp.MustCompile(`tokens_per_sec=([0-9.]+)`).FindSubmatch(out); s != nil {
		m.tokS, _ = strconv.ParseFloat(string(s[1]), 64)
	} else if s := regexp.MustCompile(`([0-9.]+) tokens/s`).FindSubmatch(out); s != nil {
		m.tokS, _ = strconv.ParseFloat(string(s[1]), 64)
	} else {
		m.err = fmt.Errorf("%s printed no speed:\n%s", name, out)
	}
	return m
}

// trainOptions are the flags of the training rows.
type trainOptions struct {
	trainBin, python string
	threads          []int
	steps            int
	shape            string
}

// runTraining prints the training rows: for each shape and thread count, PyTorch full, the engine's full, and
// LoRA over an F32 and an F16 base. It reports whether every run produced a figure.
func runTraining(o trainOptions) bool {
	fmt.Printf("%-6s %-3s %-22s %10s %9s %8s %s\n", "shape", "thr", "run", "tok/s", "peak MiB", "ratio", "target")
	failed := false
	for _, s := range shapes {
		if o.shape != "" && s.name != o.shape {
			continue
		}
		for _, th := range o.threads {
			common := []string{"-shape", s.name, "-batch", strconv.Itoa(s.batch), "-steps", strconv.Itoa(o.steps), "-threads", strconv.Itoa(th), "-no-ref"}
			// OpenBLAS and OpenMP ignore torch.set_num_threads: pin their pools to the same thread count.
			n := strconv.Itoa(th)
			refEnv := append(os.Environ(), "OPENBLAS_NUM_THREADS="+n, "OMP_NUM_THREADS="+n, "MKL_NUM_THREADS="+n)
			ref := runProc(refEnv, o.python, "bench/train/reference.py", "--threads", strconv.Itoa(th), "--steps", strconv.Itoa(o.steps),
				"--vocab", strconv.Itoa(s.vocab), "--dim", strconv.Itoa(s.dim), "--layers", strconv.Itoa(s.layers),
				"--heads", strconv.Itoa(s.heads), "--kv-heads", strconv.Itoa(s.kv), "--ffn", strconv.Itoa(s.ffn),
				"--ctx", "128", "--batch", strconv.Itoa(s.batch))
			full := runProc(nil, o.trainBin, common...)
			lora := runProc(nil, o.trainBin, append(common, "-method", "lora")...)
			lora16 := runProc(nil, o.trainBin, append(common, "-method", "lora", "-type", "f16")...)
			row := func(name string, m measured, ratio float64, target string) {
				if m.err != nil {
					failed = true
					fmt.Printf("%-6s %-3d %-22s FAILED: %v\n", s.name, th, name, m.err)
					return
				}
				r := ""
				if ratio > 0 {
					r = fmt.Sprintf("%7.2fx", ratio)
				}
				fmt.Printf("%-6s %-3d %-22s %10.1f %9.0f %8s %s\n", s.name, th, name, m.tokS, m.rssMB, r, target)
			}
			row("pytorch full", ref, 0, "")
			row("evomerge full", full, div(full.tokS, ref.tokS), ">= 1.5x pytorch")
			row("evomerge lora f32", lora, div(lora.tokS, full.tokS), ">= 2.5x full")
			row("evomerge lora f16 base", lora16, div(lora16.tokS, full.tokS), ">= 2.5x full")
		}
	}
	return !failed
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
