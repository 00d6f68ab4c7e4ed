package workflows

import (
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// WorkflowExperiment is the experiment parent's registered name.
const WorkflowExperiment = "Experiment"

// QueryExperimentStatus is the experiment's progress query.
const QueryExperimentStatus = "experiment_status"

// SearchAttrExperiment marks an experiment and each of its children
// (registered by infra/devserver beside EvoRun).
const SearchAttrExperiment = "EvoExperiment"

var SearchExperiment = temporal.NewSearchAttributeKeyKeyword(SearchAttrExperiment)

// ActivityFinishedRun reads the result of a run that already finished
// (activities.FinishedRun, through the worker's Temporal client): an
// experiment started again under the same ID reuses its finished children.
const ActivityFinishedRun = "FinishedRun"

// FinishedRunInput names the run's workflow ID.
type FinishedRunInput struct {
	WorkflowID string `json:"workflow_id"`
}

// versionExperimentRestart: from version 1 on, a child that completed under
// an earlier execution of the experiment is not started again; its result
// is read (ActivityFinishedRun) and reused, and a child that failed, was
// terminated or cancelled runs again.
const versionExperimentRestart = "experiment-restart"

// ExperimentInput is the Experiment workflow's input: the config, inline,
// so an experiment.json is a valid input.
type ExperimentInput struct {
	ExperimentConfig
}

// Experiment runs every arm x seed as a child Evolution workflow, at most
// max_parallel at once, after computing the work they all share once.
// Durability is Temporal's: after a worker or server crash the parent
// replays, children that finished are read from its history (never run
// again), running ones go on.
func Experiment(ctx workflow.Context, in ExperimentInput) (*ExperimentResult, error) {
	e, err := PrepareExperiment(in.ExperimentConfig)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidConfig, nil)
	}
	x := &experiment{cfg: e, status: ExperimentStatus{Name: e.Name, Phase: "starting"}}
	x.restartV = workflow.GetVersion(ctx, versionExperimentRestart, workflow.DefaultVersion, 1)
	if err := workflow.SetQueryHandler(ctx, QueryExperimentStatus, func() (ExperimentStatus, error) { return x.snapshot(), nil }); err != nil {
		return nil, err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchExperiment.ValueSet(e.Name)); err != nil {
		workflow.GetLogger(ctx).Warn("upserting search attributes failed", "error", err)
	}
	res := &ExperimentResult{Name: e.Name, Arms: e.Arms, Seeds: e.Seeds, BudgetTokens: e.Budget.Tokens}
	if res.Shared, err = x.sharedGeneration0(ctx); err != nil {
		return nil, err
	}

	// Arm-major result order; seed-major start order, so an experiment cut
	// short has every arm on its first seeds.
	type job struct{ arm, seed int }
	var jobs []job
	for s := range e.Seeds {
		for a := range e.Arms {
			jobs = append(jobs, job{a, s})
		}
	}
	res.Children = make([]ChildOutcome, len(e.Arms)*len(e.Seeds))
	for a, arm := range e.Arms {
		for s, seed := range e.Seeds {
			res.Children[a*len(e.Seeds)+s] = ChildOutcome{Arm: arm, Seed: seed, WorkflowID: ChildWorkflowID(e.Name, arm, seed)}
		}
	}
	x.results = res.Children
	x.status.Total = len(jobs)
	x.setPhase(ctx, fmt.Sprintf("running %d children, %d at a time", len(jobs), e.MaxParallel))

	sem := workflow.NewSemaphore(ctx, int64(e.MaxParallel))
	wg := workflow.NewWaitGroup(ctx)
	for _, j := range jobs {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			if err := sem.Acquire(ctx, 1); err != nil {
				return
			}
			defer sem.Release(1)
			x.status.Running++
			res.PeakParallel = max(res.PeakParallel, x.status.Running)
			x.runChild(ctx, &res.Children[j.arm*len(e.Seeds)+j.seed])
			x.status.Running--
			x.status.Done++
			x.updateDetails(ctx)
		})
	}
	wg.Wait(ctx)
	res.Reused = x.reused
	x.setPhase(ctx, "writing the report")
	r := &run{cfg: x.cfg.Base.WithDefaults()}
	res.Report = writeReport(ctx, r, WriteReportInput{Experiment: res}, "experiment "+e.Name)
	x.reportLink = res.Report
	x.setPhase(ctx, "done")
	return res, nil
}

type experiment struct {
	cfg        ExperimentConfig
	status     ExperimentStatus
	results    []ChildOutcome
	restartV   workflow.Version
	reused     int // children whose finished run was reused
	reportLink string
}

func (x *experiment) snapshot() ExperimentStatus {
	s := x.status
	s.Children = append([]ChildOutcome(nil), x.results...)
	return s
}

func (x *experiment) setPhase(ctx workflow.Context, phase string) {
	x.status.Phase = phase
	x.updateDetails(ctx)
}

func (x *experiment) updateDetails(ctx workflow.Context) {
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**experiment %s** · %s · children %d/%d done, %d running",
		x.cfg.Name, x.status.Phase, x.status.Done, x.status.Total, x.status.Running)+reportMarkdown(x.reportLink))
}

// sharedGeneration0 creates generation 0 and scores it on the dev split
// with exactly the inputs every child will send (initPopulationInput and
// suiteFor of a child config; Run and Label are not part of any memo key),
// so the children find both memoised: the demo population and its
// evaluation are computed once for the whole experiment. It also measures
// what one generation costs and rejects a budget that cannot pay for it.
func (x *experiment) sharedGeneration0(ctx workflow.Context) (SharedWork, error) {
	var sw SharedWork
	cfg, err := Prepare(x.cfg.ChildConfig(x.cfg.Arms[0], x.cfg.Seeds[0]))
	if err != nil {
		return sw, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidConfig, nil)
	}
	cfg.Name = x.cfg.Name // for logs only
	r := &run{cfg: cfg}
	x.setPhase(ctx, "generation 0, shared by every arm and seed")
	var init InitPopulationOutput
	actx := r.activityCtx(ctx, cfg.TaskQueues.GPU, cfg.Timeouts.Init, fmt.Sprintf("init population of %d (shared by the experiment)", cfg.Population))
	if err := workflow.ExecuteActivity(actx, ActivityInitPopulation, initPopulationInput(cfg)).Get(ctx, &init); err != nil {
		return sw, fmt.Errorf("creating the shared generation 0: %w", err)
	}
	members := init.Members
	if init.Source == SourceLineage {
		members = bestOfLineage(members, cfg.Population)
	}
	ids := make([]int, len(members))
	costs := make([]int64, len(members))
	for i, m := range members {
		ids[i] = i
		sw.Population = append(sw.Population, m.Ref)
	}
	var failed error
	r.parallel(ctx, ids, func(ctx workflow.Context, i int) {
		var out EvaluateOutput
		ectx := r.activityCtx(ctx, cfg.TaskQueues.GPU, cfg.Timeouts.Evaluate, fmt.Sprintf("evaluate #%d on %s (shared)", i, SplitValidation))
		in := EvaluateInput{Run: x.cfg.Name, Model: members[i].Ref, Suite: suiteFor(cfg, SplitValidation), Label: fmt.Sprintf("#%d", i)}
		if err := workflow.ExecuteActivity(ectx, ActivityEvaluate, in).Get(ctx, &out); err != nil {
			failed = err // the children will drop it as a run would; the cost check below uses the rest
			return
		}
		costs[i] = out.Tokens
	})
	for _, c := range costs {
		sw.Gen0Tokens += c
		sw.EvalTokens = max(sw.EvalTokens, c)
	}
	if failed != nil {
		workflow.GetLogger(ctx).Warn("a shared generation-0 evaluation failed", "error", failed)
	}
	if least := sw.Gen0Tokens + int64(cfg.Children)*sw.EvalTokens; x.cfg.Budget.Tokens < least {
		msg := fmt.Sprintf("invalid experiment config\n  budget.tokens: %d is too small for one generation: scoring generation 0 costs %d tokens (measured) and one generation of %d children at least %d more",
			x.cfg.Budget.Tokens, sw.Gen0Tokens, cfg.Children, int64(cfg.Children)*sw.EvalTokens)
		return sw, temporal.NewNonRetryableApplicationError(msg, ErrTypeInvalidConfig, nil)
	}
	return sw, nil
}

// runChild runs one arm x seed to its end and records the outcome; a child
// that fails is recorded with its error (the table leaves it out).
func (x *experiment) runChild(ctx workflow.Context, o *ChildOutcome) {
	cfg := x.cfg.ChildConfig(o.Arm, o.Seed)
	// A finished child is never run again, not even by a new experiment
	// execution under the same ID (version 1: it is reused; one that failed
	// or was terminated runs again).
	reuse := enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	if x.restartV >= 1 {
		reuse = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            o.WorkflowID,
		WorkflowIDReusePolicy: reuse,
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchExperiment.ValueSet(x.cfg.Name), SearchRun.ValueSet(cfg.Name)),
		StaticSummary:         fmt.Sprintf("experiment %s: arm %s, seed %d, budget %d tokens", x.cfg.Name, o.Arm, o.Seed, x.cfg.Budget.Tokens),
	})
	var res RunResult
	err := workflow.ExecuteChildWorkflow(cctx, WorkflowEvolution, EvolutionInput{RunConfig: cfg}).Get(ctx, &res)
	if err != nil && x.restartV >= 1 && temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		// Completed under an earlier execution of this experiment (or still
		// running from one): its result, not a second run.
		r := &run{cfg: cfg.WithDefaults()} // for its timeouts and retries
		actx := r.activityCtx(ctx, r.cfg.TaskQueues.CPU, r.cfg.Timeouts.Init, "result of the finished run "+o.WorkflowID)
		if err = workflow.ExecuteActivity(actx, ActivityFinishedRun, FinishedRunInput{WorkflowID: o.WorkflowID}).Get(ctx, &res); err == nil {
			x.reused++
			workflow.GetLogger(ctx).Info("experiment child already finished; its result is reused", "child", o.WorkflowID)
		}
	}
	if err != nil {
		o.Error = errMessage(err)
		workflow.GetLogger(ctx).Warn("experiment child failed", "child", o.WorkflowID, "error", o.Error)
		return
	}
	o.Done = true
	o.HeldOut, o.InitialHeldOut = res.HeldOut.Winner, res.HeldOut.InitialBest
	o.DevBest, o.WinnerID = res.Winner.Fitness, res.Winner.ID
	o.Generations, o.StopReason = res.Generations, res.StopReason
	o.TrainTokens, o.ScoredTokens, o.HeldOutTokens = res.TrainTokens, res.ScoredTokens, res.HeldOutTokens
	o.History = res.History
}
