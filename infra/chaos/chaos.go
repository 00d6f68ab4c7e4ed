package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/evomerge/evomerge/infra/devserver/ports"
	"github.com/evomerge/evomerge/internal/store"
	"github.com/evomerge/evomerge/workflows"
)

// Phases a kill can aim at.
const (
	PhaseFineTune = "fine-tune" // a fine-tune that has written a checkpoint
	PhaseMerge    = "merge"
	PhaseEvaluate = "evaluate"
)

// Options describe one run through the harness.
type Options struct {
	Bins Binaries
	// Dir holds the server database, logs, worker caches and scratch space.
	Dir string
	// StoreURL is the artifact store every worker uses (file:// or s3://;
	// S3 credentials come from the environment).
	StoreURL string
	Config   workflows.RunConfig
	// Kills: SIGKILLs of a worker while the run goes on; the first three aim
	// at a fine-tune past a checkpoint, a merge and an evaluation.
	Kills int
	// ServerRestarts: SIGKILL + restart of the server process, spread
	// between the kills.
	ServerRestarts int
	// Seed drives every chaos choice (moments, order, pauses).
	Seed uint64
	// FastFail reports a killed worker's running activities as failed (what
	// a node supervisor that saw the process die would do), so the retry
	// starts at once instead of after the activity's heartbeat timeout.
	FastFail bool
	// DiskFaults: times the work directory of one gpu worker (a tmpfs the
	// harness mounts, so it needs root) fills up for a few seconds, spread
	// between the kills.
	DiskFaults int
	// Threads per worker for ggml (1 keeps results comparable).
	Threads int
	// Log receives progress lines (nil: discarded).
	Log io.Writer
	// Timeout bounds the whole run (default 30 minutes).
	Timeout time.Duration
}

// Interrupted is one activity that was running when its worker was killed.
type Interrupted struct {
	Type       string `json:"type"`
	RunID      string `json:"run_id"`
	ActivityID string `json:"activity_id"`
	Attempt    int32  `json:"attempt"`
	// Elapsed: how long the killed attempt had been running.
	Elapsed time.Duration `json:"elapsed"`
	// Fine-tune: step reached (last heartbeat), step of the last checkpoint
	// written before the kill, the steps past it that were lost, and, when
	// the next attempt was the one that completed, the step it resumed at
	// (FineTuneOutput.ResumedFrom).
	Step        int  `json:"step,omitempty"`
	Checkpoint  int  `json:"checkpoint,omitempty"`
	ResumedFrom int  `json:"resumed_from,omitempty"`
	Redone      int  `json:"redone,omitempty"`
	Resumed     bool `json:"resumed"`
	// Finished: the killed attempt had already stored its result (the next
	// attempt returned it from the memo), so nothing was redone.
	Finished bool `json:"finished,omitempty"`
	// Evaluate: tasks finished at the kill (their scores are cached).
	TasksDone  int `json:"tasks_done,omitempty"`
	TasksTotal int `json:"tasks_total,omitempty"`
}

// Kill is one SIGKILL of a worker.
type Kill struct {
	N       int           `json:"n"`
	Phase   string        `json:"phase"`
	Worker  string        `json:"worker"`
	At      time.Duration `json:"at"`
	Running []Interrupted `json:"running"`
}

// Report is what a harness run observed.
type Report struct {
	WorkflowID string              `json:"workflow_id"`
	Result     workflows.RunResult `json:"result"`
	Winner     string              `json:"winner"`
	// Lineage: every model the run made ("#id gen N ref fitness status"),
	// so two runs are compared child by child, not only by their winner.
	Lineage        []string `json:"lineage"`
	Kills          []Kill   `json:"kills"`
	ServerRestarts int      `json:"server_restarts"`
	// WorkerExits: processes (workers, the server) that ended on their own
	// and were restarted by the harness's supervisor.
	WorkerExits    []string      `json:"worker_exits,omitempty"`
	Store          store.Report  `json:"store"`
	Elapsed        time.Duration `json:"elapsed"`
	CheckpointStep int           `json:"checkpoint_every"`
	// Activities: activities completed over the whole continue-as-new chain,
	// and Retries: attempts beyond the first that they took, by activity type
	// (read from the histories: a kill, a store outage or a full disk each
	// cost a retried attempt).
	// DiskFaults: windows in which a worker's work directory was full, for
	// DiskFull in total; ENOSPCAttempts: attempts that failed for it.
	DiskFaults        int            `json:"disk_faults"`
	DiskFull          time.Duration  `json:"disk_full"`
	ENOSPCAttempts    int            `json:"enospc_attempts"`
	Activities        int            `json:"activities"`
	RetriedActivities int            `json:"retried_activities"`
	Retries           map[string]int `json:"retries"`
}

// LostActivityTime is the running time of every attempt a kill ended.
func (r *Report) LostActivityTime() time.Duration {
	var d time.Duration
	for _, k := range r.Kills {
		for _, a := range k.Running {
			d += a.Elapsed
		}
	}
	return d
}

// RedoneSteps is the fine-tune steps lost and redone over all kills.
func (r *Report) RedoneSteps() (steps, fineTunes int) {
	for _, k := range r.Kills {
		for _, a := range k.Running {
			if a.Type == workflows.ActivityFineTune {
				steps += a.Redone
				fineTunes++
			}
		}
	}
	return steps, fineTunes
}

// KilledDuring counts kills that interrupted a running activity of a phase.
func (r *Report) KilledDuring(phase string) int {
	n := 0
	for _, k := range r.Kills {
		for _, a := range k.Running {
			if phaseOf(a.Type) == phase && (phase != PhaseFineTune || a.Checkpoint > 0) {
				n++
				break
			}
		}
	}
	return n
}

func phaseOf(activityType string) string {
	switch activityType {
	case workflows.ActivityFineTune:
		return PhaseFineTune
	case workflows.ActivityMerge:
		return PhaseMerge
	case workflows.ActivityEvaluate:
		return PhaseEvaluate
	}
	return strings.ToLower(activityType)
}

// WorkerNames are the harness's worker processes: two poll the cpu queue
// (merges, publishing, workflow tasks) and two the gpu queue (fine-tunes,
// evaluations) with --device cpu.
var WorkerNames = []string{"cpu-1", "cpu-2", "gpu-1", "gpu-2"}

// worker is one worker process polling some queues.
type worker struct {
	name, queues string
	workflows    bool
	p            *proc
	starts       int
	held         bool // being killed on purpose: the supervisor leaves it alone
}

type harness struct {
	o       Options
	log     io.Writer
	srv     *server
	workers map[string]*worker
	c       client.Client
	st      *store.Store
	wid     string
	begin   time.Time
	rng     *rand.Rand
	// dead: attempts a kill already ended; they stay pending until their
	// heartbeat times out and must not be counted (or aimed at) again.
	dead map[string]bool
	disk string // the tmpfs work directory of diskWorker (DiskFaults > 0)
	// srvHeld: the chaos loop is restarting the server; the supervisor waits.
	srvHeld bool
	aimed   map[string]int // kills aimed at each activity (runID/activityID)
	mu      sync.Mutex     // guards workers' processes against the kill loop
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.log, "chaos %6.1fs  %s\n", time.Since(h.begin).Seconds(), fmt.Sprintf(format, args...))
}

// Run starts a server, two cpu-queue and two gpu-queue workers as processes, starts
// the run through the starter process, applies the planned chaos, waits for
// the run to finish and verifies the store.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Minute
	}
	if o.Threads == 0 {
		o.Threads = 1
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	cfg, err := workflows.Prepare(o.Config)
	if err != nil {
		return nil, err
	}
	h := &harness{o: o, log: o.Log, wid: "evo-" + cfg.Name, begin: time.Now(),
		rng: rand.New(rand.NewPCG(o.Seed, 0x636861)), workers: map[string]*worker{}, dead: map[string]bool{}, aimed: map[string]int{}}
	if h.log == nil {
		h.log = io.Discard
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	port, err := ports.FreePort()
	if err != nil {
		return nil, err
	}
	h.srv = &server{bin: o.Bins.Server, db: filepath.Join(o.Dir, "temporal.db"), port: port,
		logPath: filepath.Join(o.Dir, "server.log")}
	if err := h.srv.start(ctx); err != nil {
		return nil, err
	}
	defer func() { _ = h.srv.p.kill() }()
	h.logf("server up at %s (pid %d)", h.srv.addr(), h.srv.p.cmd.Process.Pid)

	st, err := store.Open(ctx, o.StoreURL, store.Options{CacheDir: filepath.Join(o.Dir, "harness-cache")})
	if err != nil {
		return nil, fmt.Errorf("chaos: open store %s: %w", o.StoreURL, err)
	}
	h.st = st

	if o.DiskFaults > 0 {
		if h.disk, err = mountWorkDisk(o.Dir); err != nil {
			return nil, err
		}
		// Deferred before the workers' stop, so it runs after it.
		defer func() {
			if err := unmountDisk(h.disk); err != nil {
				h.logf("%v", err)
			}
		}()
	}
	// Two processes per queue, so a kill leaves the other one working. The
	// "gpu" workers poll the gpu queue but compute with --device cpu: this
	// harness runs where there is no GPU.
	for _, name := range WorkerNames {
		w := &worker{name: name, queues: cfg.TaskQueues.GPU + "=1"}
		if strings.HasPrefix(name, "cpu") {
			w.queues, w.workflows = cfg.TaskQueues.CPU+"=1", true
		}
		h.workers[name] = w
		if err := h.startWorker(w); err != nil {
			return nil, err
		}
	}
	defer func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, w := range h.workers {
			w.p.stop()
		}
	}()

	if err := h.startRun(ctx, cfg); err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, client.Options{HostPort: h.srv.addr(), Logger: quiet{}})
	if err != nil {
		return nil, fmt.Errorf("chaos: dial %s: %w", h.srv.addr(), err)
	}
	defer c.Close()
	h.c = c

	rep := &Report{WorkflowID: h.wid, CheckpointStep: cfg.Mutation.CheckpointEvery}
	chaosCtx, stopChaos := context.WithCancel(ctx)
	chaosDone := make(chan error, 1)
	go func() { chaosDone <- h.chaos(chaosCtx, rep) }()
	superDone := make(chan struct{})
	go func() { h.supervise(chaosCtx, rep); close(superDone) }()

	res, runID, waitErr := h.wait(ctx)
	stopChaos()
	chaosErr := <-chaosDone
	<-superDone
	if waitErr != nil {
		return rep, errors.Join(waitErr, chaosErr)
	}
	if chaosErr != nil && !errors.Is(chaosErr, context.Canceled) {
		return rep, chaosErr
	}
	rep.Result, rep.Winner = res, res.Winner.Ref
	rep.Elapsed = time.Since(h.begin)
	h.logf("run finished: winner #%d %s (%s)", res.Winner.ID, res.Winner.Ref, res.StopReason)
	if rep.Lineage, err = h.lineage(ctx, runID); err != nil {
		return rep, err
	}

	// Workers end before the store is checked: nothing may still write.
	h.mu.Lock()
	for _, w := range h.workers {
		w.p.stop()
	}
	h.mu.Unlock()
	if err := h.fillResumes(ctx, rep); err != nil {
		return rep, err
	}
	if err := h.countAttempts(ctx, runID, rep); err != nil {
		return rep, err
	}
	if h.disk != "" {
		rep.ENOSPCAttempts = countENOSPC(filepath.Join(o.Dir, "worker-"+diskWorker+".log"))
	}
	vr, err := st.Verify(ctx)
	if err != nil {
		return rep, fmt.Errorf("chaos: verify store: %w", err)
	}
	rep.Store = vr
	return rep, nil
}

func (h *harness) startWorker(w *worker) error {
	w.starts++
	dir := filepath.Join(h.o.Dir, "worker-"+w.name)
	args := []string{
		"--address", h.srv.addr(), "--queues", w.queues, "--workflows=" + strconv.FormatBool(w.workflows),
		"--store", h.o.StoreURL, "--cache-dir", filepath.Join(dir, "cache"),
		"--work-dir", filepath.Join(dir, "work"), "--threads", strconv.Itoa(h.o.Threads),
		"--log-format", "json", "--log-level", "info", "--device", "cpu",
	}
	if err := os.MkdirAll(filepath.Join(dir, "work"), 0o755); err != nil {
		return err
	}
	p, err := startProc("worker "+w.name, h.o.Bins.Worker, args,
		[]string{"EVOMERGE_HEARTBEAT_THROTTLE=200ms", "EVOMERGE_THREADS=" + strconv.Itoa(h.o.Threads)},
		filepath.Join(h.o.Dir, "worker-"+w.name+".log"), nil)
	if err != nil {
		return err
	}
	w.p = p
	h.logf("worker %s started (pid %d, start #%d)", w.name, p.cmd.Process.Pid, w.starts)
	return nil
}

// startRun starts the workflow through the starter process, as a user would.
func (h *harness) startRun(ctx context.Context, cfg workflows.RunConfig) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(h.o.Dir, "run.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	logPath := filepath.Join(h.o.Dir, "starter.log")
	p, err := startProc("starter", h.o.Bins.Starter,
		[]string{"start", "-f", path, "--id", h.wid, "--address", h.srv.addr()}, nil, logPath, nil)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
		if err := p.err; err != nil {
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("chaos: starter start: %v\n%s", err, out)
		}
	case <-ctx.Done():
		_ = p.kill()
		return ctx.Err()
	}
	h.logf("run %s started by the starter process", h.wid)
	return nil
}

// wait polls until the run (the last of its continue-as-new chain) ends;
// errors while the server restarts are expected and ignored.
func (h *harness) wait(ctx context.Context) (workflows.RunResult, string, error) {
	var res workflows.RunResult
	for {
		select {
		case <-ctx.Done():
			return res, "", fmt.Errorf("chaos: run %s did not finish: %w", h.wid, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		d, err := h.describe(ctx)
		if err != nil {
			continue
		}
		info := d.GetWorkflowExecutionInfo()
		switch info.GetStatus() {
		case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
			continue
		case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := h.c.GetWorkflow(gctx, h.wid, info.GetExecution().GetRunId()).Get(gctx, &res)
			cancel()
			if err != nil {
				continue
			}
			return res, info.GetExecution().GetRunId(), nil
		default:
			gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := h.c.GetWorkflow(gctx, h.wid, info.GetExecution().GetRunId()).Get(gctx, &res)
			cancel()
			return res, "", fmt.Errorf("chaos: run %s ended %s: %v", h.wid, info.GetStatus(), err)
		}
	}
}

// lineage asks the finished run (through a cpu worker) for every node.
func (h *harness) lineage(ctx context.Context, runID string) ([]string, error) {
	var nodes []workflows.Node
	var err error
	for try := 0; try < 20; try++ {
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		var v converter.EncodedValue
		if v, err = h.c.QueryWorkflow(qctx, h.wid, runID, workflows.QueryLineage); err == nil {
			err = v.Get(&nodes)
		}
		cancel()
		if err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		return nil, fmt.Errorf("chaos: query lineage of %s: %w", h.wid, err)
	}
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = fmt.Sprintf("#%d gen %d %s fitness %v %s", n.ID, n.Generation, n.Ref, n.Fitness, n.Status)
	}
	return out, nil
}

func (h *harness) describe(ctx context.Context) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return h.c.DescribeWorkflowExecution(dctx, h.wid, "")
}

// fineTuneBeat mirrors the FineTune activity's heartbeat detail.
type fineTuneBeat struct {
	Step       int    `json:"step"`
	Checkpoint string `json:"checkpoint"`
}

type evalBeat struct {
	Tasks int `json:"tasks"`
	Total int `json:"total"`
}

func decode(p *commonpb.Payloads, v any) bool {
	if p == nil || len(p.Payloads) == 0 {
		return false
	}
	return converter.GetDefaultDataConverter().FromPayloads(p, v) == nil
}

// candidate is a running activity the chaos loop may interrupt.
type candidate struct {
	Interrupted
	phase   string
	started time.Time
	pid     int // process that runs the attempt (from the worker identity "pid@host@queue")
}

// running lists the started activities of the current run.
func (h *harness) running(ctx context.Context, d *workflowservice.DescribeWorkflowExecutionResponse) []candidate {
	runID := d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	var out []candidate
	for _, a := range d.GetPendingActivities() {
		if a.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED {
			continue
		}
		c := candidate{Interrupted: Interrupted{
			Type: a.GetActivityType().GetName(), RunID: runID, ActivityID: a.GetActivityId(), Attempt: a.GetAttempt(),
		}, phase: phaseOf(a.GetActivityType().GetName()), started: a.GetLastStartedTime().AsTime(),
			pid: identityPID(a.GetLastWorkerIdentity())}
		// Heartbeat details outlive an attempt: only a heartbeat since this
		// attempt started says where this attempt is.
		fresh := a.GetLastHeartbeatTime().AsTime().After(a.GetLastStartedTime().AsTime())
		switch c.Type {
		case workflows.ActivityFineTune:
			var b fineTuneBeat
			if fresh && decode(a.GetHeartbeatDetails(), &b) {
				c.Step = b.Step
				if b.Checkpoint != "" {
					c.Checkpoint = h.checkpointStep(ctx, b.Checkpoint)
				}
			}
		case workflows.ActivityEvaluate:
			var b evalBeat
			if fresh && decode(a.GetHeartbeatDetails(), &b) {
				c.TasksDone, c.TasksTotal = b.Tasks, b.Total
			}
		}
		out = append(out, c)
	}
	return out
}

// checkpointStep finds the step of a checkpoint through the pointers the
// FineTune activity keeps in the store (0 when none names it).
func (h *harness) checkpointStep(ctx context.Context, ref string) int {
	names, err := h.st.ListNamed(ctx, store.CheckpointsPrefix)
	if err != nil {
		return 0
	}
	for _, n := range names {
		b, err := h.st.GetNamed(ctx, n)
		if err != nil {
			continue
		}
		var p fineTuneBeat
		if json.Unmarshal(b, &p) == nil && p.Checkpoint == ref {
			return p.Step
		}
	}
	return 0
}

// chaos kills workers at seeded moments: after a drawn pause, the next
// wanted phase that is running gets its worker killed. Until each of the
// three phases was hit once only the missing ones are wanted.
func (h *harness) chaos(ctx context.Context, rep *Report) error {
	if h.o.Kills == 0 && h.o.ServerRestarts == 0 && h.o.DiskFaults == 0 {
		<-ctx.Done()
		return nil
	}
	every := h.o.Config.WithDefaults().Mutation.CheckpointEvery
	restartAfter := map[int]bool{}
	for i := 1; i <= h.o.ServerRestarts; i++ {
		restartAfter[max(1, i*h.o.Kills/(h.o.ServerRestarts+1))] = true
	}
	diskAfter := map[int]int{} // disk faults after kill n (after kill 0: before any)
	for i := 1; i <= h.o.DiskFaults; i++ {
		diskAfter[i*h.o.Kills/(h.o.DiskFaults+1)]++
	}
	for range diskAfter[0] {
		if err := h.diskFault(ctx, rep); err != nil {
			return err
		}
	}
	hit := map[string]bool{}
	for n := 1; n <= h.o.Kills; n++ {
		pause := time.Duration(500+h.rng.IntN(2500)) * time.Millisecond
		offset := 1 + h.rng.IntN(max(1, every-1)) // steps past a checkpoint
		evalAfter := h.rng.IntN(2)                // tasks an evaluation must have done
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		for {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d, err := h.describe(ctx)
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			var pick *candidate
			cands := h.running(ctx, d)
			for i := range cands {
				c := &cands[i]
				// At most two kills per activity: spread the chaos, and never
				// come near the retry policy's attempt limit.
				if h.dead[attemptKey(c.Interrupted)] || h.aimed[c.RunID+"/"+c.ActivityID] >= 2 {
					continue
				}
				wanted := !hit[c.phase] || (hit[PhaseFineTune] && hit[PhaseMerge] && hit[PhaseEvaluate])
				ok := false
				switch c.phase {
				case PhaseFineTune:
					ok = c.Checkpoint > 0 && c.Step >= c.Checkpoint+offset
				case PhaseMerge:
					ok = true
				case PhaseEvaluate:
					ok = c.TasksDone >= evalAfter
				}
				if wanted && ok && h.workerOf(c.pid) != nil {
					pick = c
					break
				}
			}
			if pick == nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			killed, err := h.kill(ctx, rep, n, pick, cands)
			if err != nil {
				return err
			}
			if !killed {
				continue
			}
			hit[pick.phase] = true
			h.aimed[pick.RunID+"/"+pick.ActivityID]++
			break
		}
		for range diskAfter[n] {
			if err := h.diskFault(ctx, rep); err != nil {
				return err
			}
		}
		if restartAfter[n] {
			if err := h.restartServer(ctx); err != nil {
				return err
			}
			rep.ServerRestarts++
		}
	}
	<-ctx.Done()
	return nil
}

// workerOf is the harness worker whose current process is pid (nil: none).
func (h *harness) workerOf(pid int) *worker {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.workers {
		if pid != 0 && w.p != nil && w.p.cmd.Process.Pid == pid {
			if done, _ := w.p.exited(); !done {
				return w
			}
		}
	}
	return nil
}

func identityPID(id string) int {
	head, _, _ := strings.Cut(id, "@")
	pid, _ := strconv.Atoi(head)
	return pid
}

// kill SIGKILLs the worker process that runs pick, records every attempt
// that process was running, optionally fails those attempts at once, and
// restarts it.
func (h *harness) kill(ctx context.Context, rep *Report, n int, pick *candidate, cands []candidate) (bool, error) {
	phase := pick.phase
	h.mu.Lock()
	var w *worker
	for _, x := range h.workers {
		if x.p.cmd.Process.Pid == pick.pid {
			w = x
		}
	}
	if w == nil {
		h.mu.Unlock()
		return false, nil // it ended meanwhile; the supervisor restarts it
	}
	name := w.name
	w.held = true
	err := w.p.kill()
	h.mu.Unlock()
	if err != nil {
		return false, err
	}
	now := time.Now()
	k := Kill{N: n, Phase: phase, Worker: name, At: now.Sub(h.begin)}
	// What the dead worker was running and is still pending was interrupted.
	pending := map[string]int32{}
	if d, err := h.describe(ctx); err == nil {
		for _, a := range d.GetPendingActivities() {
			pending[a.GetActivityId()] = a.GetAttempt()
		}
	}
	for _, c := range cands {
		if c.pid != pick.pid {
			continue
		}
		if att, ok := pending[c.ActivityID]; !ok || att != c.Attempt {
			continue // finished just before the kill
		}
		if h.dead[attemptKey(c.Interrupted)] {
			continue // a previous kill's victim, not yet timed out
		}
		h.dead[attemptKey(c.Interrupted)] = true
		c.Elapsed = now.Sub(c.started)
		k.Running = append(k.Running, c.Interrupted)
		if h.o.FastFail {
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_ = h.c.CompleteActivityByID(fctx, "default", h.wid, c.RunID, c.ActivityID, nil,
				temporal.NewApplicationError("worker killed by the chaos harness", "WorkerLost"))
			cancel()
		}
	}
	rep.Kills = append(rep.Kills, k)
	var desc []string
	for _, a := range k.Running {
		desc = append(desc, describeInterrupted(a))
	}
	h.logf("kill #%d: SIGKILL worker %s aiming at %s; interrupted: %s", n, name, phase, strings.Join(desc, "; "))
	time.Sleep(time.Duration(h.rng.IntN(1000)) * time.Millisecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	w.held = false
	return true, h.startWorker(w)
}

// supervise restarts a worker that ended on its own, as systemd or
// Kubernetes would: the worker binary exits when it cannot reach the server
// at start, which happens when it restarts while the server is down.
func (h *harness) supervise(ctx context.Context, rep *Report) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		h.mu.Lock()
		if !h.srvHeld {
			if done, err := h.srv.p.exited(); done {
				// The dev server exits fatally when ringpop cannot rejoin the
				// members a SIGKILLed predecessor left in its database.
				h.logf("server exited on its own (%v); supervisor restarts it", err)
				rep.WorkerExits = append(rep.WorkerExits, fmt.Sprintf("server at %.1fs: %v", time.Since(h.begin).Seconds(), err))
				if err := h.srv.start(ctx); err != nil {
					h.logf("supervisor: %v", err)
				}
			}
		}
		for _, name := range WorkerNames {
			w := h.workers[name]
			if w.held {
				continue
			}
			if done, err := w.p.exited(); done {
				h.logf("worker %s exited on its own (%v); supervisor restarts it", name, err)
				rep.WorkerExits = append(rep.WorkerExits, fmt.Sprintf("%s at %.1fs: %v", name, time.Since(h.begin).Seconds(), err))
				if err := h.startWorker(w); err != nil {
					h.logf("supervisor: %v", err)
				}
			}
		}
		h.mu.Unlock()
	}
}

func attemptKey(a Interrupted) string {
	return a.RunID + "/" + a.ActivityID + "/" + strconv.Itoa(int(a.Attempt))
}

func describeInterrupted(a Interrupted) string {
	switch a.Type {
	case workflows.ActivityFineTune:
		return fmt.Sprintf("%s %s attempt %d at step %d (checkpoint %d)", a.Type, a.ActivityID, a.Attempt, a.Step, a.Checkpoint)
	case workflows.ActivityEvaluate:
		return fmt.Sprintf("%s %s attempt %d, %d/%d tasks done", a.Type, a.ActivityID, a.Attempt, a.TasksDone, a.TasksTotal)
	}
	return fmt.Sprintf("%s %s attempt %d, %.1fs in", a.Type, a.ActivityID, a.Attempt, a.Elapsed.Seconds())
}

func (h *harness) restartServer(ctx context.Context) error {
	h.mu.Lock()
	h.srvHeld = true
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.srvHeld = false
		h.mu.Unlock()
	}()
	if err := h.srv.p.kill(); err != nil {
		return err
	}
	h.logf("server SIGKILLed")
	time.Sleep(time.Duration(200+h.rng.IntN(1500)) * time.Millisecond)
	if err := h.srv.start(ctx); err != nil {
		return err
	}
	h.logf("server restarted on the same database (pid %d)", h.srv.p.cmd.Process.Pid)
	return nil
}

// fillResumes reads, from each run's history, the step the final attempt
// of every interrupted fine-tune resumed at (the trainer's own number), and
// counts the steps each kill lost: progress at the kill past the last
// checkpoint written before it.
func (h *harness) fillResumes(ctx context.Context, rep *Report) error {
	type final struct {
		attempt int32
		out     workflows.FineTuneOutput
	}
	finals := map[string]final{} // runID/activityID
	read := map[string]bool{}
	for ki := range rep.Kills {
		for ai := range rep.Kills[ki].Running {
			a := &rep.Kills[ki].Running[ai]
			if a.Type != workflows.ActivityFineTune {
				continue
			}
			a.Redone = max(0, a.Step-a.Checkpoint)
			if !read[a.RunID] {
				read[a.RunID] = true
				sched := map[int64]string{}
				attempt := map[int64]int32{}
				it := h.c.GetWorkflowHistory(ctx, h.wid, a.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
				for it.HasNext() {
					ev, err := it.Next()
					if err != nil {
						return fmt.Errorf("chaos: history of %s/%s: %w", h.wid, a.RunID, err)
					}
					if at := ev.GetActivityTaskScheduledEventAttributes(); at != nil && at.GetActivityType().GetName() == workflows.ActivityFineTune {
						sched[ev.GetEventId()] = at.GetActivityId()
					}
					if at := ev.GetActivityTaskStartedEventAttributes(); at != nil {
						attempt[at.GetScheduledEventId()] = at.GetAttempt()
					}
					if at := ev.GetActivityTaskCompletedEventAttributes(); at != nil {
						id, ok := sched[at.GetScheduledEventId()]
						var out workflows.FineTuneOutput
						if ok && decode(at.GetResult(), &out) {
							finals[a.RunID+"/"+id] = final{attempt[at.GetScheduledEventId()], out}
						}
					}
				}
			}
			f, ok := finals[a.RunID+"/"+a.ActivityID]
			if ok && f.attempt == a.Attempt+1 {
				if f.out.Cached {
					a.Finished, a.Redone = true, 0
				} else {
					a.ResumedFrom, a.Resumed = f.out.ResumedFrom, true
				}
			}
		}
	}
	return nil
}

// countAttempts walks the continue-as-new chain back from the last run and
// counts every completed activity and the attempts it took.
func (h *harness) countAttempts(ctx context.Context, runID string, rep *Report) error {
	rep.Retries = map[string]int{}
	for runID != "" {
		prev := ""
		types := map[int64]string{}
		it := h.c.GetWorkflowHistory(ctx, h.wid, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return fmt.Errorf("chaos: history of %s/%s: %w", h.wid, runID, err)
			}
			if at := ev.GetWorkflowExecutionStartedEventAttributes(); at != nil {
				prev = at.GetContinuedExecutionRunId()
			}
			if at := ev.GetActivityTaskScheduledEventAttributes(); at != nil {
				types[ev.GetEventId()] = at.GetActivityType().GetName()
			}
			// The started event is written when the attempt ends, with the
			// number of the attempt that completed.
			if at := ev.GetActivityTaskStartedEventAttributes(); at != nil {
				rep.Activities++
				if at.GetAttempt() > 1 {
					rep.RetriedActivities++
					rep.Retries[types[at.GetScheduledEventId()]] += int(at.GetAttempt()) - 1
				}
			}
		}
		runID = prev
	}
	return nil
}

// Print writes the per-kill cost and the totals.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "run %s: winner #%d %s, %s, %.0fs\n", r.WorkflowID, r.Result.Winner.ID, r.Winner, r.Result.StopReason, r.Elapsed.Seconds())
	for _, l := range r.Lineage {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintf(w, "survived %d worker kills and %d server restarts\n", len(r.Kills), r.ServerRestarts)
	for _, k := range r.Kills {
		if len(k.Running) == 0 {
			fmt.Fprintf(w, "  kill %2d at %6.1fs, worker %s (aimed at %s): nothing running was lost\n", k.N, k.At.Seconds(), k.Worker, k.Phase)
		}
		for _, a := range k.Running {
			fmt.Fprintf(w, "  kill %2d at %6.1fs, worker %s: %s — %s\n", k.N, k.At.Seconds(), k.Worker, describeInterrupted(a), a.cost(r.CheckpointStep))
		}
	}
	for _, e := range r.WorkerExits {
		fmt.Fprintf(w, "  exited on its own and was restarted: %s\n", e)
	}
	steps, fts := r.RedoneSteps()
	retried := 0
	var by []string
	for _, t := range []string{workflows.ActivityMerge, workflows.ActivityFineTune, workflows.ActivityEvaluate, workflows.ActivityPublish} {
		if n := r.Retries[t]; n > 0 {
			by = append(by, fmt.Sprintf("%s %d", t, n))
		}
	}
	for _, n := range r.Retries {
		retried += n
	}
	fmt.Fprintf(w, "work lost: %.0fs of activity time in killed attempts (%.1fs per kill); %d fine-tune steps redone over %d interrupted fine-tunes; %d of %d activities retried %d attempts (%s)\n",
		r.LostActivityTime().Seconds(), r.LostActivityTime().Seconds()/float64(max(1, len(r.Kills))), steps, fts,
		r.RetriedActivities, r.Activities, retried, strings.Join(by, ", "))
	if r.DiskFaults > 0 {
		fmt.Fprintf(w, "disk: worker %s's work directory was full %d times (%.0fs in all); %d attempts failed with ENOSPC naming the path and were retried\n",
			diskWorker, r.DiskFaults, r.DiskFull.Seconds(), r.ENOSPCAttempts)
	}
	fmt.Fprintf(w, "store: %s\n", r.Store.String())
}

func (a Interrupted) cost(every int) string {
	switch a.Type {
	case workflows.ActivityFineTune:
		if a.Finished {
			return "nothing redone: the attempt had stored its model, the next one returned it from the memo"
		}
		lost := fmt.Sprintf("%d steps past the last checkpoint lost and redone (checkpoint interval %d)", a.Redone, every)
		if !a.Resumed {
			return lost + "; the next attempt did not finish it either (killed again, or failed and retried)"
		}
		return fmt.Sprintf("%s; the next attempt resumed at step %d", lost, a.ResumedFrom)
	case workflows.ActivityEvaluate:
		return fmt.Sprintf("%.1fs of scoring redone; %d finished task scores kept in the eval cache", a.Elapsed.Seconds(), a.TasksDone)
	}
	return fmt.Sprintf("%.1fs redone from the start (memoised once complete)", a.Elapsed.Seconds())
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

// Check compares a chaos run with an uninterrupted one and lists every
// broken promise: a different winner, too few kills or restarts, a phase
// never hit, a fine-tune that lost more than one checkpoint interval or did
// not resume from its last checkpoint, and any corrupt, temporary or unknown
// object in either store.
func Check(clean, chaos *Report, kills, restarts int) []string {
	var p []string
	if clean.Winner == "" || clean.Winner != chaos.Winner {
		p = append(p, fmt.Sprintf("winners differ: uninterrupted %q, chaos %q", clean.Winner, chaos.Winner))
	}
	if len(clean.Lineage) == 0 || strings.Join(clean.Lineage, "\n") != strings.Join(chaos.Lineage, "\n") {
		p = append(p, fmt.Sprintf("lineages differ:\n    uninterrupted %s\n    chaos         %s",
			strings.Join(clean.Lineage, "\n                  "), strings.Join(chaos.Lineage, "\n                  ")))
	}
	if len(chaos.Kills) < kills {
		p = append(p, fmt.Sprintf("only %d of %d kills happened before the run ended", len(chaos.Kills), kills))
	}
	if chaos.ServerRestarts < restarts {
		p = append(p, fmt.Sprintf("only %d of %d server restarts happened", chaos.ServerRestarts, restarts))
	}
	if kills >= 3 {
		for _, ph := range []string{PhaseFineTune, PhaseMerge, PhaseEvaluate} {
			if chaos.KilledDuring(ph) == 0 {
				p = append(p, "no kill interrupted a running "+ph)
			}
		}
	}
	for _, k := range chaos.Kills {
		for _, a := range k.Running {
			if a.Type != workflows.ActivityFineTune {
				continue
			}
			switch {
			case a.Resumed && a.ResumedFrom < a.Checkpoint:
				p = append(p, fmt.Sprintf("kill %d: fine-tune %s resumed at step %d although step %d was checkpointed", k.N, a.ActivityID, a.ResumedFrom, a.Checkpoint))
			case a.Redone > chaos.CheckpointStep:
				p = append(p, fmt.Sprintf("kill %d: fine-tune %s redid %d steps, more than one checkpoint interval (%d)", k.N, a.ActivityID, a.Redone, chaos.CheckpointStep))
			}
		}
	}
	for name, r := range map[string]*Report{"uninterrupted": clean, "chaos": chaos} {
		if !r.Store.OK() {
			p = append(p, name+" store: "+r.Store.String())
		}
	}
	return p
}
